"""A conversation as spanqa keeps and reads it: earlier messages in OpenAI's shape, oldest first —
`{"role": "user" | "assistant", "content": str}`, an assistant message optionally carrying the response JSON
spanqa gave as `"response"`.

What resolution reads of an earlier reply is that structure (its route, its answers, how its question was
understood), never the reply's wording: a door that keeps the JSON (the chat UI, `spanqa chat`) gives follow-ups
the earlier answer to build on; a client that keeps only the text gives them the earlier questions. The checks on a
history that comes in are the request contract's (plugin/engine/requests.py); this module is how a door that keeps
a whole chat builds one that is never refused, and how a follow-up's reading is told to a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from spanqa.settings import Settings

__all__ = ["ROLES", "Turn", "exchange", "interpretation", "recent_history"]

ROLES = ("user", "assistant")


@dataclass(frozen=True)
class Turn:
    """One earlier message: who said it, what was said, and (when the door kept it) the response's JSON."""

    role: str
    content: str
    response: Mapping[str, Any] | None = None

    @property
    def answer_text(self) -> str:
        """The answer this assistant turn quoted ("" when it abstained, replied in kind, or came without JSON)."""
        return self._quoted("text")

    @property
    def answer_source(self) -> str:
        """The document this assistant turn quoted from ("" when none is known)."""
        return self._quoted("source")

    def _quoted(self, key: str) -> str:
        if self.response is None:
            return ""
        answers = self.response.get("answers") or []
        return "" if self.response.get("abstained") or not answers else str(answers[0].get(key, ""))


def exchange(message: str, response: Mapping[str, Any]) -> list[dict]:
    """One user message and spanqa's reply to it (its response JSON), as two history messages: the reply keeps the
    parts of the JSON that resolution reads (the route, the answers, how the message was understood)."""
    kept = {key: response.get(key) for key in ("route", "abstained", "answers", "resolved")}
    return [{"role": "user", "content": message}, {"role": "assistant", "content": response["reply"], "response": kept}]


def interpretation(response: Mapping[str, Any], history: Sequence[Mapping[str, Any]]) -> str | None:
    """What to tell a person about how a follow-up was understood (None for a message that stood alone): the
    conversation's words it was read with, else the question as read when it differs from what they typed ("what
    about E-4713?"), else which earlier question it followed. `history` is the one the response was given with."""
    resolved = response.get("resolved") or {}
    if not resolved.get("follow_up"):
        return None
    if resolved.get("terms"):
        return f"Understood as a follow-up, with: {' '.join(resolved['terms'])}"
    if resolved["question"] != response.get("message"):
        return f"Understood as: {resolved['question']}"
    turns = resolved.get("turns") or []
    earlier = history[turns[0]]["content"] if turns and turns[0] < len(history) else ""
    return f"Understood as a follow-up to: {earlier}" if earlier else "Understood as a follow-up"


def recent_history(exchanges: Sequence[Sequence[Mapping[str, Any]]], settings: Settings) -> list[dict]:
    """The latest exchanges (each a user message and its reply) that fit the history limits, flattened: how a door
    that keeps the whole chat (the chat UI, `spanqa chat`) sends it without ever being refused."""
    kept: list[Sequence[Mapping[str, Any]]] = []
    characters = turns = 0
    for pair in reversed(exchanges):
        characters += sum(len(turn["content"]) for turn in pair)
        turns += len(pair)
        if characters > settings.max_history_chars or turns > settings.max_history_turns:
            break
        kept.append(pair)
    return [dict(turn) for pair in reversed(kept) for turn in pair]
