"""Follow-up questions: read a message in the light of the conversation before it, offline and in microseconds.

In a chat people ask "How do I find commits whose message mentions a ticket number?", then "can it ignore upper/lower
case?". The second message alone names no topic: retrieval would search the whole collection for "ignore upper
lower case" and the reader would not know what "it" is. `resolve` reads a message after the conversation:

* **The anchor** is the latest earlier user question that went to the documents, as it was understood (its own
  resolution, so a chain of follow-ups keeps its topic), with the answer it got when there was one.
* **Which of the conversation's words the message needs** is decided by the learned term selector
  (plugin/engine/term_selection.py): whether the message depends on the conversation at all, and if it does,
  which of the anchor's words (and the words its chain carried, and its answer) join it. A message that needs
  none stands alone and is answered exactly as if it were the first, so a change of topic is left alone.
* **What is searched** is the message with those words, fused with the message's own search
  (Assistant._search_resolved); **what the reader reads** is the message followed by the same words (QuReTeC's
  way: the reader finds "it" among them). "what about E-4713?" after "What does error E-4712 mean?" is the one
  shape read otherwise: the new term takes the old one's place in the earlier question.

The conversation never reaches anything but these two texts: it cannot change the route of a chit-chat message,
the threshold, or what may be quoted (only the collection's passages are).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanqa.plugin.engine.history import Turn
from spanqa.plugin.engine.term_selection import Context, TermSelector, term_key
from spanqa.plugin.engine.words import CODE, WORD

__all__ = ["Resolution", "resolve", "standalone"]


@dataclass(frozen=True)
class Resolution:
    """How a message was understood: the question the reader reads, the text that is searched, the words of the
    conversation added to both, and which earlier turns (indices into the history) were used. A message that
    stands alone has all three texts equal to itself, no words and no turns."""

    message: str
    question: str
    query: str
    turns: tuple[int, ...] = field(default_factory=tuple)
    terms: tuple[str, ...] = field(default_factory=tuple)

    @property
    def follow_up(self) -> bool:
        return bool(self.turns)

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "query": self.query, "follow_up": self.follow_up,
                "turns": list(self.turns), "terms": list(self.terms)}


def standalone(message: str) -> Resolution:
    return Resolution(message, message, message)


def resolve(message: str, history: Sequence[Turn], selector: TermSelector) -> Resolution:
    """How to read `message` after `history` (checked Turns, oldest first): the conversation's words that
    `selector` chooses join what is searched and what is read; a message for which it chooses none stands
    alone."""
    anchor = _anchor(history, selector)
    if anchor is None:
        return standalone(message)
    terms = selector.select(message, anchor.context())
    if not terms:
        return standalone(message)
    swapped = _swap_alternative(message, anchor.question)
    if swapped:  # "what about E-4713?": a new question of the same shape; the old term and its answer are gone
        return Resolution(message, swapped, swapped, anchor.turns)
    added = " ".join(terms)
    return Resolution(message, f"{message} {added}", f"{added} {message}", anchor.turns, tuple(terms))


@dataclass(frozen=True)
class _Anchor:
    """The question a follow-up follows: as typed, as it was understood (its reader question and its search
    query, which carries the topic down a chain of follow-ups), the answer it got, and the turns it came from."""

    message: str
    question: str
    query: str
    answer: str
    turns: tuple[int, ...]

    def context(self) -> Context:
        """What the term selector sees: the question as typed, its answer, and the words a chain of follow-ups
        carried into its search (said earlier)."""
        own = {term_key(w) for w in WORD.findall(self.message)}
        carried = " ".join(w for w in WORD.findall(self.query) if term_key(w) not in own)
        return Context((self.message,), self.answer, carried)


def _anchor(history: Sequence[Turn], selector: TermSelector) -> _Anchor | None:
    """The latest user question with a topic, as understood, with the answer it got."""
    for i in range(len(history) - 1, -1, -1):
        turn = history[i]
        if turn.role != "user" or _is_chitchat(turn.content):
            continue  # "thanks!" or "hello": nothing the next question can follow
        reply = history[i + 1] if i + 1 < len(history) and history[i + 1].role == "assistant" else None
        if reply is not None and reply.response is not None and reply.response.get("route") not in (
                None, "documents", "fallback"):
            continue  # the engine did not take it for a question
        understood = _understood(turn, reply, history[:i], selector)
        if reply is None:
            return _Anchor(turn.content, understood.question, understood.query, "", (i,))
        return _Anchor(turn.content, understood.question, understood.query, reply.answer_text, (i, i + 1))
    return None


_CHITCHAT = frozenset({
    "thanks", "thank", "thx", "ty", "hello", "hi", "hey", "bye", "goodbye", "ok", "okay", "great", "cool", "nice",
    "good", "perfect", "awesome", "cheers", "got", "it", "see", "you", "yes", "no", "sure", "much", "very", "so",
    "lot", "a", "again", "morning", "evening", "night", "for", "that", "the", "help", "wow",
})


def _is_chitchat(text: str) -> bool:
    words = [w.lower() for w in WORD.findall(text)]
    return all(w in _CHITCHAT for w in words)


def _understood(turn: Turn, reply: Turn | None, before: Sequence[Turn], selector: TermSelector) -> Resolution:
    """How `turn` was understood: from its response's JSON when the door kept it, else by resolving it against
    the turns before it (as the engine did then)."""
    if reply is not None and reply.response is not None:
        resolved = reply.response.get("resolved") or {}
        if isinstance(resolved, Mapping) and isinstance(resolved.get("question"), str):
            query = resolved.get("query") if isinstance(resolved.get("query"), str) else resolved["question"]
            return Resolution(turn.content, resolved["question"], query)
    return resolve(turn.content, before, selector)


_ALTERNATIVE = re.compile(r"^(?:and |but )?(?:what|how) about (?P<x>.+?)\s*\??$|^and (?P<y>[^?]{1,40}?)\s*\?$", re.I)


def _swap_alternative(message: str, question: str) -> str | None:
    """"what about E-4713?" after "What does error E-4712 mean?" → "What does error E-4713 mean?": the new term
    takes the place of the question's term of the same shape (a code, a number, a name), or None."""
    match = _ALTERNATIVE.match(message.strip())
    if not match:
        return None
    new = (match.group("x") or match.group("y")).strip()
    if len(new.split()) != 1:
        return None
    shape = _shape(new)
    old = next((w for w in re.findall(r"[\w.\-]+", question) if _shape(w) == shape and w != new), None)
    if shape == "word" or old is None:
        return None
    return re.sub(rf"(?<![\w.\-]){re.escape(old)}(?![\w\-])", new, question, count=1)


def _shape(word: str) -> str:
    if any(c.isdigit() for c in word):
        return "code" if any(c.isalpha() for c in word) else "number"
    if CODE.fullmatch(word):
        return "identifier"
    return "name" if word[:1].isupper() else "word"
