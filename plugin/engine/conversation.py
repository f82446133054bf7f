"""Follow-up questions: read a message in the light of the conversation before it, offline and in microseconds.

In a chat people ask "What does the client's send method return?", then "and how long does it wait by default?".
The second message alone names no topic: retrieval would search the whole collection for "how long does it wait"
and the reader would not know what "it" is. `resolve` decides whether a message depends on the conversation and,
when it does, builds what is searched and what is read from the message and the turn it follows:

* **Does it depend?** A message depends on the conversation when it points back (a third-person pronoun, "this",
  "that one"), continues ("and …", "what about …", "also …") or is too short to name a topic ("by whom?", "the
  default?"). Anything else stands alone and is answered exactly as if it were the first message, so a change of
  topic is never dragged back.
* **The anchor** is the latest earlier user question that went to the documents, as it was understood (its own
  resolution, so a chain of follow-ups keeps its topic), with the answer it got when there was one.
* **What is searched**: the message plus the anchor's content words and a short answer's text, fused with the
  message's own search (Assistant._search_resolved); what the reader reads: an elliptical question completed from
  the anchor ("by whom?"), a term swapped in ("what about E-4713?"), the pronoun replaced by the anchor's topic
  where one is found (the cited document's name, an identifier, a name, the answer to a "who/which" question),
  else the message itself.

No model is involved: rules over words, chosen by measurement (`python -m bench conversations`, README).
The conversation never reaches anything but these two texts: it cannot change the route of a chit-chat message,
the threshold, or what may be quoted (only the collection's passages are).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from spanqa.plugin.engine.history import Turn

__all__ = ["Resolution", "resolve", "standalone"]

_WORD = re.compile(r"[A-Za-z0-9_][\w.\-']*[\w)]|[A-Za-z0-9_]")
_WH = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how"])
_AUX = frozenset({
    "is", "are", "was", "were", "be", "been", "do", "does", "did", "can", "could", "should", "would", "will",
    "shall", "may", "might", "must", "has", "have", "had", "am",
})
_FUNCTION = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "but", "so", "as",
    "into", "about", "than", "then", "also", "too", "not", "no", "yes", "i", "me", "my", "we", "our", "you",
    "your", "if", "any", "some", "all", "more", "most", "much", "many", "very", "just", "only", "please",
    "tell", "there", "here", "else", "other", "another",
})
# Words that point back to something said before. "that" is handled apart (it is also a relative pronoun).
_ANAPHORA = frozenset({
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "he", "him", "his", "himself",
    "she", "her", "hers", "herself", "this", "these", "those",
})
_DEMONSTRATIVES = frozenset(["this", "that", "these", "those"])
_PERSONAL = frozenset(["he", "him", "his", "himself", "she", "her", "hers", "herself"])
_ONE_BEFORE = frozenset(["which", "that", "this", "the", "other", "new", "last", "first", "same"])
_CONTINUATIONS = ("and ", "also ", "what about ", "how about ", "what if ", "same for ", "same with ", "but ",
                  "or ", "then ", "so ", "plus ")
_SHORT = 1  # a message with this many content words or fewer cannot name its own topic ("by whom?", "the default?")
_ANSWER_WORDS = 8  # an answer this short is an entity worth carrying into the next search
_CONTEXT_WORDS = 16  # of a chain's words, the latest this many are carried on


@dataclass(frozen=True)
class Resolution:
    """How a message was understood: the question the reader reads, the text that is searched, and which earlier
    turns (indices into the history) were used. A message that stands alone has all three equal to itself and
    no turns."""

    message: str
    question: str
    query: str
    turns: tuple[int, ...] = field(default_factory=tuple)

    @property
    def follow_up(self) -> bool:
        return bool(self.turns)

    def to_json(self) -> dict[str, Any]:
        return {"question": self.question, "query": self.query, "follow_up": self.follow_up,
                "turns": list(self.turns)}


def standalone(message: str) -> Resolution:
    return Resolution(message, message, message)


# --- resolving a message ----------------------------------------------------------------------------------------

def resolve(message: str, history: Sequence[Turn]) -> Resolution:
    """How to read `message` after `history` (checked Turns, oldest first)."""
    anchor = _anchor(history)
    if anchor is None or not depends_on_context(message):
        return standalone(message)
    swapped = _swap_alternative(message, anchor.question)
    if swapped:  # "what about E-4713?": a new question of the same shape; the old term and its answer are gone
        return Resolution(message, swapped, swapped, anchor.turns)
    context = _context_words(anchor, message)
    if not context:
        return standalone(message)
    query = " ".join([*context, message])
    return Resolution(message, reader_question(message, anchor), query, anchor.turns)


def depends_on_context(message: str) -> bool:
    """Whether `message` points back, continues, or is too short to name a topic of its own (module docstring).
    A longer message that points nowhere stands alone: a change of subject is never dragged back."""
    lowered = message.lower().strip()
    words = [w.strip("'") for w in _WORD.findall(lowered)]
    if not words:
        return False
    if lowered.startswith(_CONTINUATIONS):
        return True
    first = next((i for i in range(len(words)) if _points_back(words, i)), None)
    if first is not None and not _antecedent_before(message, words[first]):
        return True
    return len(_content_words(message)) <= _SHORT


_DETERMINERS = frozenset(["a", "an", "the", "my", "your", "our", "all", "some", "any", "both"])
_POSSESSIVES = frozenset(["its", "their", "his", "her"])


def _antecedent_before(message: str, pronoun: str) -> bool:
    """Whether the message names what its pronoun points to before it ("Does orjson.dumps release the GIL while it
    runs?", "Which hook lets a plugin provide its own timer?", "where does tqdm print its bar?"): for he/she a
    name; for it/they an identifier, a noun after a determiner, or — for its/their — the question's
    subject. Then the message stands alone, whatever came before it."""
    match = re.search(rf"\b{re.escape(pronoun)}\b", message, re.I)
    tokens = message[:match.start()].split() if match else []
    if pronoun in _PERSONAL:
        return any(t[:1].isupper() for t in tokens[1:])
    if _CODE.search(" ".join(tokens)) or any("-" in t.strip("?,.;:") for t in tokens):
        return True  # (a capitalised word is not enough: "how do I allow Unix sockets with it?" points back)
    words = [t.lower().strip("?,.;:'\"") for t in tokens]
    for i, (word, following) in enumerate(zip(words, words[1:], strict=False)):
        if following in _ANAPHORA or following in _FUNCTION or following in _AUX or following in _WH:
            continue
        if word in _DETERMINERS:
            return True
        if pronoun in _POSSESSIVES and word in _AUX and i > 0 and words[i - 1] in _WH:
            return True  # "where does tqdm print its …": its = the subject
    return False


def _points_back(words: list[str], i: int) -> bool:
    word = words[i]
    if word in _ANAPHORA:
        return True
    if word in ("one", "ones"):
        return i > 0 and words[i - 1] in _ONE_BEFORE
    if word == "that":  # a pronoun at the start, after a verb or a preposition; a relative pronoun after a noun
        before = words[i - 1] if i else ""
        return not before or before in _WH or before in _AUX or before in _FUNCTION or i == len(words) - 1 \
            or _looks_like_verb(before)
    return False


def _looks_like_verb(word: str) -> bool:
    return word in {"change", "set", "use", "disable", "enable", "configure", "mean", "do", "fix", "avoid",
                    "install", "raise", "return", "call", "get", "make", "turn", "override", "increase", "reduce"}


def _content_words(text: str) -> list[str]:
    """The words of `text` that carry its topic, in order, each once (original case)."""
    seen: dict[str, str] = {}
    for word in _WORD.findall(text):
        key = word.lower().strip("'")
        if key in _WH or key in _AUX or key in _FUNCTION or key in _ANAPHORA or key in ("that", "one", "ones"):
            continue
        seen.setdefault(key, word)
    return list(seen.values())


@dataclass(frozen=True)
class _Anchor:
    """The question a follow-up follows, as it was understood (its reader question and its search query, which
    carries the topic down a chain of follow-ups), the answer it got, and the turns it came from."""

    question: str
    query: str
    answer: str
    turns: tuple[int, ...]
    source: str = ""  # the document its answer was quoted from


def _anchor(history: Sequence[Turn]) -> _Anchor | None:
    """The latest user question with a topic, as understood, with the answer it got."""
    for i in range(len(history) - 1, -1, -1):
        turn = history[i]
        if turn.role != "user" or _is_chitchat(turn.content):
            continue  # "thanks!" or "hello": nothing the next question can follow
        reply = history[i + 1] if i + 1 < len(history) and history[i + 1].role == "assistant" else None
        if reply is not None and reply.response is not None and reply.response.get("route") not in (
                None, "documents", "fallback"):
            continue  # the engine did not take it for a question
        understood = _understood(turn, reply, history[:i])
        if reply is None:
            return _Anchor(understood.question, understood.query, "", (i,))
        return _Anchor(understood.question, understood.query, reply.answer_text, (i, i + 1), reply.answer_source)
    return None


_CHITCHAT = frozenset({
    "thanks", "thank", "thx", "ty", "hello", "hi", "hey", "bye", "goodbye", "ok", "okay", "great", "cool", "nice",
    "good", "perfect", "awesome", "cheers", "got", "it", "see", "you", "yes", "no", "sure", "much", "very", "so",
    "lot", "a", "again", "morning", "evening", "night", "for", "that", "the", "help", "wow",
})


def _is_chitchat(text: str) -> bool:
    words = [w.lower() for w in _WORD.findall(text)]
    return all(w in _CHITCHAT for w in words)


def _understood(turn: Turn, reply: Turn | None, before: Sequence[Turn]) -> Resolution:
    """How `turn` was understood: from its response's JSON when the door kept it, else by resolving it against
    the turns before it (as the engine did then)."""
    if reply is not None and reply.response is not None:
        resolved = reply.response.get("resolved") or {}
        if isinstance(resolved, Mapping) and isinstance(resolved.get("question"), str):
            query = resolved.get("query") if isinstance(resolved.get("query"), str) else resolved["question"]
            return Resolution(turn.content, resolved["question"], query)
    return resolve(turn.content, before)


def _context_words(anchor: _Anchor, message: str) -> list[str]:
    """The anchor's topic words (its query's, so a chain keeps its topic; the latest _CONTEXT_WORDS of them) and
    a short answer's, less those the message already has."""
    have = {w.lower() for w in _content_words(message)}
    words = _content_words(anchor.query)[-_CONTEXT_WORDS:]
    if anchor.answer and len(anchor.answer.split()) <= _ANSWER_WORDS:
        words += _content_words(anchor.answer)
    return [w for w in dict.fromkeys(words) if w.lower() not in have]


