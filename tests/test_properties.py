"""Property-based tests (hypothesis): loaders never crash on arbitrary bytes, passages always map back to the
exact document text, decoded spans always lie inside their passage, tool arguments validate or refuse."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from spanqa.plugin.doors.service import request_models
from spanqa.plugin.engine.assistant import Assistant
from spanqa.plugin.engine.reader import Reader, decode_window
from spanqa.plugin.engine.spans import snap_span, unit_spans
from spanqa.retriever.chunking import Chunker, ChunkingSettings, sentence_spans
from spanqa.retriever.loaders import SUPPORTED_SUFFIXES, LoadError, load_bytes, safe_source_name
from spanqa.retriever.records import Document, Passage
from spanqa.ui.render import escape_markdown, highlighted_passage

from spanqa.errors import InputError
from spanqa.settings import Settings as SpanqaSettings

# Examples per property: about 13,000 generated cases in all, in about a minute.
MANY = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FAST = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

words = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=12)
separators = st.sampled_from([" ", " ", " ", ". ", "! ", "? ", "\n", "\n\n", "\t", " — ", "...", "\n- "])
texts = st.lists(st.tuples(words, separators), min_size=0, max_size=120).map(lambda xs: "".join(w + s for w, s in xs))


@MANY
@given(data=st.binary(max_size=2048), suffix=st.sampled_from(SUPPORTED_SUFFIXES + (".exe", "")))
def test_loaders_return_a_document_or_a_reason_never_crash(data, suffix):
    try:
        document = load_bytes(f"file{suffix}", data)
    except LoadError as exc:
        assert str(exc)
    else:
        assert document.text.strip() and "\x00" not in document.text
        for page in document.pages:
            assert 0 <= page.start <= page.end <= len(document.text)


@MANY
@given(text=texts)
def test_sentence_spans_are_trimmed_ordered_and_inside(text):
    previous_end = 0
    for start, end in sentence_spans(text):
        assert previous_end <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        previous_end = end


@FAST
@given(text=texts, max_tokens=st.integers(16, 80), overlap=st.integers(0, 7))
def test_passages_are_exact_slices_within_budget_covering_the_text(tokenizer, text, max_tokens, overlap):
    document = Document(source="t.txt", text=text)
    passages = Chunker(tokenizer, ChunkingSettings(max_tokens=max_tokens, overlap_tokens=overlap)).split(document)
    covered = np.zeros(len(text), dtype=bool)
    for p in passages:
        assert text[p.start:p.end] == p.text and p.text.strip()
        assert len(tokenizer(p.text, add_special_tokens=False)["input_ids"]) <= max_tokens
        covered[p.start:p.end] = True
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


@st.composite
def windows(draw):
    n_context = draw(st.integers(0, 40))
    n_question = draw(st.integers(1, 6))
    cursor, spans = 0, []
    for _ in range(n_context):
        cursor += draw(st.integers(0, 3))
        width = draw(st.integers(1, 6))
        spans.append((cursor, cursor + width))
        cursor += width
    offsets = [None] * (n_question + 2) + spans + [None]
    floats = st.floats(-20, 20, allow_nan=False)
    start = np.array(draw(st.lists(floats, min_size=len(offsets), max_size=len(offsets))))
    end = np.array(draw(st.lists(floats, min_size=len(offsets), max_size=len(offsets))))
    return start, end, offsets


@MANY
@given(window=windows(), max_tokens=st.integers(1, 40))
def test_decoded_spans_lie_inside_the_context(window, max_tokens):
    start, end, offsets = window
    candidates, null = decode_window(start, end, offsets, max_answer_tokens=max_tokens)
    context = [o for o in offsets if o is not None]
    for c in candidates:
        assert c.start < c.end
        assert context[0][0] <= c.start and c.end <= context[-1][1]
    assert null == pytest.approx(start[0] + end[0])
    assert [c.span_logit for c in candidates] == sorted((c.span_logit for c in candidates), reverse=True)


class RandomLogitsModel:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, input_ids, **kwargs):
        import torch

        class Out:
            start_logits = torch.tensor(self.rng.normal(0, 3, input_ids.shape), dtype=torch.float32)
            end_logits = torch.tensor(self.rng.normal(0, 3, input_ids.shape), dtype=torch.float32)

        return Out()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts, question=words, seed=st.integers(0, 2**16), offset=st.integers(0, 10_000))
def test_reader_answers_are_substrings_at_their_offsets(tokenizer, text, question, seed, offset):
    reader = Reader.from_loaded(RandomLogitsModel(seed), tokenizer, max_seq_len=64, stride=16, max_question_tokens=16)
    passage = Passage("d", "s.txt", text, offset, offset + len(text), 1, 0, 7)
    for answer in reader.read(question if question.strip() else "q", [passage], top_k=5).answers:
        assert text[answer.start:answer.end] == answer.text
        assert (answer.document_start, answer.document_end) == (offset + answer.start, offset + answer.end)


code_words = st.sampled_from(["f(", ")", "'", '"', "``", "`", "$ ", ">>> ", "```py\n", "```\n", "x=''", "a.b", "--f",
                              "Traceback (most recent call last):\n", "\n", " ", "word", "snake_case", "(x, y)"])
code_texts = st.lists(st.one_of(code_words, words), min_size=1, max_size=60).map("".join)


@FAST
@given(text=code_texts, a=st.integers(0, 400), b=st.integers(0, 400))
def test_snapped_spans_and_their_units_are_ranges_of_the_text(text, a, b):
    """Whatever the reader's cut, and whatever the markup around it, an answer is a range of the text with no
    space at its edges: `document_text[start:end] == text` holds for every boundary rule and every unit."""
    start, end = sorted((min(a, len(text)), min(b, len(text))))
    s, e = snap_span(text, start, end)
    assert 0 <= s <= e <= len(text)
    assert text[s:e] == text[s:e].strip()
    for us, ue in unit_spans(text, s, e):
        assert 0 <= us < ue <= len(text)


INPUTS = request_models(SpanqaSettings())  # the default limits: 2,000 characters, top_k up to 50


@MANY
@given(question=st.one_of(st.text(max_size=2100), st.integers(), st.none()),
       top_k=st.one_of(st.integers(-5, 60), st.none(), st.text(max_size=3)),
       min_score=st.one_of(st.floats(-1, 2, allow_nan=False), st.none()))
def test_tool_arguments_validate_or_refuse(question, top_k, min_score):
    try:
        parsed = INPUTS.answer(question=question, top_k=top_k, min_score=min_score)
    except ValidationError:
        return
    assert isinstance(parsed.question, str) and 1 <= len(parsed.question) <= 2000
    assert parsed.top_k is None or 1 <= parsed.top_k <= 50
    assert parsed.min_score is None or 0 <= parsed.min_score <= 1


@FAST
@given(k=st.integers(-10, 100), mode=st.text(max_size=8))
def test_search_arguments_validate_or_refuse(k, mode):
    limits = SpanqaSettings(max_results=50)
    try:
        parsed = request_models(limits).search(query="q", k=k, mode=mode)
    except ValidationError:
        assert not (1 <= k <= 50 and mode in ("hybrid", "dense", "bm25"))
    else:
        assert 1 <= parsed.k <= 50 and parsed.mode in ("hybrid", "dense", "bm25")


@FAST
@given(name=st.text(max_size=80))
def test_upload_names_never_become_paths(name):
    label = safe_source_name(name)
    assert label and "/" not in label and "\\" not in label and not label.startswith(".")
    assert all(ch.isprintable() for ch in label)


@FAST
@given(text=st.text(max_size=300), data=st.data())
def test_highlighted_passages_carry_no_markup_from_the_document(text, data):
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    html = highlighted_passage(text, start, end, context=data.draw(st.integers(0, 400)))
    inner = html.removeprefix('<div class="spanqa-passage">').removesuffix("</div>")
    inner = inner.replace('<mark class="spanqa-answer">', "", 1).replace("</mark>", "", 1)
    assert "<" not in inner and ">" not in inner
    import html as html_lib

    assert text[start:end] in html_lib.unescape(inner)


@FAST
@given(text=st.text(max_size=200))
def test_escaped_markdown_has_no_live_markup(text):
    escaped = escape_markdown(text)
    specials = set("\\`*_{}[]()#+-.!|<>$~:")
    i = 0
    while i < len(escaped):
        if escaped[i] == "\\":
            assert i + 1 < len(escaped) and escaped[i + 1] in specials
            i += 2
        else:
            assert escaped[i] not in specials
            i += 1


_ASSISTANT = Assistant(collection=None)


@FAST
@given(message=st.one_of(st.text(max_size=2500), st.integers(), st.none(), st.binary(max_size=20)))
def test_messages_are_cleaned_or_refused_clearly(message):
    try:
        cleaned = _ASSISTANT.check("classify", message=message).message
    except InputError as exc:
        assert len(str(exc)) > 20  # a sentence saying what is wrong, not a bare type error
    else:
        assert cleaned == cleaned.strip() and 1 <= len(cleaned) <= _ASSISTANT.settings.max_question_chars
        assert all(ch.isprintable() or ch in "\n\t" for ch in cleaned)
