"""Where an answer span begins and ends: the reader's token span snapped to what a person would quote, and the
whole units (a code token, a sentence) a span sits inside or cuts across.

The model proposes spans in tokens; mapped back to characters they can cut an identifier in half, take a stray
backtick or quote, run across a heading's underline or a table rule, or open a bracket they never close. These
rules work on characters alone, so they are tested without a model (tests/test_answers.py, test_properties.py).
"""

from __future__ import annotations

import re

__all__ = ["snap_span", "unit_spans"]

_INLINE_CODE = re.compile(r"(`{1,2})([^`\n]+?)\1")
_MAX_CODE_CHARS = 80  # a longer "code segment" is a sentence that happens to sit between backticks
_MAX_UNITS = 4  # whole units offered per candidate: the reader's own span stays the first choice
_MAX_SENTENCE_WORDS = 40
# A code token: an identifier path with its call parentheses, or a command-line flag with its value.
_CODE_TOKEN = re.compile(r"(?:--?|@)?[A-Za-z_][\w.\-]*\w(?:\(\))?(?:=\w+)?")
# ...that really is code, not a hyphenated word: dotted, snake_case, camelCase, a call, a flag or a decorator.
_CODE_SHAPE = re.compile(r"^(--?|@)\w|\w\.\w|_|[a-z][A-Z]|\(\)$|=")
_LINE = re.compile(r"[^\n]+|(?<=\n)(?=\n)")
_FENCE = re.compile(r"\s*(```|~~~)[\w+-]*\s*$")
_TRACEBACK = "Traceback (most recent call last)"
_PROMPT = re.compile(r"[ \t]*(\$|>>>|\.\.\.)[ \t]+")
# A heading's underline (reStructuredText, Setext Markdown) or a rule: one punctuation mark repeated on a line.
_ADORNMENT = re.compile(r"[ \t]*([=\-~^*+#:`'\"_])\1{2,}[ \t]*$")
_CLOSER = {"[": "]", "(": ")"}
_OPENER = {"]": "[", ")": "("}


def _inline_code(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The inline code segment (Markdown `x` or reStructuredText ``x``) that contains [start, end), if any."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end == -1 else line_end
    for match in _INLINE_CODE.finditer(text, line_start, line_end):
        inner_start, inner_end = match.start(2), match.end(2)
        if inner_start <= start and end <= inner_end:
            return inner_start, inner_end
    return None


def snap_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Widen a span to whole words, to a whole code token (`os.path.join`, `--dry-run`, `boot_time()`), to the
    whole inline code segment it falls inside, to the closing quote of a literal and the closing parenthesis of a
    call it opens; drop markup left dangling at its edges, a shell or REPL prompt before it, code fences and
    blank lines around it, and the lines of a traceback before its last one.

    The reader's boundaries are sub-word tokens: on technical text it cuts identifiers (`create_task` → `task`,
    `psutil.getloadavg()` → `getloadavg`), quotes part of a code segment (`store_true` of
    ``action='store_true'``) or half its backticks, stops inside a literal (`newline='` of `newline=''`) or a
    call's arguments. An answer is quoted whole or not at all; the result is always a range of `text`.
    """
    if start >= end:  # nothing to widen (the reader never proposes an empty span)
        return start, start
    start, end = _strip_markup(text, *_strip_lines(text, start, end))
    if start >= end:  # nothing but markup
        return start, start
    while start > 0 and _is_word_char(text[start - 1]) and _is_word_char(text[start]):
        start -= 1
    while end < len(text) and _is_word_char(text[end]) and _is_word_char(text[end - 1]):
        end += 1
    for token in _CODE_TOKEN.finditer(text, max(0, start - _MAX_CODE_CHARS), min(len(text), end + _MAX_CODE_CHARS)):
        overlaps = token.start() < end and start < token.end()
        if overlaps and _looks_like_code(token.group()) and token.end() - token.start() <= _MAX_CODE_CHARS:
            start, end = min(start, token.start()), max(end, token.end())
    code = _inline_code(text, start, end)
    if code is not None and code[1] - code[0] <= _MAX_CODE_CHARS:
        start, end = code
    end = _close_open_pairs(text, start, end)
    return _strip_markup(text, start, end)


def unit_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Other whole units a span could mean: the code tokens and inline code segments inside a longer span (the
    name a sentence mentions, when a name was asked for), and the sentence around a fragment (when an
    explanation was asked for). The answer ranker decides, with the question's answer type, which one is meant.
    """
    units: list[tuple[int, int]] = []
    if len(text[start:end].split()) > 1:
        for match in _INLINE_CODE.finditer(text, start, end):
            units.append((match.start(2), match.end(2)))
        for token in _CODE_TOKEN.finditer(text, start, end):
            if _looks_like_code(token.group()):
                units.append(snap_span(text, token.start(), token.end()))
    sentence = _sentence_around(text, start, end)
    if sentence is not None:
        units.append(sentence)
    seen, unique = {(start, end)}, []
    for unit in units:
        if unit not in seen and unit[0] < unit[1] and start - _MAX_CODE_CHARS <= unit[0] and unit[1] <= end + 400:
            seen.add(unit)
            unique.append(unit)
    return unique[:_MAX_UNITS]


