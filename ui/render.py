"""HTML for the chat UI. Every piece of document text is escaped here, so a document can never inject markup
or script into the page; the only markup is spanqa's own."""

from __future__ import annotations

import html

__all__ = ["highlighted_passage", "intent_badge", "escape_markdown", "passage_block"]

CONTEXT_CHARS = 300


def highlighted_passage(passage_text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> str:
    """The answer span in a <mark>, with up to `context` characters either side; all text escaped."""
    left = max(0, start - context)
    right = min(len(passage_text), end + context)
    before = ("…" if left > 0 else "") + passage_text[left:start]
    after = passage_text[end:right] + ("…" if right < len(passage_text) else "")
    return (f'<div class="spanqa-passage">{html.escape(before)}'
            f'<mark class="spanqa-answer">{html.escape(passage_text[start:end])}</mark>'
            f"{html.escape(after)}</div>")


def passage_block(passage_text: str) -> str:
    """A quoted passage with nothing marked; all text escaped."""
    return f'<div class="spanqa-passage">{html.escape(passage_text)}</div>'


def intent_badge(label: str, confidence: float) -> str:
    return f":gray-badge[{html.escape(label.replace('_', ' '))} · {confidence:.2f}]"


_MARKDOWN_SPECIALS = set("\\`*_{}[]()#+-.!|<>$~:")


def escape_markdown(text: str) -> str:
    """Text that st.markdown shows literally: no links, images, emphasis or LaTeX smuggled in by a document."""
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in html.escape(text, quote=False))
