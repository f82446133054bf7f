"""BM25 over technical text: code identifiers match the way people ask about them."""

from __future__ import annotations

import json

from spanqa.retriever.indexes import LEXICAL_TERMS_VERSION, LexicalIndex, identifier_terms


def test_identifier_terms_split_and_join_code_names():
    assert identifier_terms("call asyncio.create_task() now") == ["asyncio_create_task", "asyncio", "create", "task"]
    assert identifier_terms("use os.path.join") == ["os_path_join"]
    assert identifier_terms("pass --dry-run") == ["dry_run"]
    assert identifier_terms("a ThreadPoolExecutor") == ["thread_pool_executor", "thread", "pool", "executor"]
    assert identifier_terms("plain words, nothing else.") == []


def _index(texts: list[str]) -> LexicalIndex:
    index = LexicalIndex()
    index.build([(list(range(len(texts))), texts)])
    return index


def test_a_question_in_words_finds_the_identifier():
    index = _index(["Schedule the coroutine with asyncio.create_task() and keep a reference to it.",
                    "Tasks are listed in the table of contents.", "Create an account first."])
    assert index.search("how do I create a task in asyncio", k=3)[0][0] == 0
    index = _index(["Run the tool with --dry-run to see what would change.", "Run the tool to change files."])
    assert index.search("is there a dry run mode", k=2)[0][0] == 0


def test_an_index_saved_with_other_terms_is_rebuilt_not_queried(tmp_path):
    index = _index(["one passage about os.path.join"])
    index.save(tmp_path, generation=3)
    assert LexicalIndex().load(tmp_path, generation=3)
    stamp = json.loads((tmp_path / "bm25.json").read_text())
    stamp["terms_version"] = LEXICAL_TERMS_VERSION - 1
    (tmp_path / "bm25.json").write_text(json.dumps(stamp))
    assert not LexicalIndex().load(tmp_path, generation=3)
