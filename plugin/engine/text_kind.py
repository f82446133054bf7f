"""Is this technical documentation? Which of spanqa's two readers reads a question's passages.

spanqa ships a general reader (SQuAD: Wikipedia-style prose) and a technical one (the same model adapted to
questions about package documentation). The technical reader quotes code spans far better but forgets some prose,
so each question is read by the one whose text its passages resemble. The signal is the density of code-like
tokens — backticks, calls `f(`, snake_case names, `--flags`, dotted calls, braces, `==` and `a=b`, shell and REPL
prompts — per word of a passage: technical documentation has many, prose almost none (docs/answers.md has the
measurements).
"""

from __future__ import annotations

import re

__all__ = ["CODE_DENSITY", "TECHNICAL_SHARE", "code_density", "looks_technical"]

_CODE_TOKEN = re.compile(
    r"`"                                        # inline code and fences
    r"|\b[A-Za-z_]\w*\("                        # a call: print(, create_task(
    r"|\b[a-z]+_[a-z_]+\b"                      # snake_case identifiers
    r"|(?<![\w-])--[a-z][\w-]*"                 # command-line flags
    r"|\b[a-z_]+\.[a-z_]+\.?[a-z_]*\("          # dotted calls: os.path.join(
    r"|[{}]|==|\w=\w"                           # braces, comparisons, keyword arguments
    r"|^\s*(?:\$ |>>> |pip install|import \w|from \w+ import)",  # prompts and imports
    re.M)

CODE_DENSITY = 0.05    # code-like tokens per word from which a passage counts as technical
TECHNICAL_SHARE = 0.5  # the (weighted) share of a question's passages that must be technical


def code_density(text: str) -> float:
    """Code-like tokens per word of `text`."""
    return len(_CODE_TOKEN.findall(text)) / max(1, len(text.split()))


def looks_technical(texts: list[str], weights: list[float] | None = None) -> bool:
    """Whether most of these passages read like technical documentation: more than TECHNICAL_SHARE of their
    weight. The engine weighs each passage by how strongly retrieval supports it, so that in a collection of
    manuals and prose the few passages that match a question decide, not the weak fillers of its top-k."""
    weights = [1.0] * len(texts) if weights is None else weights
    total = sum(weights)
    if total <= 0:
        return False
    technical = sum(w for t, w in zip(texts, weights, strict=True) if code_density(t) >= CODE_DENSITY)
    return technical > TECHNICAL_SHARE * total
