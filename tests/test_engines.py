"""The engine seam: `Assistant` and `BatchingAssistant` both implement the `Engine` protocol themselves (no
attribute forwarding), and several engines share one copy of each model."""

from __future__ import annotations

import inspect

import pytest
from helpers import CORPUS, write_corpus
from spanqa.plugin.engine.assistant import Assistant
from spanqa.plugin.engine.batching import BatchingAssistant
from spanqa.plugin.engine.protocol import Engine

from spanqa.settings import Settings

MEMBERS = sorted(set(Engine.__annotations__) | {name for name in vars(Engine) if not name.startswith("_")})


@pytest.mark.parametrize("engine", [Assistant, BatchingAssistant])
def test_each_engine_implements_every_member_itself(engine):
    assert set(MEMBERS) >= {"settings", "collection", "run_ask", "run_answer", "run_search", "run_classify",
                            "warm_up"}
    assert "__getattr__" not in vars(engine)  # no impersonation: a missing method fails where it is called
    for name in MEMBERS:
        if name == "settings":
            continue  # an attribute each sets in __init__
        assert name in vars(engine), f"{engine.__name__} lacks {name}"
        if callable(getattr(Engine, name)):
            ours = inspect.signature(getattr(engine, name)).parameters
            assert list(inspect.signature(getattr(Engine, name)).parameters) == list(ours)[: len(
                inspect.signature(getattr(Engine, name)).parameters)], name


def test_both_are_engines_and_the_batcher_shares_the_assistants_settings(tmp_path, embedder):
    from spanqa.retriever import LocalCollection

    settings = Settings(top_k=3)
    assistant = Assistant(LocalCollection(tmp_path / "c", embedder=embedder), settings=settings)
    batching = BatchingAssistant(assistant)
    assert isinstance(assistant, Engine) and isinstance(batching, Engine)
    assert batching.settings is settings


@pytest.mark.integration
def test_engines_on_two_collections_share_one_set_of_weights(tmp_path, embedder):
    from spanqa.plugin.engine.models import loaded_models
    from spanqa.retriever import LocalCollection

    first = LocalCollection(tmp_path / "one", embedder=embedder)
    first.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    second = LocalCollection(tmp_path / "two", embedder=embedder)
    one, two = Assistant(first), Assistant(second)
    assert one.answer("What does error E-4711 mean?").best is not None
    held = loaded_models()
    assert two.answer("What does error E-4711 mean?").abstained  # an empty collection, the same models
    assert loaded_models() == held
    assert one.reader is two.reader and one.technical_reader is two.technical_reader and one.router is two.router
