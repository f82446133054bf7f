"""A withheld answer still shows the passage most likely to hold it (plugin/engine/closest.py): the quote is cut
around the best candidate at sentence or line boundaries, never longer than the limit, the candidate marked."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from spanqa.plugin.engine.closest import closest_passage, quote_window
from spanqa.plugin.engine.reader import Answer
from spanqa.retriever.records import Hit, Passage

PAGE = ("functools.lru_cache(user_function) wraps a function with a memoizing callable. The cache is threadsafe, "
        "so the wrapped function can be used from multiple threads.\n"
        "The decorator also provides a cache_clear() function for clearing or invalidating the cache. "
        "The original underlying function is accessible through the __wrapped__ attribute. "
        "This is useful for introspection, for bypassing the cache, or for rewrapping the function with a "
        "different cache. " * 3)


def passage(text: str = PAGE, offset: int = 1000, pid: int = 7) -> Passage:
    return Passage(document_id="d", source="docs/functools.txt", text=text, start=offset, end=offset + len(text),
                   page=2, id=pid)


def candidate(p: Passage, text: str, score: float = 0.2) -> Answer:
    start = p.text.index(text)
    return Answer(text=text, score=score, margin=0.0, passage_id=p.id, start=start, end=start + len(text),
                  document_start=p.start + start, document_end=p.start + start + len(text), source=p.source,
                  page=p.page)


def test_the_quote_is_around_the_candidate_within_the_limit_and_cut_at_a_sentence():
    p = passage()
    closest = closest_passage([candidate(p, "cache_clear()")], [Hit(p, 0.5)], max_chars=300)
    assert len(closest.text) <= 300 and "cache_clear()" in closest.text
    assert closest.text == p.text[closest.start - p.start:closest.end - p.start]  # verbatim, at its offsets
    before = p.text[:closest.start - p.start].rstrip(" ")
    assert before.endswith((".", "\n")) and closest.text.rstrip().endswith(".")  # whole sentences
    assert closest.text.startswith("The cache is threadsafe")  # the candidate roughly centred: a sentence before
    assert "**cache_clear()**" in closest.marked and closest.marked.endswith("…")


def test_without_a_candidate_the_first_passage_opens_the_quote():
    p, other = passage(), passage("Another passage entirely.", pid=8)
    closest = closest_passage([], [Hit(p, 0.5), Hit(other, 0.4)], max_chars=200)
    assert closest.candidate is None and closest.passage is p and p.text.startswith(closest.text)
    assert "**" not in closest.marked


def test_a_candidate_from_a_passage_not_shown_is_passed_over_and_nothing_retrieved_is_none():
    p, gone = passage(), passage("A deleted passage.", pid=99)
    assert closest_passage([candidate(gone, "deleted"), candidate(p, "cache_clear()")], [Hit(p, 0.5)],
                           600).candidate.text == "cache_clear()"
    assert closest_passage([], [], 600) is None


@given(text=st.text(min_size=1, max_size=900), data=st.data(), limit=st.integers(min_value=20, max_value=600))
def test_any_window_holds_its_span_and_fits_the_limit(text, data, limit):
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = data.draw(st.integers(min_value=start, max_value=min(len(text), start + limit)))
    left, right = quote_window(text, start, end, limit)
    assert 0 <= left <= start <= end <= right <= len(text) and right - left <= limit
