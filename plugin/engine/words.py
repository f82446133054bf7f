"""The word classes a conversation is read with: what a word is, and which words carry no topic of their own
(question words, auxiliaries, function words, the pronouns that point back). Resolution's rules and the learned
term selector's features both read messages through these, so both see the same words."""

from __future__ import annotations

import re

__all__ = ["ANAPHORA", "AUX", "CODE", "FUNCTION", "PERSONAL", "WH", "WORD", "antecedent_before", "content_words",
           "topic_free"]

WORD = re.compile(r"[A-Za-z0-9_][\w.\-']*[\w)]|[A-Za-z0-9_]")
WH = frozenset(["what", "which", "who", "whom", "whose", "when", "where", "why", "how"])
AUX = frozenset({
    "is", "are", "was", "were", "be", "been", "do", "does", "did", "can", "could", "should", "would", "will",
    "shall", "may", "might", "must", "has", "have", "had", "am",
})
FUNCTION = frozenset({
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "but", "so", "as",
    "into", "about", "than", "then", "also", "too", "not", "no", "yes", "i", "me", "my", "we", "our", "you",
    "your", "if", "any", "some", "all", "more", "most", "much", "many", "very", "just", "only", "please",
    "tell", "there", "here", "else", "other", "another",
})
# Words that point back to something said before. "that" is apart (it is also a relative pronoun).
ANAPHORA = frozenset({
    "it", "its", "itself", "they", "them", "their", "theirs", "themselves", "he", "him", "his", "himself",
    "she", "her", "hers", "herself", "this", "these", "those",
})
PERSONAL = frozenset(["he", "him", "his", "himself", "she", "her", "hers", "herself"])
# An identifier in prose: `quoted`, dotted.name(), snake_case, camelCase, --option.
CODE = re.compile(r"`([^`]+)`|\b([A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+(?:\(\))?|[a-z]+_[\w]+|[a-z]+[A-Z]\w*|--[\w-]+)\b")
_DETERMINERS = frozenset(["a", "an", "the", "my", "your", "our", "all", "some", "any", "both"])
_POSSESSIVES = frozenset(["its", "their", "his", "her"])


def topic_free(word: str) -> bool:
    """Whether `word` (lower case) carries no topic: a question word, an auxiliary, a function word, a pronoun."""
    return word in WH or word in AUX or word in FUNCTION or word in ANAPHORA or word in ("that", "one", "ones")


def content_words(text: str) -> list[str]:
    """The words of `text` that carry its topic, in order, each once (original case)."""
    seen: dict[str, str] = {}
    for word in WORD.findall(text):
        key = word.lower().strip("'")
        if not topic_free(key):
            seen.setdefault(key, word)
    return list(seen.values())


def antecedent_before(message: str, pronoun: str) -> bool:
    """Whether the message names what its pronoun points to before it ("Does orjson.dumps release the GIL while it
    runs?", "Which hook lets a plugin provide its own timer?", "where does tqdm print its bar?"): for he/she a
    name; for it/they an identifier, a noun after a determiner, or — for its/their — the question's subject."""
    match = re.search(rf"\b{re.escape(pronoun)}\b", message, re.I)
    tokens = message[:match.start()].split() if match else []
    if pronoun in PERSONAL:
        return any(t[:1].isupper() for t in tokens[1:])
    if CODE.search(" ".join(tokens)) or any("-" in t.strip("?,.;:") for t in tokens):
        return True  # (a capitalised word is not enough: "how do I allow Unix sockets with it?" points back)
    words = [t.lower().strip("?,.;:'\"") for t in tokens]
    for i, (word, following) in enumerate(zip(words, words[1:], strict=False)):
        if following in ANAPHORA or following in FUNCTION or following in AUX or following in WH:
            continue
        if word in _DETERMINERS:
            return True
        if pronoun in _POSSESSIVES and word in AUX and i > 0 and words[i - 1] in WH:
            return True  # "where does tqdm print its …": its = the subject
    return False
