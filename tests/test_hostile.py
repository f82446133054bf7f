"""Untrusted input: hostile documents, hostile file names, resource limits. Each refusal must be a clear message
and must lose nothing that was already there."""

from __future__ import annotations

import pytest
from spanqa.plugin.engine.router import IntentClassifier
from spanqa.retriever import Embedder, LocalCollection
from spanqa.retriever.loaders import LoadError, load_bytes, load_paths

from spanqa.errors import CollectionError, InputError
from spanqa.settings import CollectionLimits, Settings, resolve_precision


def tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("depth", [3_000, 1_000_000])
def test_deeply_nested_html_is_refused_at_once(depth):
    data = ("<div>" * depth + "deep" + "</div>" * depth).encode()
    with pytest.raises(LoadError, match="nested more deeply"):
        load_bytes("deep.html", data)


def test_moderately_nested_html_keeps_its_text():
    assert load_bytes("ok.html", ("<div>" * 1500 + "deep text" + "</div>" * 1500).encode()).text == "deep text"


def test_a_200_mb_file_is_refused_by_size_before_it_is_read(tmp_path):
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as f:  # sparse: costs no disk, but stat() says 200 MB
        f.truncate(200 * 2**20)
    report = load_paths([huge])
    assert not report.documents
    assert "200.0 MB, over the 50.0 MB file size limit" in report.skipped[0].reason
    assert "SPANQA_MAX_FILE_MB" in report.skipped[0].reason


def test_hostile_upload_names_write_nothing_outside_the_collection(tmp_path, embedder):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0")
    collection = LocalCollection(root / "collections" / "c", embedder=embedder)
    before = {k: v for k, v in tree(root).items() if not k.startswith("collections")}
    names = ["../../etc/passwd.txt", "/etc/passwd.txt", str(root / "etc" / "passwd.txt"), "a\x00b.txt",
             "..\\..\\etc\\passwd.txt", "....//....//x.md", "\u202egnp.txt", ".hidden.txt", "", "   "]
    report = collection.ingest_bytes([(name, f"Content of upload {i}.".encode()) for i, name in enumerate(names)])
    assert {k: v for k, v in tree(root).items() if not k.startswith("collections")} == before
    written = {p.name for p in (root / "collections" / "c").rglob("*")}
    assert not any("passwd" in name or "gnp" in name for name in written)
    for document in collection.documents():
        assert "/" not in document.source and "\\" not in document.source and "\x00" not in document.source
        assert not document.source.startswith(".")
    assert len(report.added) + len(report.skipped) == len(names)


def test_passage_limit_refuses_one_document_and_keeps_the_rest(tmp_path, embedder):
    collection = LocalCollection(tmp_path / "c", embedder=embedder, limits=CollectionLimits(max_passages_per_document=3))
    long_text = " ".join(f"Sentence number {i} is about a lantern." for i in range(400))
    report = collection.ingest_bytes([("long.txt", long_text.encode()), ("short.txt", b"A short note.")])
    assert report.added == ["short.txt"]
    assert "more than 3 passages (the max_passages_per_document limit)" in report.skipped[0].reason
    assert [d.source for d in collection.documents()] == ["short.txt"]


def test_results_per_query_limit_names_itself(tmp_path, embedder):
    collection = LocalCollection(tmp_path / "c", embedder=embedder, limits=CollectionLimits(max_results=10))
    collection.ingest_bytes([("a.txt", b"Lanterns light the harbor.")])
    assert collection.search("harbor", k=10)
    with pytest.raises(ValueError, match="max_results"):
        collection.search("harbor", k=11)


def test_limits_are_settings_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("SPANQA_MAX_FILE_MB", "200")
    monkeypatch.setenv("SPANQA_MAX_RESULTS", "50")
    monkeypatch.setenv("SPANQA_MAX_QUESTION_CHARS", "100")
    settings = Settings.from_env()
    assert settings.collection_limits() == CollectionLimits(200 * 2**20, settings.max_passages_per_document, 50)
    assert settings.max_question_chars == 100
    assert Settings.from_env(max_results=7).max_results == 7  # explicit values (CLI flags) win
    monkeypatch.setenv("SPANQA_MAX_RESULTS", "lots")
    with pytest.raises(ValueError, match="SPANQA_MAX_RESULTS='lots' is not a valid int"):
        Settings.from_env()
    monkeypatch.setenv("SPANQA_MAX_RESULTS", "0")
    with pytest.raises(ValueError, match="max_results must be positive"):
        Settings.from_env()


