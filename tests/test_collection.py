"""The collection end to end with the real bundled embedding model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spanqa.retriever import Collection, Embedder

from spanqa.errors import CollectionCorruptError, CollectionError, EmbeddingMismatchError

pytestmark = pytest.mark.integration

CORPUS = {
    "error-a.txt": "Pump error E-4711 means the motor overheated; let it cool for an hour.",
    "error-b.txt": "Pump error E-4712 means the water filter is clogged and must be rinsed.",
    "error-c.txt": "Pump error E-4713 means the water tank is empty; refill it.",
    "noise.txt": "To reduce loud sounds during operation, place the unit on the rubber mat that ships in the box.",
    "tower.txt": "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall.",
    "solar.md": "Photovoltaic panels convert sunlight into electricity. Modern silicon cells reach about 20 "
                "percent efficiency and lose roughly half a percent of output per year.",
    "bread.txt": "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough overnight.",
    "visa.txt": "Travellers from the listed countries must apply for the electronic visa at least 72 hours "
                "before departure.",
}


def write_corpus(folder: Path, corpus: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in corpus.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def collection(tmp_path, embedder):
    c = Collection(tmp_path / "col", embedder=embedder)
    c.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    return c


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How tall is the famous iron landmark in France?", "tower.txt"),
        ("What makes a loaf of naturally leavened bread go up?", "bread.txt"),
        ("How much efficiency do solar modules lose each year?", "solar.md"),
        ("When should I request an e-visa before my trip?", "visa.txt"),
    ],
)
def test_paraphrased_queries_find_the_right_passage_first(collection, query, expected):
    hits = collection.search(query, k=3, mode="dense")
    assert Path(hits[0].passage.source).name == expected
    assert hits[0].dense_score > 0.3


def test_hits_carry_offsets_pages_and_all_scores(collection):
    hit = collection.search("Eiffel Tower height", k=1, mode="hybrid")[0]
    document = collection.document(hit.passage.document_id)
    assert document.text[hit.passage.start:hit.passage.end] == hit.passage.text
    assert hit.passage.page == 1
    assert hit.dense_score is not None and hit.bm25_score is not None and hit.score > 0


def test_hybrid_is_right_where_either_single_mode_fails(collection):
    # Built for it: paraphrases that share no word with their passage (BM25 finds nothing) next to exact error
    # codes whose passages differ in one digit (the lexical match must not be lost in fusion).
    cases = [
        ("what does error E-4712 mean", "filter is clogged"),
        ("pump shows E-4711", "motor overheated"),
        ("E-4713 on the display", "tank is empty"),
        ("How can I make the machine quieter?", "rubber mat"),
        ("What makes a loaf of naturally leavened bread go up?", "wild yeast"),
    ]

    def top1(mode: str) -> int:
        tops = [collection.search(q, k=1, mode=mode) for q, _ in cases]
        return sum(bool(top) and needle in top[0].passage.text for top, (_, needle) in zip(tops, cases, strict=True))

    dense, bm25, hybrid = top1("dense"), top1("bm25"), top1("hybrid")
    assert hybrid == len(cases)
    assert bm25 < hybrid and dense <= hybrid


def test_persistence_round_trip(tmp_path, collection, embedder):
    before = [(h.passage.id, round(h.score, 6)) for h in collection.search("solar panels", k=3)]
    collection.close()
    reopened = Collection(tmp_path / "col", embedder=embedder, create=False)
    assert [(h.passage.id, round(h.score, 6)) for h in reopened.search("solar panels", k=3)] == before
    assert reopened.integrity_problems() == []
    assert len(reopened.documents()) == len(CORPUS)


def test_unchanged_reingest_embeds_nothing_and_changed_file_replaces(tmp_path, collection, monkeypatch):
    calls = []
    original = collection.embedder.encode
    monkeypatch.setattr(collection.embedder, "encode", lambda texts, **kw: calls.append(texts) or original(texts))
    report = collection.ingest([tmp_path / "docs"])
    assert len(report.unchanged) == len(CORPUS) and report.passages == 0 and calls == []

    (tmp_path / "docs" / "tower.txt").write_text("The Eiffel Tower is repainted every seven years.")
    report = collection.ingest([tmp_path / "docs"])
    assert len(report.updated) == 1 and len(calls) == 1
    texts = " ".join(h.passage.text for h in collection.search("Eiffel Tower", k=6))
    assert "repainted" in texts and "1889" not in texts
    assert collection.integrity_problems() == []


def test_delete_removes_from_every_index(collection):
    source = next(d.source for d in collection.documents() if d.source.endswith("bread.txt"))
    assert collection.delete(source)
    assert not collection.delete(source)
    for mode in ("dense", "bm25", "hybrid"):
        assert all("bread" not in h.passage.source for h in collection.search("sourdough yeast", k=6, mode=mode))
    assert collection.integrity_problems() == []


def test_uploads_are_ingested_from_bytes(collection):
    report = collection.ingest_bytes([("../../etc/notes.txt", b"The spare key is under the blue flowerpot."),
                                      ("broken.pdf", b"%PDF-1.4 nope")])
    assert report.added == ["notes.txt"]
    assert "not a readable PDF" in report.skipped[0].reason
    assert collection.search("where is the spare key", k=1)[0].passage.source == "notes.txt"


def snapshot(directory) -> dict[str, bytes]:
    """Every file's bytes, leaving out SQLite's transient -wal/-shm files."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_other_embedding_model_is_refused_and_nothing_changes(tmp_path, collection, embedder, monkeypatch):
    collection.close()
    before = snapshot(tmp_path / "col")
    monkeypatch.setattr(Embedder, "name", property(lambda self: "someone/other-model"))
    with pytest.raises(EmbeddingMismatchError, match="all-MiniLM-L6-v2.*other-model.*spanqa reindex"):
        Collection(tmp_path / "col", embedder=embedder)
    assert snapshot(tmp_path / "col") == before


