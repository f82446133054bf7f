"""What only the embedded backend has: its files (manifest, SQLite, FAISS and BM25 caches), their damage and their
repair. Behaviour every backend shares is in test_collection_conformance.py."""

from __future__ import annotations

import json

import pytest
from helpers import CORPUS, write_corpus
from spanqa.retriever import Embedder, LocalCollection

from spanqa.errors import CollectionCorruptError, CollectionError, EmbeddingMismatchError

pytestmark = pytest.mark.integration


@pytest.fixture
def collection(tmp_path, embedder):
    c = LocalCollection(tmp_path / "col", embedder=embedder)
    c.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    return c


def snapshot(directory) -> dict[str, bytes]:
    """Every file's bytes, leaving out SQLite's transient -wal/-shm files."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def test_other_embedding_model_is_refused_and_nothing_changes(tmp_path, collection, embedder, monkeypatch):
    collection.close()
    before = snapshot(tmp_path / "col")
    monkeypatch.setattr(Embedder, "name", property(lambda self: "someone/other-model"))
    with pytest.raises(EmbeddingMismatchError, match="all-MiniLM-L6-v2.*other-model.*spanqa reindex"):
        LocalCollection(tmp_path / "col", embedder=embedder)
    assert snapshot(tmp_path / "col") == before


def test_same_name_but_different_vectors_is_refused(tmp_path, collection, embedder):
    manifest_path = tmp_path / "col" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["probe"] = [-x for x in manifest["probe"]]
    manifest_path.write_text(json.dumps(manifest))
    collection.close()
    before = snapshot(tmp_path / "col")
    with pytest.raises(EmbeddingMismatchError, match="vectors disagree"):
        LocalCollection(tmp_path / "col", embedder=embedder)
    assert snapshot(tmp_path / "col") == before


def test_stale_indexes_are_rebuilt_from_the_database(tmp_path, collection, embedder):
    expected = [h.passage.id for h in collection.search("visa", k=3)]
    collection.close()
    (tmp_path / "col" / "index" / "dense.json").unlink()  # as if the process died before saving the index
    reopened = LocalCollection(tmp_path / "col", embedder=embedder, create=False)
    assert [h.passage.id for h in reopened.search("visa", k=3)] == expected
    assert reopened.integrity_problems() == []


def test_truncated_index_names_the_fix_and_repair_works(tmp_path, collection, embedder):
    collection.close()
    faiss_file = tmp_path / "col" / "index" / "dense.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:100])
    before = snapshot(tmp_path / "col")
    with pytest.raises(CollectionCorruptError, match="dense.faiss is unreadable.*spanqa reindex"):
        LocalCollection(tmp_path / "col", embedder=embedder, create=False)
    assert snapshot(tmp_path / "col") == before  # the damaged file is left for the user to inspect
    repaired = LocalCollection.repair(tmp_path / "col", embedder=embedder)
    assert repaired.integrity_problems() == [] and len(repaired) > 0


def test_missing_database_and_foreign_directory(tmp_path, collection, embedder):
    collection.close()
    (tmp_path / "col" / "collection.sqlite").unlink()
    before = snapshot(tmp_path / "col")
    with pytest.raises(CollectionCorruptError, match="collection.sqlite is missing"):
        LocalCollection(tmp_path / "col", embedder=embedder)
    assert snapshot(tmp_path / "col") == before  # no empty database created in its place
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "file.txt").write_text("x")
    with pytest.raises(CollectionError, match="not a spanqa collection"):
        LocalCollection(tmp_path / "junk", embedder=embedder)


def test_a_collection_built_in_fp32_is_searched_and_extended_in_bf16(tmp_path, collection):
    """Precision is not a different model: bf16 vectors agree with fp32 ones (the manifest's probe check holds),
    so a collection keeps working when the machine or SPANQA_EMBEDDER_PRECISION changes."""
    fp32, bf16 = Embedder(precision="fp32"), Embedder(precision="bf16")
    texts = list(CORPUS.values())
    a, b = fp32.encode(texts), bf16.encode(texts)
    assert b.dtype == a.dtype and abs(float((b * b).sum(1).min()) - 1.0) < 1e-5
    assert float((a * b).sum(1).min()) > 0.99
    collection.close()
    reopened = LocalCollection(tmp_path / "col", embedder=bf16)
    assert reopened.search("How efficient are silicon solar cells?", k=1, mode="dense")[0].passage.source \
        .endswith("solar.md")
    (tmp_path / "more.txt").write_text("The harbour ferry leaves every twenty minutes from pier 4.")
    reopened.ingest([tmp_path / "more.txt"])
    assert reopened.search("When does the ferry leave?", k=1, mode="dense")[0].passage.source.endswith("more.txt")


def test_titles_are_embedded_only_in_collections_built_with_them(tmp_path, embedder, monkeypatch):
    """New collections embed each passage with its document's title; one built before that keeps untitled vectors
    for everything it ingests, so its vectors stay comparable (`spanqa reindex --embedder` converts it)."""
    encoded: list[str] = []
    original = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda texts, *a, **k: encoded.extend(texts) or original(texts, *a, **k))
    new = LocalCollection(tmp_path / "new", embedder=embedder)
    new.ingest_bytes([("guide.md", b"# Guide\n\n" + b"Press reset twice. " * 150)])
    new.close()
    # Each passage is embedded under its title, except one that already opens with it (said once, not twice).
    passages = [text for text in encoded if "Press" in text]
    assert len(passages) > 2 and passages[0].startswith("# Guide\n\nPress reset twice.")
    assert all(text.startswith("Guide\nPress reset twice.") for text in passages[1:])

    manifest_path = tmp_path / "new" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["embed_title"]  # as written by spanqa before titled vectors
    manifest_path.write_text(json.dumps(manifest))
    encoded.clear()
    old = LocalCollection(tmp_path / "new", embedder=embedder, create=False)
    old.ingest_bytes([("other.md", b"# Other\n\nHold the button.")])
    old.close()
    assert "# Other\n\nHold the button." in encoded and not any(t.startswith("Other\n") for t in encoded)