def test_speed_settings_are_read_from_the_environment_and_checked(monkeypatch, tmp_path):
    from spanqa.plugin.doors.service import Service

    monkeypatch.setenv("SPANQA_READ_FIRST", "3")
    monkeypatch.setenv("SPANQA_EMBEDDER_PRECISION", "fp32")
    monkeypatch.setenv("SPANQA_ROUTER_PRECISION", "fp32")
    settings = Settings.from_env()
    assert (settings.read_first, settings.embedder_precision, settings.router_precision) == (3, "fp32", "fp32")
    # Only a door reads the environment: the engine it opens is handed those settings, and models built without
    # them take the defaults, whatever the environment says.
    assert Service.open(tmp_path / "c").engine.settings == settings
    assert IntentClassifier("unused").precision == "auto"
    assert Embedder().precision == resolve_precision("auto")
    for name, value, error in [("SPANQA_READ_FIRST", "-1", "read_first"), ("SPANQA_READ_STOP_SCORE", "1.5", "read_stop"),
                               ("SPANQA_EMBEDDER_PRECISION", "int8", "embedder_precision"),
                               ("SPANQA_ROUTER_PRECISION", "int8", "router_precision"),
                               ("SPANQA_READER_PRECISION", "fp8", "reader_precision")]:
        with monkeypatch.context() as m:
            m.setenv(name, value)
            with pytest.raises(InputError, match=error):
                Settings.from_env()


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_it(monkeypatch, native):
    import spanqa.settings as settings_module

    monkeypatch.setattr(settings_module, "native_bf16", lambda: native)
    assert settings_module.resolve_precision("auto") == ("bf16" if native else "fp32")
    assert settings_module.resolve_precision("int8") == "int8"  # asked for explicitly, always honoured
    assert Embedder(precision="auto").precision == ("bf16" if native else "fp32")


def test_interrupted_creation_is_started_over_but_foreign_files_are_never_touched(tmp_path, embedder):
    leftover = tmp_path / "new"
    leftover.mkdir()
    (leftover / "collection.sqlite").write_bytes(b"")  # a crash before the manifest was written
    (leftover / "manifest.tmp").write_text("{")
    LocalCollection(leftover, embedder=embedder).ingest_bytes([("a.txt", b"Now it works.")])
    assert (leftover / "manifest.json").is_file()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.docx").write_bytes(b"precious")
    with pytest.raises(Exception, match="not a spanqa collection"):
        LocalCollection(foreign, embedder=embedder)
    assert (foreign / "thesis.docx").read_bytes() == b"precious"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(Exception, match="is a file, not a collection directory"):
        LocalCollection(a_file, embedder=embedder)


def test_a_stamp_left_by_a_crash_does_not_block_later_saves(tmp_path, embedder):
    collection = LocalCollection(tmp_path / "c", embedder=embedder)
    collection.ingest_bytes([("a.txt", b"First document.")])
    # What a kill between writing a stamp and renaming it leaves behind.
    (collection.index_dir / "bm25.json.tmp").write_text('{"generation": 1')
    (collection.index_dir / "dense.json.tmp").write_text("")
    (collection.index_dir / "bm25.tmp").mkdir()  # a BM25 save killed half way
    (collection.index_dir / "bm25.tmp" / "junk").write_text("half")
    collection.ingest_bytes([("b.txt", b"Second document.")])
    assert collection.integrity_problems() == []
    assert len(collection.documents()) == 2


def test_huge_question_is_refused_with_the_limit_named(tmp_path, embedder):
    from spanqa.plugin.engine.assistant import Assistant

    from spanqa.errors import InputError

    assistant = Assistant(LocalCollection(tmp_path / "c", embedder=embedder))
    with pytest.raises(InputError, match=r"question: String should have at most 2000 characters \(max_length=2000, "
                                         r"the max_question_chars setting\)"):
        assistant.respond("x" * 102_400)
    for empty in ("", "   ", "\x00\x01\x02"):
        with pytest.raises(InputError, match="question: String should have at least 1 character"):
            assistant.answer(empty)
    assert assistant.check("classify", message="  Où est la gare? 🚉\x07 ").message == "Où est la gare? 🚉"


def test_a_collection_that_cannot_be_created_is_a_collection_error(tmp_path, embedder):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(CollectionError, match=f"Cannot create a collection at {blocker / 'c'}"):
        LocalCollection(blocker / "c", embedder=embedder)


def test_a_misspelled_setting_is_a_spanqa_error_naming_the_real_ones():
    from spanqa import Service
    from spanqa.errors import InputError

    with pytest.raises(InputError, match=r"unknown setting\(s\) topk; Settings's are .*\btop_k\b"):
        Service.open("anywhere", topk=3)