def reader_question(message: str, anchor: _Anchor) -> str:
    """The question the reader reads for a follow-up of `anchor` (a term swapped for another — "what about
    E-4713?" — is resolved before, in `resolve`): an elliptical wh-question completed from it ("by whom?" after
    "When was the barrier opened?" → "by whom was the barrier opened?"), else the message with its pronoun
    replaced by what it points to, else the message itself (the passages, found with the conversation's words,
    carry the topic)."""
    completed = _complete_ellipsis(message, anchor.question)
    if completed:
        return completed
    words = [w.strip("'") for w in _WORD.findall(message.lower())]
    pronoun = next((w for w in words if w in _ANAPHORA and w not in _DEMONSTRATIVES), None)
    topic = _topic(anchor, pronoun) if pronoun else None
    if not topic:
        return message
    possessive = pronoun in ("its", "their", "his", "her", "hers", "theirs")
    replacement = f"{topic}'s" if possessive and not topic.endswith("'s") else topic
    return re.sub(rf"\b{re.escape(pronoun)}\b", lambda _: replacement, message, count=1, flags=re.I)


_WH_ALT = "|".join(sorted(_WH))
# The auxiliaries that open a question's verb phrase (not "be", "may", "must": rarely right after a wh-phrase).
_AUX_ALT = "|".join(sorted(_AUX - {"be", "been", "shall", "may", "might", "must", "am"}))
_WH_FRAGMENT = re.compile(rf"^(?:and |but |so |also )?((?:(?:by|in|for|from|with|at|to|since|until) )?"
                          rf"(?:{'|'.join(sorted(_WH - {'whose'}))})\b(?: \w+){{0,2}}?)\s*\??$", re.I)
