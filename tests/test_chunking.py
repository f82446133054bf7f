from __future__ import annotations

import pytest
from spanqa.retriever.chunking import Chunker, ChunkingSettings, sentence_spans
from spanqa.retriever.records import Document, PageSpan


def test_sentence_spans_trim_and_split():
    text = "  First one. Second one!\n\nThird?  "
    assert [text[s:e] for s, e in sentence_spans(text)] == ["First one.", "Second one!", "Third?"]


def test_passages_are_exact_slices_within_token_budget(tokenizer):
    sentences = [f"Sentence number {i} talks about topic {i % 7} in some detail." for i in range(120)]
    doc = Document(source="long.txt", text=" ".join(sentences))
    settings = ChunkingSettings(max_tokens=64, overlap_tokens=16)
    passages = Chunker(tokenizer, settings).split(doc)
    assert len(passages) > 5
    for p in passages:
        assert doc.text[p.start:p.end] == p.text
        assert len(tokenizer(p.text, add_special_tokens=False)["input_ids"]) <= 64
        assert p.text.endswith(".")  # cut at sentence ends
    # consecutive passages overlap, and together they cover the whole text
    for a, b in zip(passages, passages[1:], strict=False):
        assert b.start < a.end and b.start > a.start
    assert passages[0].start == 0 and passages[-1].end == len(doc.text)


def test_overlong_sentence_is_split_at_tokens(tokenizer):
    doc = Document(source="run-on.txt", text=" ".join(["word"] * 500))
    passages = Chunker(tokenizer, ChunkingSettings(max_tokens=100, overlap_tokens=0)).split(doc)
    assert len(passages) == 5
    assert all(doc.text[p.start:p.end] == p.text for p in passages)


def test_pages_are_hard_boundaries(tokenizer):
    text = "Page one text.\n\nPage two text."
    doc = Document(source="x.pdf", text=text, pages=[PageSpan(1, 0, 14), PageSpan(2, 16, 30)])
    passages = Chunker(tokenizer).split(doc)
    assert [(p.page, p.text) for p in passages] == [(1, "Page one text."), (2, "Page two text.")]


def test_empty_document_gives_no_passages(tokenizer):
    assert Chunker(tokenizer).split(Document(source="e.txt", text="   ")) == []


@pytest.mark.parametrize("before", range(1, 12))
def test_a_code_block_stays_whole_with_the_sentence_that_introduces_it(tokenizer, before):
    """A command and the words saying what it does land in one passage, even with blank lines inside the block
    (each would otherwise end a "sentence"), wherever the prose before it puts the passage boundary (cut at the
    sentences, 3, 5, 6, 7 and 11 sentences of prose put one inside a block or after its introduction)."""
    prose = " ".join(f"Filler sentence {i} about something else entirely." for i in range(before))
    text = (f"{prose} To give every test a five minute limit, run:\n\n```bash\n$ pytest --timeout=300\n\n"
            "$ pytest --timeout=300 tests/slow\n```\n\nIn reStructuredText the same goes for::\n\n"
            "    import foo\n\n    foo.run()\n\nThe end.")
    passages = Chunker(tokenizer, ChunkingSettings(max_tokens=80, overlap_tokens=0)).split(
        Document(source="README.md", text=text))
    assert any("run:" in p.text and "tests/slow\n```" in p.text for p in passages)
    assert any("the same goes for::" in p.text and "foo.run()" in p.text for p in passages)
    assert all(text[p.start:p.end] == p.text for p in passages)
