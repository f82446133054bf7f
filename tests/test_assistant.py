"""The engine with the real bundled models: routing, cited answers, abstention, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from spanqa.plugin.engine.assistant import Assistant
from spanqa.plugin.engine.router import Intent
from spanqa.retriever import LocalCollection

from spanqa.errors import InputError
from spanqa.settings import Settings

pytestmark = pytest.mark.integration

FACTS = {
    "tower.txt": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall and "
                 "was designed by the engineering company of Gustave Eiffel.",
    "bread.md": "# Baking\n\nSourdough bread rises because wild yeast and lactic acid bacteria ferment the dough. "
                "Bakers usually let the dough rest for twelve hours in a cool place.",
    "pump.txt": "The pump's warranty lasts 24 months from the date of purchase. Error E-4712 means the water filter "
                "is clogged and must be rinsed under warm water.",
}


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, embedder):
    folder = tmp_path_factory.mktemp("facts")
    for name, text in FACTS.items():
        (folder / name).write_text(text)
    collection = LocalCollection(folder / "collection", embedder=embedder)
    collection.ingest([folder])
    engine = Assistant(collection)
    engine.warm_up()
    return engine


@pytest.mark.parametrize(
    ("question", "expected", "source"),
    [
        ("How long does the pump warranty last?", "24 months", "pump.txt"),
        ("When was the Eiffel Tower completed?", "1889", "tower.txt"),
        ("How long should sourdough dough rest?", "twelve hours", "bread.md"),
    ],
)
def test_document_question_gets_the_right_span_with_its_citation(assistant, question, expected, source):
    response = assistant.respond(question)
    assert response.intent.label == "document_question" and response.route == "documents"
    best = response.best
    assert best is not None and expected in best.text
    assert best.source.endswith(source)
    document = assistant.collection.document(best.document_id)
    assert document.text[best.document_start:best.document_end] == best.text
    assert best.page == 1 and 0 < best.score <= 1
    assert f"“{best.text}”" in response.reply and source in response.reply
    assert {"route_ms", "retrieve_ms", "read_ms", "total_ms"} <= set(response.timings)


def test_greeting_is_not_sent_to_the_reader(assistant, monkeypatch):
    calls = []
    monkeypatch.setattr(assistant.reader, "read", lambda *a, **k: calls.append(a))
    response = assistant.respond("hi there!")
    assert response.intent.label == "greeting" and calls == [] and response.passages == []
    assert "Hello" in response.reply


def test_unanswerable_question_abstains_and_quotes_the_closest_passage(assistant):
    response = assistant.respond("What is the maximum speed of the pump motor?")
    assert response.abstained and response.best is None and response.passages
    closest = response.closest
    assert response.reply.startswith("Not sure. The closest passage (") and closest.marked in response.reply
    assert closest.text in closest.passage.text and closest.passage in [h.passage for h in response.passages]


def test_empty_collection_gives_a_helpful_message(tmp_path, embedder, assistant):
    empty = Assistant(LocalCollection(tmp_path / "empty", embedder=embedder), reader=assistant.reader,
                      router=assistant.router)
    response = empty.respond("What is the warranty period?")
    assert response.abstained and "empty" in response.reply and "ingest" in response.reply


@pytest.mark.parametrize(("message", "error"), [("", "at least 1 character"), ("   \n\t", "at least 1 character"),
                                              ("x" * 5000, "the max_question_chars setting")])
def test_bad_messages_are_refused_clearly(assistant, message, error):
    with pytest.raises(InputError, match=error):
        assistant.respond(message)


def test_other_scripts_and_emoji_do_not_break_anything(assistant):
    for message in ["¿Cuándo se construyó la torre? 🗼", "埃菲尔铁塔有多高？", "bad\x00control\x07chars"]:
        response = assistant.respond(message)
        assert response.reply


def test_routing_table_is_configurable(assistant):
    custom = Assistant(assistant.collection, reader=assistant.reader, router=assistant.router,
                       routes={"greeting": "documents"})
    assert custom.respond("hello there!").route == "documents"
    with pytest.raises(ValueError, match="unknown route handler"):
        Assistant(assistant.collection, routes={"greeting": "teleport"})


def test_adaptive_reading_reads_the_rest_only_when_the_first_passages_leave_the_answer_open(
        assistant, tmp_path, embedder):
    pump = {"warranty.txt": FACTS["pump.txt"],
            "care.txt": "Rinse the pump's water filter every month; the pump's motor needs no oiling.",
            "returns.txt": "A pump bought online can be returned within 30 days of delivery for a full refund."}
    for name, text in pump.items():
        (tmp_path / name).write_text(text)
    collection = LocalCollection(tmp_path / "collection", embedder=embedder)
    collection.ingest([tmp_path / name for name in pump])

    def engine(first: int, stop: float) -> Assistant:
        return Assistant(collection, reader=assistant.reader, router=assistant.router,
                         settings=Settings(read_first=first, read_stop_score=stop))

    question = "How long does the pump warranty last?"
    settled = engine(1, 0.0).answer(question, top_k=3)  # any answer from the first passage settles it
    everything = engine(0, 0.0).answer(question, top_k=3)
    unsettled = engine(1, 1.0).answer(question, top_k=3)  # nothing settles it: the rest is read too
    assert settled.answers[0].text == "24 months"
    assert settled.timings["passages_read"] == 1
    assert unsettled.timings["passages_read"] == everything.timings["passages_read"] == 3
    assert settled.timings["reader_windows"] < everything.timings["reader_windows"]
    # Read in two rounds or in one, the same candidates come out in the same order with the same scores (up to the
    # rounding of bf16 matrix products, which differs with the batch's shape and padding).
    assert [(a.text, a.passage_id) for a in unsettled.answers] == [(a.text, a.passage_id) for a in everything.answers]
    assert [a.score for a in unsettled.answers] == pytest.approx([a.score for a in everything.answers], abs=2e-3)


def test_each_question_is_read_by_the_reader_its_passages_need(assistant, tmp_path, embedder):
    """Technical documentation goes to the technical reader, prose to the general one, in one batch too; the
    response says which; `reader_domain` overrides; a caller's own reader reads everything."""
    readme = Path(__file__).resolve().parents[1] / "bench" / "techdocs" / "sources" / "loguru.txt"
    (tmp_path / "loguru.md").write_text(readme.read_text(encoding="utf-8"))
    for name, text in FACTS.items():
        (tmp_path / name).write_text(text)
    collection = LocalCollection(tmp_path / "collection", embedder=embedder)
    collection.ingest([tmp_path])
    engine = Assistant(collection, router=assistant.router)
    technical = "How do I make loguru rotate the log file once it gets too big?"
    prose = "When was the Eiffel Tower completed?"

    alone = [engine.respond(technical), engine.respond(prose)]
    together = engine.respond_many([technical, prose])
    assert [r.reader for r in alone] == [r.reader for r in together] == ["technical", "general"]
    assert [r.to_json()["reader"] for r in together] == ["technical", "general"]
    assert [[a.text for a in r.answers] for r in together] == [[a.text for a in r.answers] for r in alone]
    best = together[0].answers[0]
    assert best.source.endswith("loguru.md")
    assert collection.document(best.document_id).text[best.document_start:best.document_end] == best.text
    assert "1889" in together[1].best.text

    general = Assistant(collection, router=assistant.router, settings=Settings(reader_domain="general"))
    assert general.respond(technical).reader == "general"
    forced = Assistant(collection, router=assistant.router, settings=Settings(reader_domain="technical"))
    assert forced.respond(prose).reader == "technical"
    own = Assistant(collection, reader=assistant.reader, router=assistant.router)
    assert own.technical_reader is None and own.respond(technical).reader == "general"