# A question's wh-phrase up to its auxiliary ("Which pytest version" in "Which pytest version does … require?"),
# else its wh-word alone ("Who" in "Who invented …?").
_WH_LEAD = re.compile(rf"^\s*(?:(?:by|in|for|from|with|at|to) )?(?:{_WH_ALT})\b"
                      rf"(?:(?! (?:{_AUX_ALT})\b) [\w'-]+){{0,3}}?(?= (?:{_AUX_ALT})\b)", re.I)
_WH_WORD = re.compile(rf"^\s*(?:(?:by|in|for|from|with|at|to) )?(?:{_WH_ALT})\b", re.I)


def _complete_ellipsis(message: str, question: str) -> str | None:
    """"by whom?" / "and which Python?" / "when?" completed with the rest of the question it follows, or None."""
    fragment = _WH_FRAGMENT.match(message.strip())
    if not fragment or any(w.lower() in _ANAPHORA or w.lower() in _AUX for w in fragment.group(1).split()[1:]):
        return None
    lead = _WH_LEAD.match(question) or _WH_WORD.match(question)
    if not lead:
        return None
    rest = question[lead.end():].strip()
    return f"{fragment.group(1)} {rest}" if rest else None


_NAME = re.compile(r"(?<![\w.])([A-Z][\w\-]*(?:\s+(?:of|von|van|de|la|the|and)?\s*[A-Z][\w\-.]*)*)")
_CODE = re.compile(r"`([^`]+)`|\b([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[a-z]+_[\w]+|[a-z]+[A-Z]\w*|--[\w-]+)\b")


