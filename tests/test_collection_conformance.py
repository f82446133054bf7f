"""The `Collection` protocol's conformance suite: every writable backend runs these same tests, with the real
bundled embedder — the embedded one (SQLite + FAISS + BM25) and PostgreSQL + pgvector on a real server. The
read-only half (searching) runs on every backend that reads, the LangChain retriever source too.

A new backend joins by adding itself to `BACKENDS` (writable) or `READABLE` (searches only).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import CORPUS, write_corpus
from spanqa.retriever import Collection, Embedder, Feedback

from spanqa.errors import CollectionError, EmbeddingMismatchError, InputError
from spanqa.settings import Settings

pytestmark = pytest.mark.integration
BACKENDS = ["local", pytest.param("postgres", marks=pytest.mark.postgres)]
READABLE = [*BACKENDS, "langchain"]


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    """Where a fresh collection of this backend lives: a directory, or a PostgreSQL URL."""
    if request.param == "postgres":
        return request.getfixturevalue("postgres_url")
    return str(tmp_path / "collection")


@pytest.fixture
def open_at(location, embedder):
    """Open (another handle on) the collection at `location`, as a second process or replica would."""
    from spanqa.plugin.engine.collections import open_collection

    opened: list[Collection] = []

    def open_(create: bool = True, **kwargs) -> Collection:
        collection = open_collection(location, embedder=kwargs.pop("embedder", embedder), create=create, **kwargs)
        opened.append(collection)
        return collection

    yield open_
    for collection in opened:
        collection.close()


@pytest.fixture
def collection(open_at, tmp_path):
    c = open_at()
    c.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    return c


@pytest.fixture(params=READABLE)
def readable(request, tmp_path, embedder) -> Collection:
    """A collection holding CORPUS, of every backend that can be searched: a LangChain in-memory vector store (the
    same embedder) behind RetrieverCollection as well as the writable backends."""
    if request.param == "langchain":
        from helpers import SpanqaEmbeddings
        from langchain_core.documents import Document
        from langchain_core.vectorstores import InMemoryVectorStore
        from spanqa.retriever.langchain_source import RetrieverCollection

        store = InMemoryVectorStore(SpanqaEmbeddings(embedder))
        store.add_documents([Document(page_content=text, metadata={"source": name}) for name, text in CORPUS.items()])
        return RetrieverCollection(store.as_retriever(search_kwargs={"k": len(CORPUS)}), embedder=embedder)
    from spanqa.plugin.engine.collections import open_collection

    location = request.getfixturevalue("postgres_url") if request.param == "postgres" else str(tmp_path / "c")
    collection = open_collection(location, embedder=embedder, create=True)
    request.addfinalizer(collection.close)
    collection.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    return collection


def test_every_readable_backend_is_a_collection(readable):
    assert isinstance(readable, Collection) and readable.location


def test_it_is_a_collection(collection):
    assert isinstance(collection, Collection)
    assert collection.location and len(collection) == len(CORPUS)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("How tall is the famous iron landmark in France?", "tower.txt"),
        ("What makes a loaf of naturally leavened bread go up?", "bread.txt"),
        ("How much efficiency do solar modules lose each year?", "solar.md"),
        ("When should I request an e-visa before my trip?", "visa.txt"),
    ],
)
def test_paraphrased_queries_find_the_right_passage_first(readable, query, expected):
    hits = readable.search(query, k=3, mode="dense")
    assert Path(hits[0].passage.source).name == expected
    assert hits[0].dense_score > 0.3


def test_hits_carry_offsets_pages_and_all_scores(collection):
    hit = collection.search("Eiffel Tower height", k=1, mode="hybrid")[0]
    document = collection.document(hit.passage.document_id)
    assert document.text[hit.passage.start:hit.passage.end] == hit.passage.text
    assert hit.passage.page == 1 and hit.passage.title
    assert hit.dense_score is not None and hit.bm25_score is not None and hit.score > 0


def test_hybrid_is_right_where_either_single_mode_fails(collection):
    # Built for it: paraphrases that share no word with their passage (lexical search finds nothing) next to exact
    # error codes whose passages differ in one digit (the lexical match must not be lost in fusion).
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


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_search_many_answers_each_query_as_search_does(readable, mode):
    queries = ["How tall is the Eiffel Tower?", "pump shows E-4711", "sourdough yeast", "visa before departure"]
    together = readable.search_many(queries, k=3, mode=mode)
    alone = [readable.search(q, k=3, mode=mode) for q in queries]
    key = lambda hits: [(h.passage.id, round(h.score, 6)) for h in hits]  # noqa: E731
    assert [key(h) for h in together] == [key(h) for h in alone]
    # The same cosines, to within what bf16 arithmetic makes of one text batched with others (a source that embeds
    # its passages per call, as the LangChain one does, sees padding change the last digits).
    cosines = lambda hits: [h.dense_score or 0.0 for h in hits]  # noqa: E731
    assert [cosines(h) for h in together] == [pytest.approx(cosines(h), abs=2e-3) for h in alone]
    with pytest.raises(InputError, match="empty"):
        readable.search_many(["fine", "  "])


def test_reopened_it_answers_the_same(collection, open_at):
    before = [(h.passage.id, round(h.score, 6)) for h in collection.search("solar panels", k=3)]
    reopened = open_at(create=False)
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
    assert len(collection) == len(CORPUS) and collection.integrity_problems() == []


def test_delete_removes_from_every_search(collection):
    source = next(d.source for d in collection.documents() if d.source.endswith("bread.txt"))
    found = collection.search("sourdough yeast", k=1)[0].passage.id
    assert collection.delete(source)
    assert not collection.delete(source)
    assert collection.existing([found]) == set()
    for mode in ("dense", "bm25", "hybrid"):
        assert all("bread" not in h.passage.source for h in collection.search("sourdough yeast", k=6, mode=mode))
    assert len(collection) == len(CORPUS) - 1 and collection.integrity_problems() == []


def test_a_second_handle_sees_writes_without_reopening(collection, open_at):
    other = open_at(create=False)
    assert other.search("where is the spare key", k=1)[0].passage.source != "notes.txt"
    collection.ingest_bytes([("notes.txt", b"The spare key is under the blue flowerpot.")])
    assert other.search("where is the spare key", k=1)[0].passage.source == "notes.txt"
    collection.delete("notes.txt")
    assert all(h.passage.source != "notes.txt" for h in other.search("where is the spare key", k=3))


def test_uploads_are_ingested_from_bytes(collection):
    report = collection.ingest_bytes([("../../etc/notes.txt", b"The spare key is under the blue flowerpot."),
                                      ("broken.pdf", b"%PDF-1.4 nope")])
    assert report.added == ["notes.txt"]
    assert "not a readable PDF" in report.skipped[0].reason
    assert collection.search("where is the spare key", k=1)[0].passage.source == "notes.txt"


def test_a_passage_is_found_by_what_its_document_is_about(collection):
    """Two READMEs with the same installation sentence: the question names the package, which only the document's
    title says. The title is embedded with each passage, so dense search tells them apart."""
    sentence = b"Install it with pip, then import it in your code and call the main entry point."
    history = b"Some history of the project.\n\n" * 60  # the heading and the sentence land in different passages
    collection.ingest_bytes([("one.md", b"# Frobnicator\n\n" + history + sentence),
                             ("two.md", b"# Quuxwidget\n\n" + history + sentence)])
    for package, source in (("Quuxwidget", "two.md"), ("Frobnicator", "one.md")):
        hits = collection.search(f"How do I install {package}?", k=2, mode="dense")
        installing = [h for h in hits if "Install it with pip" in h.passage.text]
        assert installing and "Frobnicator" not in installing[0].passage.text, "the sentence has its own passage"
        assert installing[0].passage.source == source, package


def test_pages_survive_the_round_trip(collection):
    from helpers import make_pdf

    collection.ingest_bytes([("manual.pdf", make_pdf(["Chapter one is about setup.",
                                                      "The reset button is behind the hinge."]))])
    hit = collection.search("where is the reset button", k=1)[0]
    assert hit.passage.source == "manual.pdf" and hit.passage.page == 2
    document = collection.document(hit.passage.document_id)
    assert [p.number for p in document.pages] == [1, 2]


def test_the_original_file_is_kept_replaced_with_it_and_removed_with_it(collection, open_at, tmp_path):
    from helpers import make_pdf

    first, second = make_pdf(["The reset button is behind the hinge."]), make_pdf(["It is under the lid now."])
    collection.ingest_bytes([("manual.pdf", first)])
    manual = next(d for d in collection.documents() if d.source == "manual.pdf")
    assert open_at(create=False).original(manual.id) == first, "every handle reads the bytes as they were read"
    collection.ingest_bytes([("manual.pdf", second)])
    assert collection.original(manual.id) == second
    on_disk = next(d for d in collection.documents() if d.source.endswith("tower.txt"))
    assert collection.original(on_disk.id) == (tmp_path / "docs" / "tower.txt").read_bytes()
    assert collection.delete(manual.id) and collection.original(manual.id) is None


def test_no_original_is_kept_when_the_setting_is_off(open_at, tmp_path):
    collection = open_at(settings=Settings(keep_originals=False))
    collection.ingest([write_corpus(tmp_path / "docs", CORPUS)])
    assert all(collection.original(d.id) is None for d in collection.documents())
    assert collection.document(collection.documents()[0].id).text, "the ingested text is kept all the same"


def test_settings_and_feedback_are_shared_by_every_handle(collection, open_at):
    collection.put_setting("answer_calibration", {"a": 1.5, "b": -0.2})
    collection.add_feedback(Feedback("Q?", "A", "tower.txt", 0, passage_id=3, score=0.4, route="documents"))
    other = open_at(create=False)
    assert other.get_setting("answer_calibration") == {"a": 1.5, "b": -0.2}
    assert other.get_setting("absent") is None
    assert other.feedback() == [Feedback("Q?", "A", "tower.txt", 0, 3, pytest.approx(0.4), "documents")]


def test_another_embedding_model_is_refused(collection, open_at, embedder, monkeypatch):
    monkeypatch.setattr(Embedder, "name", property(lambda self: "someone/other-model"))
    with pytest.raises(EmbeddingMismatchError, match="all-MiniLM-L6-v2.*other-model.*spanqa reindex"):
        open_at(create=False)


def test_opening_a_missing_collection_without_create_is_refused(open_at):
    with pytest.raises(CollectionError, match="spanqa ingest"):
        open_at(create=False)


def test_bad_search_arguments(readable):
    with pytest.raises(InputError, match="mode must be one of"):
        readable.search("x", mode="fuzzy")
    with pytest.raises(InputError, match="k must be between"):
        readable.search("x", k=0)
    with pytest.raises(InputError, match="empty"):
        readable.search("   ")


def test_feedback_and_settings_are_kept(readable):
    """What the engine stores with any collection: a thumbs and the answer calibration."""
    number = readable.add_feedback(Feedback("When was it built?", "1889", "tower.txt", 1, None, 0.8, "documents"))
    assert number >= 1 and readable.feedback()[-1].answer == "1889"
    readable.put_setting("answer-calibration", {"a": 2.0, "b": -1.0})
    assert readable.get_setting("answer-calibration") == {"a": 2.0, "b": -1.0}


def test_empty_collection_searches_to_nothing(open_at):
    empty = open_at()
    assert empty.search("anything", k=5) == [] and len(empty) == 0


# --- sync: a collection that follows its folders ------------------------------------------------------------------

def _sources(collection) -> set[str]:
    return {Path(d.source).name for d in collection.documents()}


def test_sync_adds_changes_removes_and_repoints_without_embedding_twice(tmp_path, open_at, monkeypatch):
    docs = write_corpus(tmp_path / "docs", CORPUS)
    collection = open_at()
    collection.ingest_bytes([("upload.txt", b"An uploaded note: the spare key is under the blue flowerpot.")])
    first = collection.sync([docs])
    assert len(first.added) == len(CORPUS) and not first.removed and len(collection) == len(CORPUS) + 1

    calls = []
    original = collection.embedder.encode
    monkeypatch.setattr(collection.embedder, "encode", lambda texts, **kw: calls.append(texts) or original(texts))
    (docs / "tower.txt").write_text("The Eiffel Tower is repainted every seven years.")
    (docs / "bread.txt").unlink()
    (docs / "visa.txt").rename(docs / "travel-visa.txt")
    (docs / "new.md").write_text("# Bees\n\nA honey bee colony keeps one queen.")
    report = collection.sync([docs])
    assert (Path(report.updated[0]).name, Path(report.removed[0]).name) == ("tower.txt", "bread.txt")
    assert [(Path(a).name, Path(b).name) for a, b in report.renamed] == [("visa.txt", "travel-visa.txt")]
    assert [Path(s).name for s in report.added] == ["new.md"] and len(report.unchanged) == len(CORPUS) - 3
    embedded = [text for call in calls for text in call]
    assert len(embedded) == 2 and not any("visa" in t for t in embedded)  # the renamed file kept its vectors
    assert _sources(collection) == set(CORPUS) - {"bread.txt", "visa.txt"} | {"travel-visa.txt", "new.md",
                                                                                 "upload.txt"}
    hit = collection.search("electronic visa before departure", k=1)[0].passage
    assert hit.source.endswith("travel-visa.txt") and hit.document_id == next(
        d.id for d in collection.documents() if d.source.endswith("travel-visa.txt"))
    assert all("sourdough" not in h.passage.text.lower() for h in collection.search("sourdough yeast", k=10))
    assert collection.integrity_problems() == []

    calls.clear()
    again = collection.sync([docs])
    assert not again.changed and len(again.unchanged) == len(CORPUS) and calls == []
    assert again.to_dict()["added"] == 0 and set(again.to_dict()) >= {"added", "updated", "removed", "renamed",
                                                                      "unchanged", "skipped"}


def test_sync_refuses_a_vanished_root_instead_of_emptying_the_collection(tmp_path, open_at):
    docs = write_corpus(tmp_path / "docs", CORPUS)
    collection = open_at()
    collection.sync([docs])
    for path in docs.iterdir():
        path.unlink()  # an unmounted drive: the folder is there, its files are not
    with pytest.raises(InputError, match="vanished mount must not empty the collection"):
        collection.sync([docs])
    docs.rmdir()
    with pytest.raises(InputError, match="does not exist.*--allow-empty-root"):
        collection.sync([docs])
    assert len(collection.documents()) == len(CORPUS)
    report = collection.sync([docs], allow_empty_root=True)
    assert len(report.removed) == len(CORPUS) and collection.documents() == []


def test_a_second_sync_of_the_same_collection_is_refused_while_one_runs(tmp_path, open_at):
    docs = write_corpus(tmp_path / "docs", CORPUS)
    collection, other = open_at(), open_at(create=False)
    with collection.sync_guard(), pytest.raises(CollectionError, match="Another sync"):
        other.sync([docs])
    assert len(other.sync([docs]).added) == len(CORPUS)
