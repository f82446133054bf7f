"""The chat UI headless (streamlit.testing AppTest): answers with citations, replies, upload, delete, escaping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from spanqa.settings import Settings

pytestmark = pytest.mark.integration
APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")  # = spanqa.ui.app


@pytest.fixture
def app(monkeypatch, tmp_path):
    # A fresh home per test: the default collection is built from the bundled docs inside it.
    monkeypatch.setenv("SPANQA_HOME", str(tmp_path / "home"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    assert not at.exception, at.exception
    return at


def ask(at: AppTest, text: str) -> AppTest:
    at.chat_input[0].set_value(text).run()
    assert not at.exception, at.exception
    return at


def all_markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_question_on_the_default_collection_gets_a_cited_answer(app):
    ask(app, "How many tokens do neighbouring passages overlap by?")
    text = all_markdown(app)
    assert "spanqa-answer" in text  # the span is highlighted inside its passage
    assert any("Source:" in c.value and "page 1" in c.value for c in app.caption)
    assert "document question" in text


def test_greeting_gets_a_reply_without_sources(app):
    ask(app, "hello!")
    assert "Hello" in all_markdown(app)
    assert not any("Source:" in c.value for c in app.caption)


def test_upload_then_ask_then_feedback_then_delete(app):
    at = app
    at.selectbox(key="collection_choice").select("➕ New collection…").run()
    at.text_input(key="new_collection").input("mine").run()
    assert any("empty" in i.value for i in at.info)
    at.file_uploader(key="uploader").set_value([
        ("lease.txt", b"Pets are allowed in the flat if the landlord agrees in writing. "
                      b"The deposit is three months of rent.", "text/plain"),
        ("broken.pdf", b"%PDF-1.4 not really", "application/pdf"),
    ]).run()
    next(b for b in at.button if b.label == "Ingest").click().run()
    assert not at.exception, at.exception
    assert any("broken.pdf" in w.value for w in at.warning)  # per-file error shown, the rest ingested
    ask(at, "How much is the deposit?")
    assert "spanqa-answer\">three" in all_markdown(at)

    at.feedback[0].set_value(1).run()
    from spanqa.retriever import LocalCollection

    stored = LocalCollection(Path(os.environ["SPANQA_HOME"]) / "collections" / "mine").store.feedback()
    assert [(f.question, f.rating) for f in stored] == [("How much is the deposit?", 1)]
    assert stored[0].answer.startswith("three") and stored[0].source == "lease.txt"

    delete = [b for b in at.button if b.key and b.key.startswith("del-")]
    assert len(delete) == 1
    delete[0].click().run()
    assert not at.exception
    assert any("empty" in i.value for i in at.info)


def test_markup_in_documents_renders_as_text(app):
    from spanqa.plugin.engine.collections import ensure_default_collection

    collection = ensure_default_collection(Settings.from_env())  # the UI's default collection, under SPANQA_HOME
    collection.ingest_bytes([("evil.html.txt", b"The launch code is <script>alert('pwned')</script> 42 "
                                                b"<img src=x onerror=alert(1)>.")])
    app.run()
    ask(app, "What is the launch code?")
    html_blocks = [m.value for m in app.markdown if "spanqa-passage" in m.value]
    for block in html_blocks:
        assert "<script>" not in block and "<img" not in block
    assert not app.exception


def test_a_collection_broken_mid_question_is_a_message_not_a_traceback(app):
    import sqlite3

    from spanqa.retriever import LocalCollection

    path = Path(os.environ["SPANQA_HOME"]) / "collections" / "broken"
    LocalCollection(path).ingest_bytes([("lease.txt", b"The deposit is three months of rent.")])
    app.run()
    app.selectbox(key="collection_choice").select("broken").run()
    ask(app, "How much is the deposit?")
    # Someone damages the database under the running engine: the next question fails with a spanqa error.
    with sqlite3.connect(path / "collection.sqlite") as connection:
        connection.execute("DROP TABLE passages")
    ask(app, "How much is the deposit?")
    assert app.error and "damaged" in app.error[-1].value and not app.exception


def test_a_withheld_answer_shows_the_closest_passage_in_full_view(app):
    ask(app, "How much does a commercial licence for spanqa cost per seat?")
    data = app.session_state["messages"][-1]["response"]
    assert data["abstained"] and data["closest"] is not None
    shown = [m.value for m in app.chat_message[-1].markdown]
    assert any(v.startswith("Not sure\\. The closest passage") for v in shown), shown
    assert any('class="spanqa-passage"' in v for v in shown)  # the quote itself, not folded into an expander


def test_the_sidebar_shows_the_folders_the_collection_follows_and_the_last_sync(monkeypatch, tmp_path):
    import time

    from helpers import write_corpus

    docs = write_corpus(tmp_path / "team-drive", {"rota.txt": "The night shift on Fridays is covered by Priya."})
    monkeypatch.setenv("SPANQA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SPANQA_COLLECTION", str(tmp_path / "followed"))
    monkeypatch.setenv("SPANQA_SYNC", str(docs))
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    deadline = time.monotonic() + 60
    while not any(c.value.startswith("Last sync") for c in at.sidebar.caption):
        assert not at.exception, at.exception
        assert time.monotonic() < deadline, [c.value for c in at.sidebar.caption]
        time.sleep(0.5)
        at.run()
    captions = [c.value for c in at.sidebar.caption]
    assert any(str(docs) in c for c in captions) and any("1 added" in c for c in captions)
    ask(at, "Who covers the Friday night shift?")
    assert "Priya" in all_markdown(at)


def test_an_answer_opens_in_its_document_with_the_span_marked(app):
    ask(app, "How many tokens do neighbouring passages overlap by?")
    best = app.session_state["messages"][-1]["response"]["answers"][0]
    next(b for b in app.button if b.label == f"Open {best['citation']}").click().run()
    assert not app.exception, app.exception
    frames = [e for e in app.get("iframe")] if app.get("iframe") else []
    pages = [getattr(f.proto, "srcdoc", "") for f in frames]
    assert any('<mark id="answer">' in page and best["text"].split()[0] in page for page in pages), pages
