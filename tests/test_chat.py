"""`spanqa chat` driven through a real pseudo-terminal (pexpect), as a user types: answers with citations, a
follow-up read in the light of the conversation, /sources, /open, /reset, line history (the up arrow), a refused line
that does not end the conversation, /quit and Ctrl-D."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from helpers import CORPUS, write_corpus

pexpect = pytest.importorskip("pexpect")
pytestmark = pytest.mark.integration
PROMPT = "you> "
UP = "\x1b[A"


@pytest.fixture(scope="module")
def collection(tmp_path_factory, embedder) -> Path:
    from spanqa.retriever import LocalCollection

    root = tmp_path_factory.mktemp("chat")
    LocalCollection(root / "collection", embedder=embedder).ingest([write_corpus(root / "docs", CORPUS)])
    return root / "collection"


def start(collection: Path, home: Path):
    spanqa = Path(sys.executable).with_name("spanqa")
    env = {**os.environ, "SPANQA_HOME": str(home), "TERM": "xterm", "COLUMNS": "200"}
    child = pexpect.spawn(str(spanqa), ["chat", "--collection", str(collection)], env=env, encoding="utf-8",
                          timeout=180, dimensions=(40, 200))
    child.expect_exact("/quit (or Ctrl-D) leaves.")
    child.expect_exact(PROMPT)
    return child


def say(child, line: str, *expected: str) -> None:
    child.sendline(line)
    for text in expected:
        child.expect_exact(text)
    child.expect_exact(PROMPT)


def test_a_conversation_in_the_terminal(collection, tmp_path):
    child = start(collection, tmp_path)
    try:
        say(child, "What does pump error E-4712 mean?", "clogged", "error-b.txt, page 1")
        say(child, "what about E-4711?", "motor overheated", "error-a.txt",
            "understood as: What does pump error E-4711 mean?")
        say(child, "/sources", "[1] error-a.txt, page 1", "Pump error E-4711 means")
        say(child, "/open", "characters", "\x1b[7mthe motor overheated", "(on a spanqa server: /v1/documents/")
        say(child, "/open 9", "(/open takes passage 1 to")
        say(child, "why " * 600, "error: Invalid arguments — question:", "the max_question_chars setting")
        say(child, "/reset", "(a new conversation)")
        say(child, "hello!", "Hello!")
        child.send(UP * 7 + "\r")  # the line history: seven lines up is the follow-up, asked again …
        child.expect_exact("what about E-4711?")
        child.expect_exact(PROMPT)
        assert "understood as" not in child.before  # … in a new conversation: nothing to follow after a greeting
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "What does pump error E-4712 mean?" in (tmp_path / "chat-history").read_text()  # kept for next time


def test_ctrl_d_leaves_quietly(collection, tmp_path):
    child = start(collection, tmp_path)
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0 and "Traceback" not in (child.before or "")
