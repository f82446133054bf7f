"""`spanqa chat`: a conversation in the terminal, over the service layer.

    $ spanqa chat --collection my-docs
    spanqa chat — ask about your documents; follow-ups are read in the light of the conversation.
    /sources shows the passages behind the last answer, /open N shows one in its document, /reset starts over,
    /quit (or Ctrl-D) leaves.
    you> When was Tower Bridge opened?
    “30 June 1894” — tower-bridge.md, page 1 (confidence 0.93)
    you> who opened it?
    “the Prince of Wales” — tower-bridge.md, page 1 (confidence 0.88)
      understood as: who opened Tower Bridge?

The prompt has line editing and a history of what was typed (readline, kept in $SPANQA_HOME/chat-history between
sessions), as users of a database shell expect. Every spanqa error is printed as its message and the conversation
goes on; Ctrl-C abandons the line being typed.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from spanqa.plugin.doors.service import Service, exchange, interpretation, recent_history
from spanqa.ui.render import span_view_text

from spanqa.errors import SpanqaError

__all__ = ["TerminalChat", "run_chat"]

PROMPT = "you> "
BANNER = ("spanqa chat — ask about your documents; follow-ups are read in the light of the conversation.\n"
          "/sources shows the passages behind the last answer, /open N shows passage N in its document (/open: the "
          "answer), /reset starts over, /quit (or Ctrl-D) leaves.")
SOURCE_CHARS = 300  # of each passage /sources prints
OPEN_CONTEXT = 600  # characters /open shows either side of the span


class TerminalChat:
    """One conversation: what was said (for the next follow-up), and the last response (for /sources)."""

    def __init__(self, service: Service, out: TextIO = sys.stdout, options: dict | None = None) -> None:
        self.service = service
        self.out = out
        self.options = {k: v for k, v in (options or {}).items() if v is not None}
        self.exchanges: list[list[dict]] = []
        self.last: dict | None = None

    def handle(self, line: str) -> bool:
        """Act on one typed line; False when the user asked to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith("/"):
            return self._command(line)
        history = recent_history(self.exchanges, self.service.settings)
        try:
            data = self.service.ask(line, history=history or None, **self.options).data
        except SpanqaError as exc:
            self._say(f"error: {exc}")
            return True
        self.exchanges.append(exchange(line, data))
        self.last = data
        self._say(data["reply"])
        note = interpretation(data, history)
        if note:
            self._say(f"  {note[0].lower()}{note[1:]}")
        return True

    def _command(self, line: str) -> bool:
        name = line.split()[0].lower()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/reset":
            self.exchanges, self.last = [], None
            self._say("(a new conversation)")
        elif name == "/sources":
            self._sources()
        elif name == "/open":
            self._open(line.split()[1:])
        elif name == "/help":
            self._say(BANNER)
        else:
            self._say(f"unknown command {name}: /sources, /open N, /reset, /help or /quit")
        return True

    def _open(self, arguments: list[str]) -> None:
        """The last answer (no argument) or passage N of /sources, in its document, the span marked."""
        last = self.last or {}
        items = (last.get("passages") if arguments else last.get("answers")) or []
        number = arguments[0] if arguments else "1"
        if not number.isdigit() or not 1 <= int(number) <= len(items):
            what = f"passage 1 to {len(items)}" if items else "nothing to open yet: ask a question first"
            self._say(f"(/open takes {what})" if items else f"({what})")
            return
        item = items[int(number) - 1]
        try:
            view = self.service.call("view", {"document_id": item["document_id"], "start": item["start"],
                                              "end": item["end"], "context": OPEN_CONTEXT}).data
        except SpanqaError as exc:
            self._say(f"error: {exc}")
            return
        self._say(span_view_text(view, color=self.out.isatty()))
        self._say(f"  (on a spanqa server: {item['view']}"
                  + (f"; its page, the span boxed: {view['page_image']})" if view.get("page_image") else ")"))

    def _sources(self) -> None:
        passages = (self.last or {}).get("passages") or []
        if not passages:
            self._say("(no passages yet: ask a question about your documents first)")
        for number, passage in enumerate(passages, start=1):
            text = " ".join(passage["text"].split())
            more = "…" if len(text) > SOURCE_CHARS else ""
            self._say(f"[{number}] {passage['citation']}\n    {text[:SOURCE_CHARS]}{more}")

    def _say(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def _line_editing(history_file: Path) -> Callable[[], None]:
    """Arrow keys, editing and the typed-line history (readline, where Python has it); returns how to save it."""
    try:
        import readline
    except ImportError:  # a Python built without readline still chats, without line editing
        return lambda: None
    with contextlib.suppress(OSError):  # the first session has no history yet
        readline.read_history_file(history_file)
    readline.set_history_length(1000)

    def save() -> None:
        with contextlib.suppress(OSError):  # a read-only home: the session's lines are simply not kept
            history_file.parent.mkdir(parents=True, exist_ok=True)
            readline.write_history_file(history_file)

    return save


def run_chat(service: Service, history_file: Path, options: dict | None = None,
             read: Callable[[str], str] = input) -> int:
    """The prompt loop until /quit or Ctrl-D; 0 on a normal exit."""
    chat = TerminalChat(service, options=options)
    save = _line_editing(history_file) if read is input and sys.stdin.isatty() else (lambda: None)
    print(BANNER, flush=True)
    try:
        while True:
            try:
                line = read(PROMPT)
            except KeyboardInterrupt:
                print(flush=True)  # Ctrl-C drops the line being typed, as a shell does
                continue
            if not chat.handle(line):
                break
    except EOFError:
        print(flush=True)
    finally:
        save()
    return 0
