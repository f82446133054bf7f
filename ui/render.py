"""How answers are shown: HTML for the chat UI and the span view, text for the terminal. Every piece of document
text is escaped here, so a document can never inject markup or script into a page; the only markup is spanqa's
own."""

from __future__ import annotations

import html

__all__ = ["highlighted_passage", "intent_badge", "escape_markdown", "passage_block", "span_view_html",
           "span_view_text"]

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


_VIEW_STYLE = ("body{font:16px/1.6 system-ui,sans-serif;margin:2em auto;padding:0 1em;color:#222;max-width:52em}"
               "body.paged{max-width:none}.paged main{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);"
               "gap:1.5em;align-items:start}figure{margin:0;position:sticky;top:1em}figure img{width:100%;"
               "border:1px solid #ddd}figcaption{color:#666;font-size:.9em}"
               "header{border-bottom:1px solid #ddd;margin-bottom:1em}header p{color:#666;margin:.2em 0}"
               "pre{white-space:pre-wrap;font:inherit;margin:0}mark{background:#ffe08a;padding:0 2px;"
               "border-radius:3px}")


def span_view_html(view: dict, page_image: str | None = None) -> str:
    """A whole page showing a span view (the JSON of the `view` operation): the document's title, source and
    page above its text, the span in `<mark id="answer">` (a link's `#answer` scrolls to it), and beside it the
    PDF page with the span boxed when `page_image` (its URL: the view's own `page_image` link, or a data: URL) is
    given. Inert: all text escaped, and the server sends it with a policy that runs no script."""
    title = html.escape(view["title"] or view["source"])
    where = f"page {view['page']} of {view['pages']}" if view["pages"] > 1 else "page 1"
    lead = "…" if view["shown_start"] > 0 else ""
    text = (f"<pre>{lead}{html.escape(view['before'])}<mark id=\"answer\">{html.escape(view['span'])}</mark>"
            f"{html.escape(view['after'])}</pre>")
    figure = ""
    if page_image:
        source = html.escape(page_image)
        figure = (f'<figure><a href="{source}"><img src="{source}" alt="Page {view["page"]} of {title}, the answer '
                  f'boxed"></a><figcaption>Page {view["page"]} as printed, the answer boxed</figcaption></figure>')
    return ("<!doctype html><html><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_VIEW_STYLE}</style></head><body class=\"{'paged' if figure else ''}\">"
            f"<header><h1>{title}</h1><p>{html.escape(view['source'])} · {where} · characters {view['start']}–"
            f"{view['end']}</p></header><main>{figure}{text}</main></body></html>")


def span_view_text(view: dict, color: bool) -> str:
    """A span view for a terminal: a heading line, then the text with the span in reverse video (or between
    »…« when the output is not a terminal)."""
    left, right = ("\x1b[7m", "\x1b[0m") if color else ("»", "«")
    heading = f"{view['title'] or view['source']} ({view['source']}, page {view['page']}, " \
              f"characters {view['start']}–{view['end']})"
    lead = "…" if view["shown_start"] > 0 else ""
    text = f"{lead}{view['before']}{left}{view['span']}{right}{view['after']}"
    return f"{heading}\n\n{text}"
