"""The house's layering, held by tests: data flows files → retriever → engine → service → doors, so a door (the CLI,
the chat UI, `spanqa chat`, the servers, the LangChain tools) imports the service, the errors, the settings and
rendering only; the engine and the retriever are handed their settings and read no environment; no module uses
another's private names."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from helpers import CORPUS, write_corpus

ROOT = Path(__file__).resolve().parent.parent
DOORS = [ROOT / "plugin" / "doors" / name for name in
         ("cli.py", "chat.py", "http_server.py", "mcp_server.py", "langchain_tools.py")] + [ROOT / "ui" / "app.py"]
# What a door may import from spanqa: the version, the errors, the settings (and a team server's configuration file),
# the service (and the other doors it mounts), how command lines are put together, rendering, and the lab's command
# table the CLI offers.
DOOR_IMPORTS = ("spanqa", "spanqa.errors", "spanqa.settings", "spanqa.server_config", "spanqa.commands",
                "spanqa.plugin.doors",
                "spanqa.ui", "spanqa.ui.render", "spanqa.plugin.lab.cli")
ENGINE = sorted((ROOT / "plugin" / "engine").glob("*.py")) + sorted((ROOT / "retriever").glob("*.py"))
# Variables that are not spanqa's settings but the libraries' own, read where the library is configured.
LIBRARY_VARIABLES = {ROOT / "retriever" / "memory.py": "MALLOC_ARENA_MAX (glibc's)"}
PRODUCT = sorted(p for folder in ("plugin", "retriever", "spanqa", "ui") for p in (ROOT / folder).rglob("*.py")
                 if "models" not in p.parts)


def spanqa_imports(path: Path) -> set[str]:
    return {m for m in _all_imports(path) if m == "spanqa" or m.startswith("spanqa.")}


def allowed_for_a_door(module: str) -> bool:
    return any(module == allowed or (allowed == "spanqa.plugin.doors" and module.startswith(allowed + "."))
               for allowed in DOOR_IMPORTS)


@pytest.mark.parametrize("door", DOORS, ids=lambda p: p.name)
def test_a_door_imports_the_service_errors_settings_and_rendering_only(door):
    reaching_past = sorted(m for m in spanqa_imports(door) if not allowed_for_a_door(m))
    assert reaching_past == [], f"{door.relative_to(ROOT)} reaches past the service: {reaching_past}"


def test_the_product_never_imports_the_lab_or_the_benchmark():
    """Training and benchmark code stay out of the answering path; the CLI only offers the lab's command table."""
    offences = []
    for path in PRODUCT:
        if path.is_relative_to(ROOT / "plugin" / "lab") or path == ROOT / "plugin" / "doors" / "cli.py":
            continue
        modules = _all_imports(path)
        offences += [f"{path.relative_to(ROOT)}: {m}" for m in sorted(modules)
                     if m.startswith(("spanqa.plugin.lab", "bench"))]
    assert offences == []


def _all_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def environment_reads(path: Path) -> list[int]:
    """Lines where `path` reads the process environment (os.environ, os.getenv, `from os import environ`)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" \
                and node.attr in ("environ", "getenv", "environb", "getenvb") or isinstance(node, ast.ImportFrom) and node.module == "os" and \
                any(a.name in ("environ", "getenv") for a in node.names):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("module", ENGINE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_engine_and_the_retriever_read_no_environment(module):
    reads = environment_reads(module)
    if module in LIBRARY_VARIABLES:
        assert len(reads) == 1, f"{module.name} reads only {LIBRARY_VARIABLES[module]}"
        return
    assert reads == [], f"{module.relative_to(ROOT)} reads the environment on lines {reads}: take it from Settings"


def private_names_defined(tree: ast.AST) -> set[str]:
    """The private names a module defines itself: functions, classes, methods, variables and attributes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


# Private names of libraries that are their documented way in (namedtuple's _replace, sys._getframe, ...).
LIBRARY_PRIVATES = {"_replace", "_asdict", "_fields", "_exit", "_getframe", "_meta"}


def test_no_module_uses_another_modules_private_names():
    """`from x import _name`, or `other._name` where this module did not define `_name` (another module's object,
    not the class itself or its bases): a public seam instead."""
    offences = []
    for path in PRODUCT:
        tree = ast.parse(path.read_text())
        own = private_names_defined(tree) | LIBRARY_PRIVATES
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("spanqa"):
                offences += [f"{path.relative_to(ROOT)}: from {node.module} import {a.name}" for a in node.names
                             if a.name.startswith("_") and not a.name.startswith("__")]
            on_itself = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in ("self", "cls")  # its own class or a base class's protected member
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and node.attr not in own and not on_itself:
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
    assert offences == []


class EnvironmentSpy(dict):
    """os.environ as the engine would see it, recording every spanqa variable anyone reads."""

    def __init__(self, real) -> None:
        super().__init__(real)
        self.read: set[str] = set()

    def _seen(self, key) -> None:
        if isinstance(key, str) and key.startswith("SPANQA_"):
            self.read.add(key)

    def get(self, key, default=None):
        self._seen(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self._seen(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self._seen(key)
        return super().__contains__(key)


@pytest.mark.integration
def test_an_engine_built_from_settings_answers_without_reading_the_environment(tmp_path, embedder, monkeypatch):
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.retriever import LocalCollection

    from spanqa.settings import Settings

    collection = LocalCollection(tmp_path / "c", embedder=embedder)
    collection.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    settings = Settings(home=str(tmp_path / "home"), top_k=2)
    for name in ("HOME", "COLLECTION", "READER", "TECHNICAL_READER", "EMBEDDER", "ROUTER"):
        monkeypatch.setenv(f"SPANQA_{name}", str(tmp_path / "nowhere"))  # would break an engine that read them
    monkeypatch.setenv("SPANQA_TOP_K", "9")
    spy = EnvironmentSpy(os.environ)
    monkeypatch.setattr(os, "environ", spy)
    engine = Assistant(collection, settings=settings)
    response = engine.respond("What does pump error E-4712 mean?")
    assert response.best is not None and len(response.passages) == 2  # the settings' top_k, not the variable's
    # The one variable read while answering describes the processor, not spanqa: it decides what "auto" precision
    # means on this machine, and the test suite flips it to test both precision paths (README, "Processors").
    assert spy.read <= {"SPANQA_CPU_BF16"}


def test_the_door_resolves_the_locations_from_the_environment(tmp_path, monkeypatch):
    from spanqa.settings import SHIPPED_READER, Settings

    monkeypatch.setenv("SPANQA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPANQA_COLLECTION", "postgresql://db/spanqa?collection=docs")
    monkeypatch.delenv("SPANQA_READER", raising=False)
    settings = Settings.from_env()
    assert settings.home_path == tmp_path / "home"
    assert settings.default_collection_path == tmp_path / "home" / "collections" / "default"
    assert settings.collection == "postgresql://db/spanqa?collection=docs"
    assert settings.reader_path == str(SHIPPED_READER)
    assert Settings.from_env(reader="my/reader").reader_path == "my/reader"  # what a door was given comes last