def _topic(anchor: _Anchor, pronoun: str) -> str | None:
    """What `pronoun` in a follow-up of `anchor` most likely points to.

    he/she: the answer to a "who" question, else the person named. it/they: an identifier the question got as its
    answer ("which function …?" → it), plural things the answer lists, else the identifier, name or noun phrase
    the question is about (or, down a chain, its query), else the answer to a what/which question. None when
    nothing fits: the reader then reads the message as it is."""
    asked = anchor.question.lower().lstrip()
    answer = anchor.answer.strip().strip("`")
    short = bool(answer) and len(answer.split()) <= 6
    which = asked.startswith(("what ", "which ", "what's "))
    if pronoun in _PERSONAL:
        if short and asked.startswith("who "):
            return answer
        return _name(anchor.question) or _name(anchor.query, sentence=False) or (answer if short else None)
    if short and which and _CODE.fullmatch(answer):
        return answer
    if short and which and pronoun in ("they", "them", "their", "theirs") and answer.endswith("s"):
        return answer
    singular = pronoun in ("it", "its", "itself")  # a document names one thing: a package, a place
    named = (_document_name(anchor) if singular else None) or _code(anchor.question) or _name(anchor.question)
    if named:
        return named
    if short and asked.startswith(("what is ", "what are ", "what was ", "which ")):
        return answer  # "What is the most damaging threat to bees?" → the mite → "what does it spread?"
    return _noun_phrase(anchor.question) or _code(anchor.query) or _name(anchor.query, sentence=False)


def _document_name(anchor: _Anchor) -> str | None:
    """The cited document's name as the conversation wrote it ("distro" for distro.txt, "Tower Bridge" for
    tower-bridge.md): what a technical conversation's "it" most often points to."""
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", anchor.source.replace("\\", "/").rsplit("/", 1)[-1])
    if sum(c.isalnum() for c in stem) < 3:
        return None
    # Spaces, hyphens and underscores are optional between the name's letters: sortedcontainers.txt is the
    # conversation's "Sorted Containers", tower-bridge.md its "Tower Bridge".
    letters = [c for c in stem if c.isalnum()]
    pattern = r"[\s_\-]?".join(re.escape(c) for c in letters)
    match = re.search(rf"(?<![\w\-]){pattern}(?![\w\-])", f"{anchor.question} {anchor.query}", re.I)
    return match.group(0) if match else None


def _code(text: str) -> str | None:
    match = _CODE.search(text)
    return (match.group(1) or match.group(2)) if match else None


def _name(text: str, sentence: bool = True) -> str | None:
    """The longest capitalised name in `text` (after its first word when `text` is a sentence)."""
    names = [m.group(1) for m in _NAME.finditer(text) if m.start() > 0 or not sentence]
    names = [" ".join(_drop_leading_function_words(n.split())) for n in names]
    names = [n for n in names if n]
    return max(names, key=len) if names else None


_PHRASE = re.compile(r"\b(?:the|a|an)((?: (?!(?:of|in|on|at|to|for|from|by|with|and|or|is|are|was|were|do|does|did|"
                     r"can|when|if|that|this)\b)[a-z][\w\-]*){1,3})", re.I)


def _drop_leading_function_words(words: list[str]) -> list[str]:
    while words and (words[0].lower() in _WH or words[0].lower() in _AUX or words[0].lower() in _FUNCTION):
        words = words[1:]
    return words


def _noun_phrase(text: str) -> str | None:
    """The first "the/a …" phrase of `text` (up to three words, to the next function word): "the bee space"."""
    match = _PHRASE.search(text)
    return f"the{match.group(1)}" if match else None


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
    if _CODE.fullmatch(word):
        return "identifier"
    return "name" if word[:1].isupper() else "word"