def test_same_name_but_different_vectors_is_refused(tmp_path, collection, embedder):
    manifest_path = tmp_path / "col" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["probe"] = [-x for x in manifest["probe"]]
    manifest_path.write_text(json.dumps(manifest))
    collection.close()
    before = snapshot(tmp_path / "col")
    with pytest.raises(EmbeddingMismatchError, match="vectors disagree"):
        Collection(tmp_path / "col", embedder=embedder)
    assert snapshot(tmp_path / "col") == before


def test_stale_indexes_are_rebuilt_from_the_database(tmp_path, collection, embedder):
    expected = [h.passage.id for h in collection.search("visa", k=3)]
    collection.close()
    (tmp_path / "col" / "index" / "dense.json").unlink()  # as if the process died before saving the index
    reopened = Collection(tmp_path / "col", embedder=embedder, create=False)
    assert [h.passage.id for h in reopened.search("visa", k=3)] == expected
    assert reopened.integrity_problems() == []


def test_truncated_index_names_the_fix_and_repair_works(tmp_path, collection, embedder):
    collection.close()
    faiss_file = tmp_path / "col" / "index" / "dense.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    before = snapshot(tmp_path / "col")
    with pytest.raises(CollectionCorruptError, match="dense.faiss is unreadable.*spanqa reindex"):
        Collection(tmp_path / "col", embedder=embedder, create=False)
    assert snapshot(tmp_path / "col") == before  # the damaged file is left for the user to inspect
    repaired = Collection.repair(tmp_path / "col", embedder=embedder)
    assert repaired.integrity_problems() == [] and len(repaired) > 0


def test_missing_database_and_foreign_directory(tmp_path, collection, embedder):
    collection.close()
    (tmp_path / "col" / "collection.sqlite").unlink()
    before = snapshot(tmp_path / "col")
    with pytest.raises(CollectionCorruptError, match="collection.sqlite is missing"):
        Collection(tmp_path / "col", embedder=embedder)
    assert snapshot(tmp_path / "col") == before  # no empty database created in its place
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(CollectionError, match="not a spanqa collection"):
        Collection(tmp_path / "junk", embedder=embedder)


def test_bad_search_arguments(collection):
    with pytest.raises(ValueError, match="mode must be one of"):
        collection.search("x", mode="fuzzy")
    with pytest.raises(ValueError, match="k must be between"):
        collection.search("x", k=0)
    with pytest.raises(ValueError, match="empty"):
        collection.search("   ")


def test_empty_collection_searches_to_nothing(tmp_path, embedder):
    empty = Collection(tmp_path / "empty", embedder=embedder)
    assert empty.search("anything", k=5) == []
