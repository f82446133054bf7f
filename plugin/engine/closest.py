"""When spanqa is unsure: the passage most likely to hold the answer, quoted, with its best candidate marked.

An abstention that only says "the documents don't seem to answer that" leaves the user to read the passages
themselves, although the answer is often in the first one on screen. So a withheld answer still shows the passage
its best candidate came from (the candidate the answer ranker put first, or the first passage retrieval found
when the reader proposed none), cut to at most `max_chars` characters around the candidate at sentence or line
boundaries, and says plainly that spanqa is not sure. It is a quote, never an answer: the response stays
abstained, and an unanswerable question gets no confident reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from spanqa.plugin.engine.reader import Answer
from spanqa.retriever.records import Hit, Passage

__all__ = ["Closest", "closest_passage", "quote_window"]

# Where a quote may begin or end: after a sentence's end, or at a line break, if one is this close to the cut;
# else at a space (a longer search would throw away quoted text the window had room for).
_BREAK = re.compile(r"(?<=[.!?;:])\s+|\n+")
_SNAP_CHARS = 120


@dataclass(frozen=True)
class Closest:
    """A quote of the passage most likely to hold the answer: `text` is the document's characters
    `start`…`end` (the passage's own text, cut), and `candidate` the best span inside it, or None."""

    passage: Passage
    text: str
    start: int
    end: int
    candidate: Answer | None = None

    @property
    def marked(self) -> str:
        """The quote with its candidate in **bold** (markdown, as chat clients render it); "…" where it was cut."""
        text = self.text
        if self.candidate is not None:
            left = self.candidate.document_start - self.start
            right = self.candidate.document_end - self.start
            text = f"{text[:left]}**{text[left:right]}**{text[right:]}"
        lead = "…" if self.start > self.passage.start else ""
        tail = "…" if self.end < self.passage.end else ""
        return f"{lead}{text}{tail}"


def closest_passage(answers: list[Answer], hits: list[Hit], max_chars: int) -> Closest | None:
    """The quote a withheld answer shows: around the best candidate in its passage, else the opening of the first
    passage retrieved; None when nothing was retrieved."""
    by_id = {h.passage.id: h.passage for h in hits}
    candidate = next((a for a in answers if a.passage_id in by_id), None)
    if candidate is not None:
        passage = by_id[candidate.passage_id]
        start, end = quote_window(passage.text, candidate.start, candidate.end, max_chars)
    elif hits:
        passage = hits[0].passage
        start, end = quote_window(passage.text, 0, 0, max_chars)
    else:
        return None
    return Closest(passage, passage.text[start:end], passage.start + start, passage.start + end, candidate)


def quote_window(text: str, start: int, end: int, max_chars: int) -> tuple[int, int]:
    """The widest stretch of `text` around `start`…`end` that fits in `max_chars`, cut at sentence or line
    boundaries where one is close enough (else at a space), with the span roughly centred."""
    if len(text) <= max_chars:
        return 0, len(text)
    if end - start >= max_chars:
        return start, start + max_chars
    room = max_chars - (end - start)
    left = max(0, start - room // 2)
    right = min(len(text), left + max_chars)
    left = max(0, right - max_chars)
    return _snap_left(text, left, start), _snap_right(text, right, end)


def _snap_left(text: str, left: int, limit: int) -> int:
    """The first sentence or line start at or after `left` (before `limit`), else the next word's start."""
    if left == 0:
        return 0
    for match in _BREAK.finditer(text, left, min(limit, left + _SNAP_CHARS)):
        return match.end()
    space = text.find(" ", left, limit)
    return space + 1 if space != -1 else left


def _snap_right(text: str, right: int, limit: int) -> int:
    """The last sentence or line end at or before `right` (after `limit`), else the previous word's end."""
    if right >= len(text):
        return len(text)
    last = None
    for match in _BREAK.finditer(text, max(limit, right - _SNAP_CHARS), right):
        last = match.start()
    if last is not None:
        return last
    space = text.rfind(" ", limit, right)
    return space if space != -1 else right
