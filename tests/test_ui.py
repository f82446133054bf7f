"""The chat UI headless (streamlit.testing AppTest): answers with citations, replies, upload, delete, escaping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.integration
APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")


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
    ask(app, "How many tokens is a passage at most?")
    text = all_markdown(app)
    assert "spanqa-answer" in text  # the span is highlighted inside its passage
    assert any("Source:" in c.value and "page 1" in c.value for c in app.caption)
    assert "document question" in text


def test_greeting_gets_a_reply_without_sources(app):
    ask(app, "hello!")
    assert "Hello" in all_markdown(app)
    assert not any("Source:" in c.value for c in app.caption)


def test_upload_then_ask_then_delete(app):
    at = app
    at.selectbox(key="collection_choice").select("➕ New collection…").run()
    at.text_input(key="new_collection").input("mine").run()
    assert not at.exception
    # AppTest cannot drive the file_uploader widget: ingest from outside, as `spanqa ingest` would while the UI
    # runs; the UI's collection notices the new generation and reloads its indexes.
    collection_dir = Path(os.environ["SPANQA_HOME"]) / "collections" / "mine"
    from retriever import Collection

    Collection(collection_dir).ingest_bytes([("lease.txt", b"Pets are allowed in the flat if the landlord agrees "
                                                           b"in writing. The deposit is three months of rent.")])
    at.run()
    ask(at, "How much is the deposit?")
    assert "spanqa-answer\">three" in all_markdown(at)
    delete = [b for b in at.button if b.key and b.key.startswith("del-")]
    assert delete
    delete[0].click().run()
    assert not at.exception
    assert any("empty" in i.value for i in at.info)


def test_markup_in_documents_renders_as_text(app):
    from plugin.collections import ensure_default_collection

    collection = ensure_default_collection()
    collection.ingest_bytes([("evil.html.txt", b"The launch code is <script>alert('pwned')</script> 42 "
                                                b"<img src=x onerror=alert(1)>.")])
    app.run()
    ask(app, "What is the launch code?")
    html_blocks = [m.value for m in app.markdown if "spanqa-passage" in m.value]
    for block in html_blocks:
        assert "<script>" not in block and "<img" not in block
    assert not app.exception
