"""The `spanqa` command line, called in-process (models load once per test session)."""

from __future__ import annotations

import json

import pytest

from plugin.cli import main

pytestmark = pytest.mark.integration


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "plant.md").write_text("# Plant care\n\nWater the fern every three days and keep it out of direct sun.")
    (docs / "garbage.pdf").write_bytes(b"%PDF-1.4 nothing")
    return docs


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_ingest_search_docs_ask_json(tmp_path, corpus, capsys):
    col = str(tmp_path / "col")
    code, out, _ = run(capsys, "ingest", str(corpus), "--collection", col, "--json")
    report = json.loads(out)
    assert code == 0 and len(report["added"]) == 1 and "not a readable PDF" in report["skipped"][0]["reason"]

    code, out, _ = run(capsys, "search", "how often to water", "--collection", col, "-k", "1", "--json")
    hits = json.loads(out)
    assert hits[0]["passage"]["source"].endswith("plant.md") and hits[0]["dense_score"] > 0.2

    code, out, _ = run(capsys, "ask", "How often should I water the fern?", "--collection", col, "--json")
    answer = json.loads(out)
    assert {"intent", "abstained", "reply", "answers"} <= set(answer)
    assert answer["intent"] == "document_question" and not answer["abstained"]
    best = answer["answers"][0]
    assert {"text", "score", "document", "page", "start", "end"} <= set(best)
    assert "three days" in best["text"] and best["document"].endswith("plant.md")

    code, out, _ = run(capsys, "docs", "list", "--collection", col)
    assert "plant.md" in out and "1 documents" in out


def test_ask_many_questions_from_a_file(tmp_path, corpus, capsys):
    col = str(tmp_path / "col")
    run(capsys, "ingest", str(corpus), "--collection", col)
    questions = tmp_path / "q.txt"
    questions.write_text("hello!\nWhere should the fern stand?\n\n")
    code, out, _ = run(capsys, "ask", "--questions", str(questions), "--collection", col, "--json")
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and [line["intent"] for line in lines] == ["greeting", "document_question"]
    assert lines[0]["answers"] == []


def test_classify_json_keys(capsys):
    code, out, _ = run(capsys, "classify", "set an alarm for seven", "--json")
    data = json.loads(out)
    assert set(data) == {"label", "confidence", "out_of_scope", "alternatives"}
    assert data["out_of_scope"] is True
    assert all(set(a) == {"label", "confidence"} for a in data["alternatives"])


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    code, _, err = run(capsys, "search", "x", "--collection", str(tmp_path / "missing"))
    assert code == 2 and "No collection" in err
    code, _, err = run(capsys, "eval-reader", str(tmp_path / "none.json"))
    assert code == 2 and "not found" in err


def test_eval_reader_json(tmp_path, capsys):
    from test_reader import tiny_squad

    data = tiny_squad(tmp_path / "dev.json", n=5)
    code, out, _ = run(capsys, "eval-reader", str(data), "--json")
    scores = json.loads(out)
    assert code == 0 and set(scores) == {"exact_match", "f1", "count"} and scores["count"] == 5
    assert 0 <= scores["exact_match"] <= scores["f1"] <= 100
