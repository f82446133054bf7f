"""The `spanqa` command line, called in-process (models load once per test session)."""

from __future__ import annotations

import json

import pytest
from spanqa.plugin.doors.cli import main

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
    code, out, err = run(capsys, "ingest", str(corpus), "--collection", col, "--json")
    report = json.loads(out)
    assert code == 0 and len(report["added"]) == 1 and "not a readable PDF" in report["skipped"][0]["reason"]
    assert "skipped" in err and "garbage.pdf" in err  # each skipped path is named on stderr, stdout stays JSON

    code, out, _ = run(capsys, "search", "how often to water", "--collection", col, "-k", "1", "--json")
    data = json.loads(out)
    assert data["schema"] == 1 and data["query"] == "how often to water"
    assert data["passages"][0]["source"].endswith("plant.md") and data["passages"][0]["dense_score"] > 0.2
    assert data["passages"][0]["citation"] == "plant.md, page 1"

    code, out, _ = run(capsys, "ask", "How often should I water the fern?", "--collection", col, "--json")
    answer = json.loads(out)
    assert answer["schema"] == 1 and answer["intent"]["label"] == "document_question" and not answer["abstained"]
    best = answer["answers"][0]
    assert {"text", "score", "source", "document_id", "page", "start", "end", "citation"} <= set(best)
    assert "three days" in best["text"] and best["source"].endswith("plant.md")

    code, out, _ = run(capsys, "docs", "list", "--collection", col, "--json")
    documents = json.loads(out)["documents"]
    assert documents[0]["source"].endswith("plant.md") and documents[0]["added"].endswith("+00:00")


def test_ask_many_questions_from_a_file_and_from_stdin(tmp_path, corpus, capsys, monkeypatch):
    import io

    col = str(tmp_path / "col")
    run(capsys, "ingest", str(corpus), "--collection", col)
    questions = tmp_path / "q.txt"
    questions.write_text("hello!\nWhere should the fern stand?\n\n")
    code, out, _ = run(capsys, "ask", "--questions", str(questions), "--collection", col, "--json")
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and [line["intent"]["label"] for line in lines] == ["greeting", "document_question"]
    assert lines[0]["answers"] == []
    monkeypatch.setattr("sys.stdin", io.StringIO("hello!\nWhere should the fern stand?\n"))
    code, out, _ = run(capsys, "ask", "-", "--collection", col, "--json")
    assert [json.loads(line)["intent"]["label"] for line in out.strip().splitlines()] == [
        "greeting", "document_question"]


def test_environment_settings_reach_ask_unless_an_option_is_given(tmp_path, corpus, capsys, monkeypatch):
    col = str(tmp_path / "col")
    run(capsys, "ingest", str(corpus), "--collection", col)
    monkeypatch.setenv("SPANQA_ANSWER_THRESHOLD", "1.0")  # nothing clears a threshold of 1: spanqa abstains
    monkeypatch.setenv("SPANQA_TOP_K", "1")
    monkeypatch.setenv("SPANQA_RETRIEVAL_MODE", "bm25")
    _, out, _ = run(capsys, "ask", "How often should I water the fern?", "--collection", col, "--json")
    answer = json.loads(out)
    assert answer["abstained"] and len(answer["passages"]) == 1 and answer["passages"][0]["dense_score"] is None
    _, out, _ = run(capsys, "ask", "How often should I water the fern?", "--collection", col, "--json",
                    "--threshold", "0.0", "--mode", "hybrid")
    answer = json.loads(out)
    assert not answer["abstained"] and answer["passages"][0]["dense_score"] is not None


def test_ingest_of_nothing_readable_creates_no_collection(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 nothing")
    code, out, err = run(capsys, "ingest", str(bad), "--collection", str(tmp_path / "col"))
    assert code == 1 and "broken.pdf" in err and "no collection created" in err
    assert not (tmp_path / "col").exists()


def test_classify_json_keys(capsys):
    code, out, _ = run(capsys, "classify", "set an alarm for seven", "--json")
    data = json.loads(out)
    assert data["schema"] == 1 and set(data["intent"]) == {"label", "confidence", "out_of_scope", "alternatives"}
    assert data["intent"]["out_of_scope"] is True
    assert all(set(a) == {"label", "confidence"} for a in data["intent"]["alternatives"])


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


@pytest.mark.parametrize("command", ["ask", "search", "ingest", "docs", "setup", "train-reader", "classify"])
def test_every_subcommand_has_a_description_and_shows_defaults(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "usage: spanqa " + command in out and len(out.split("\n\n")[1].strip()) > 10
    if command == "ask":
        assert "default: 5, or $SPANQA_TOP_K" in out and "default: 0.3, or $SPANQA_ANSWER_THRESHOLD" in out


def test_version(capsys):
    import spanqa

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"spanqa {spanqa.__version__}"


def test_a_collection_that_is_not_there_is_a_message_not_a_traceback(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    missing.mkdir()
    code, out, err = run(capsys, "reindex", "--collection", str(missing), "--embedder", "some/model")
    assert code == 2 and out == ""
    assert err.startswith("spanqa reindex: error: No collection database at") and "Traceback" not in err


def test_show_prints_a_span_in_its_place(tmp_path, corpus, capsys):
    col = str(tmp_path / "col")
    assert main(["ingest", str(corpus), "--collection", col]) == 0
    capsys.readouterr()
    assert main(["ask", "How often do I water the fern?", "--collection", col, "--json"]) == 0
    best = json.loads(capsys.readouterr().out)["answers"][0]
    code, out, _ = run(capsys, "show", best["document_id"], "--span", f"{best['start']}:{best['end']}",
                       "--collection", col)
    assert code == 0 and f"»{best['text']}«" in out and "plant.md" in out
    code, _, err = run(capsys, "show", best["document_id"], "--span", "5:x", "--collection", col)
    assert code != 0 and "START:END" in err
    code, _, err = run(capsys, "show", best["document_id"], "--span", "0:99999", "--collection", col)
    assert code != 0 and "0:99999" in err