def _sentence_around(text: str, start: int, end: int) -> tuple[int, int] | None:
    """The sentence (or list item, or line of prose) that holds a fragment, when it is not much longer."""
    left = max(text.rfind(". ", 0, start) + 2, text.rfind("\n", 0, start) + 1, 0)
    stops = [i for i in (text.find(". ", end), text.find("\n", end)) if i != -1]
    right = min(stops) + (1 if stops and text[min(stops)] == "." else 0) if stops else len(text)
    left, right = _strip_markup(text, *_strip_lines(text, left, right))
    if left >= start and right <= end or len(text[left:right].split()) > _MAX_SENTENCE_WORDS:
        return None
    return left, right


def _strip_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """Leave out of a span the lines no answer is made of: blank lines and code fences at its edges, a traceback's
    header and frames (its last line, the exception, is the answer), a prompt (`$ `, `>>> `, `... `), and a
    heading's underline with whatever follows it."""
    lines = [(m.start(), m.end()) for m in _LINE.finditer(text, start, end)]
    keep = [(a, b) for a, b in lines if text[a:b].strip() and not _FENCE.match(text[a:b])]
    if not keep:
        return start, end
    if any(_TRACEBACK in text[a:b] for a, b in keep) and len(keep) > 1:
        keep = keep[-1:]
    # A span never runs across a heading's underline or a rule: it keeps the lines before the first one (where
    # the reader's start was), or, starting on one, what follows it.
    while len(keep) > 1 and _ADORNMENT.match(text, *keep[0]):
        keep = keep[1:]
    cut = next((i for i, (a, b) in enumerate(keep) if i and _ADORNMENT.match(text, a, b)), None)
    if cut is not None:
        keep = keep[:cut]
    start, end = max(start, keep[0][0]), min(end, keep[-1][1])
    prompt = _PROMPT.match(text, start, end)
    if prompt is not None and prompt.end() < end:
        start = prompt.end()
    return start, end


def _close_open_pairs(text: str, start: int, end: int) -> int:
    """The end of a span that opens a call's parenthesis or a literal's quote without closing it: moved to the
    closing one when it is on the same line and near, else left where it is (then markup stripping drops the
    dangling opener)."""
    line_end = text.find("\n", end)
    limit = min(len(text), end + _MAX_CODE_CHARS, len(text) if line_end == -1 else line_end)
    span = text[start:end]
    if span.count("(") > span.count(")"):
        depth, i = span.count("(") - span.count(")"), end
        while i < limit and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            end = i
    for quote in ("'", '"'):
        if text[start:end].count(quote) % 2 and _opens_literal(text, start, end, quote):
            close = text.find(quote, end, limit)
            if close != -1:
                end = close + 1
    return end


def _opens_literal(text: str, start: int, end: int, quote: str) -> bool:
    """Whether the span's last unmatched `quote` opens a literal (`=''`, `('x`) rather than being an apostrophe."""
    at = text.rfind(quote, start, end)
    before = text[at - 1] if at > 0 else " "
    return not before.isalnum()


def _strip_markup(text: str, start: int, end: int) -> tuple[int, int]:
    """Trim whitespace, and backticks, asterisks and brackets that open or close nothing inside the span."""
    while start < end and (text[start].isspace() or text[start] in "`*" or
                           (text[start] in "[(" and _CLOSER[text[start]] not in text[start:end])):
        start += 1
    while end > start and (text[end - 1].isspace() or text[end - 1] in "`*,;:" or
                           (text[end - 1] in "])" and _OPENER[text[end - 1]] not in text[start:end]) or
                           (text[end - 1] == "." and end - 2 >= start and text[end - 2] in "`*")):  # ``x``.
        end -= 1
    return start, end


def _looks_like_code(token: str) -> bool:
    return bool(_CODE_SHAPE.search(token))


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"