def test_the_technical_reader_loads_only_when_a_question_needs_it(assistant):
    from spanqa.plugin.engine.reader import Reader

    from spanqa.settings import SHIPPED_TECHNICAL_READER

    # Its own technical reader: the process-wide one may have been loaded by another test's question.
    engine = Assistant(assistant.collection, router=assistant.router,
                       technical_reader=Reader(SHIPPED_TECHNICAL_READER))
    engine.warm_up()
    assert engine.technical_reader.model is None  # warm, yet a prose collection never pays its memory
    assert engine.respond("How long does the pump warranty last?").reader == "general"
    assert engine.technical_reader.model is None


class UnsureRouter:
    """A router that is never sure what a message is: every message takes the fallback route."""

    def classify_many(self, messages):
        return [Intent("smalltalk", 0.2, True, below_threshold=True) for _ in messages]

    def warm_up(self) -> None:
        pass


def test_a_message_not_understood_asks_again_rather_than_quoting(assistant):
    engine = Assistant(assistant.collection, reader=assistant.reader, router=UnsureRouter())
    response = engine.respond("What is the maximum speed of the pump motor?")
    assert response.route == "fallback" and response.abstained
    assert response.reply.startswith("I'm not sure what you mean") and response.closest is None
    assert response.to_json()["closest"] is None  # the JSON says what the reply says
