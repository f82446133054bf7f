"""The side-by-side benchmark: its inputs, its arithmetic, and one real `spanqa bench --quick` run."""

from __future__ import annotations

import json

import pytest

from bench.flops import encoder_flops
from bench.measure import reliability
from bench.qa_data import build_bench_set

FACTS = [
    ("Harbor Lights", "The Harbor Lights festival began in 1987 in the town of Wexmoor. Every August the harbor is "
     "lit by four thousand lanterns. The festival is organised by the Wexmoor Rowing Club."),
    ("Copper Kettle", "The Copper Kettle bakery was founded by Ilse Marten. Its best-known loaf is a rye bread "
     "baked with caraway. The bakery opens at six in the morning."),
    ("Lake Ondra", "Lake Ondra lies at an altitude of 1,240 metres. The lake freezes every winter and is home to "
     "a rare species of char. Its only outflow is the river Saule."),
    ("Tram line 9", "Tram line 9 connects the central station with the zoo. The line was electrified in 1912. "
     "Trams run every eight minutes during the day."),
    ("Orchard school", "The Orchard school teaches beekeeping to children. Its hives produce about ninety "
     "kilograms of honey a year. Classes take place on Saturdays."),
    ("Glass museum", "The glass museum displays more than three hundred vases. The oldest piece dates from the "
     "Roman period. Admission is free on Sundays."),
]
QUESTIONS = [
    ("When did the Harbor Lights festival begin?", "1987"),
    ("Who organises the Harbor Lights festival?", "the Wexmoor Rowing Club"),
    ("Who founded the Copper Kettle bakery?", "Ilse Marten"),
    ("At what altitude does Lake Ondra lie?", "1,240 metres"),
    ("What is the only outflow of Lake Ondra?", "the river Saule"),
    ("When was tram line 9 electrified?", "1912"),
    ("How often do trams run on line 9 during the day?", "every eight minutes"),
    ("How much honey do the Orchard school hives produce?", "about ninety kilograms"),
    ("On which day is admission to the glass museum free?", "Sundays"),
    ("How many vases does the glass museum display?", "more than three hundred"),
]


def write_squad(path) -> None:
    data = []
    for title, context in FACTS:
        qas = [{"id": f"q{i}", "question": q, "answers": [{"text": a, "answer_start": context.find(a)}]}
               for i, (q, a) in enumerate(QUESTIONS) if a in context]
        data.append({"title": title, "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"data": data}))


def write_clinc(path) -> None:
    intents = {"balance": ["what is my balance", "how much money do i have", "show my account balance",
                           "balance please", "tell me my balance", "check my balance", "my current balance",
                           "how much is in my account"],
               "weather": ["what is the weather", "will it rain today", "is it sunny outside", "weather forecast",
                           "how cold is it", "temperature today", "will it snow", "weather tomorrow"],
               "timer": ["set a timer", "start a timer for five minutes", "timer for ten minutes",
                         "count down one minute", "set a countdown", "start a timer", "timer please",
                         "set timer for an hour"]}
    oos = ["who won the football game", "tell me a joke about cats", "how tall is mount everest",
           "translate hello into french", "what is the meaning of life", "book a flight to rome"]
    path.write_text(json.dumps({
        "train": [[t, label] for label, texts in intents.items() for t in texts[:6]],
        "val": [[t, label] for label, texts in intents.items() for t in texts[6:]],
        "oos_train": [[t, "oos"] for t in oos[:3]], "oos_val": [[t, "oos"] for t in oos[3:]],
    }))


def test_bench_set_marks_gold_passages_and_holds_out_contexts(tmp_path, tokenizer):
    write_squad(tmp_path / "mini.json")
    bench = build_bench_set(tmp_path / "mini.json", tokenizer, holdout=0.34, seed=1)
    assert bench.held_out_documents == 2 and len(bench.documents) == 4
    answerable = [q for q in bench.questions if q.answerable]
    assert 0 < len(answerable) < len(bench.questions)
    for q in answerable:
        passage = bench.passages[q.gold_passage]
        assert passage.document_id == q.document_id
        assert bench.is_hit(q, passage.document_id, passage.start, passage.end)
        assert not bench.is_hit(q, "another document", passage.start, passage.end)
        assert any(answer in passage.text for answer in q.answers)
    held_out = [q for q in bench.questions if not q.answerable]
    assert all(q.gold_passage is None and q.document_id not in {d.id for d in bench.documents} for q in held_out)


def test_encoder_flops_match_torch_flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import BertConfig, BertForQuestionAnswering

    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, attn_implementation="eager")
    model = BertForQuestionAnswering(config).eval()
    ids = torch.randint(0, 100, (3, 40))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids)
    assert encoder_flops(config, [(3, 40)]) == pytest.approx(counter.get_total_flops(), rel=0.01)


def test_reliability_bins_and_ece():
    perfect = reliability([0.05, 0.05, 0.95, 0.95], [False, False, True, True])
    assert perfect["ece"] == pytest.approx(0.05)
    overconfident = reliability([0.9] * 4, [True, False, False, False])
    assert overconfident["ece"] == pytest.approx(0.65)
    assert [b["count"] for b in overconfident["bins"]] == [4]


@pytest.mark.integration
@pytest.mark.slow
def test_quick_side_by_side_run_writes_results_report_and_plots(tmp_path):
    from spanqa.plugin.doors.cli import main

    write_squad(tmp_path / "mini.json")
    write_clinc(tmp_path / "clinc.json")
    out = tmp_path / "out"
    assert main(["bench", "--quick", "--data", str(tmp_path / "mini.json"), "--clinc", str(tmp_path / "clinc.json"),
                 "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert {"meta", "spanqa", "haystack", "baseline"} <= results.keys()
    assert results["meta"]["data"]["unanswerable"] >= 1
    for name in ("spanqa", "haystack", "baseline"):
        section = results[name]
        # Six short contexts: the answer-bearing passage is always within the top 20.
        assert all(mode["recall@20"] == 1.0 for mode in section["retrieval"].values())
        assert section["gold_passage"]["f1"] > 50, name  # the same shipped reader reads easy facts
        assert section["open_domain"]["latency"]["end_to_end"]["p50_ms"] > 0
        assert section["open_domain"]["reader_compute"]["bound_ms"] > 0
        assert section["peak_rss_mb"] > 100
    assert set(results["haystack"]["retrieval"]) == {"dense", "bm25", "hybrid"}
    assert set(results["baseline"]["retrieval"]) == {"dense"}
    assert results["spanqa"]["router"]["in_scope_intents"] == 3
    report = (out / "report.md").read_text()
    assert "| metric | spanqa | haystack | baseline |" in report and "gold passage F1" in report
    for plot in ("latency.png", "reliability.png", "recall.png"):
        assert (out / plot).read_bytes()[:4] == b"\x89PNG"


def test_previous_models_system_needs_their_folder(tmp_path):
    from bench.run import main

    with pytest.raises(SystemExit, match="--previous DIR holding reader/ and ranker.json"):
        main(["--systems", "spanqa,spanqa-previous", "--previous", str(tmp_path), "--data", str(tmp_path / "x.json")])


def test_development_questions_never_include_the_benchmark_sample():
    from types import SimpleNamespace

    from bench.reader import SELECTION_QUESTIONS, _split

    examples = [SimpleNamespace(id=i, is_impossible=False) for i in range(3000)]
    for name in ("squadshifts-reddit", "squadshifts-new_wiki"):
        test = {e.id for e in _split(name, examples, 1000, "test")}
        dev = {e.id for e in _split(name, examples, 500, "dev")}
        assert len(test) == 1000 and len(dev) == 500 and not test & dev, name
    assert {e.id for e in _split("squadshifts-new_wiki", examples, 500, "dev")} < set(range(SELECTION_QUESTIONS))


def test_the_conversation_set_is_verbatim_and_as_described():
    from bench.conversations import load

    conversations = load()  # raises when an answer is not verbatim in its source
    follow_ups = [t for c in conversations for t in c.turns[1:]]
    assert len(conversations) == 40 and all(len(c.turns) == 3 for c in conversations)
    assert {d: sum(c.domain == d for c in conversations) for d in ("wiki", "technical")} == {"wiki": 20,
                                                                                          "technical": 20}
    assert sum(not t.answerable for t in follow_ups) == 8  # about 10 % unanswerable
    assert sum(c.turns[-1].source != c.turns[0].source for c in conversations) >= 4  # moves to a related document
    assert all(t.standalone != t.question for t in follow_ups if t.question[0].islower())  # rewritten follow-ups


def test_synthetic_follow_ups_name_nothing_their_first_turn_named():
    from bench.conversation import SHARED, synthetic_conversations

    if not (SHARED / "squadshifts").is_dir():
        pytest.skip("the shared data are not on this machine")
    _, conversations = synthetic_conversations(50)
    assert len(conversations) == 50
    for conversation in conversations:
        first, second = conversation.turns
        assert " it" in f" {second.question}".replace(" its", " it") and second.standalone != second.question


@pytest.mark.parametrize(("answer", "passage", "kind"), [
    (("pytest --timeout=300", 10, 30, "d"), (0, 100), "right"),
    (("--timeout=300", 17, 30, "d"), (0, 100), "boundary"),  # cut short
    (("pytest-timeout plugin", 50, 71, "d"), (0, 100), "wrong type"),  # a phrase where a command was asked for
    (("pytest --timeout=60", 50, 69, "d"), (0, 100), "wrong span"),  # the right passage and kind, the wrong words
    (("pytest --timeout=60", 250, 269, "d"), (200, 300), "wrong passage"),
    (("pytest --timeout=300", 10, 30, "other"), (0, 100), "right"),  # the same words quoted from elsewhere
    (None, None, "no answer"),
])
def test_answer_errors_are_told_apart_by_kind(answer, passage, kind):
    from bench.errors import error_kind

    assert error_kind(answer, passage, [(10, 30)], ["pytest --timeout=300"], "d") == kind


def _manual_records(manual: str, scores: list[float], right: list[bool]) -> list[dict]:
    """Questions of one manual: answerable ones whose top candidate is right or wrong at the given score, and one
    unanswerable one scoring 0.5."""
    records = [{"id": f"{manual}-{i}", "manual": manual, "golds": ["the answer"], "route": "documents",
                "candidates": [{"text": "the answer" if ok else "something else", "score": s}],
                "withheld_reply": "Not sure.", "passages": ["the answer is here"], "ms": 10.0}
               for i, (s, ok) in enumerate(zip(scores, right, strict=True))]
    records.append({"id": f"{manual}-u", "manual": manual, "golds": [], "route": "documents",
                    "candidates": [{"text": "x", "score": 0.5}], "withheld_reply": "Not sure.", "passages": [],
                    "ms": 10.0})
    return records


def test_the_manuals_protocol_never_scores_a_manual_with_a_threshold_fitted_on_it():
    from bench.manuals import fit_threshold, leave_one_out

    records = {name: _manual_records(name, [0.2, 0.4, 0.6, 0.8], [True, True, True, False])
               for name in ("a", "b", "c")}
    before = leave_one_out(records, shipped=0.3)
    # Manual a's own answers change completely: its own operating point would move, the one it is scored at must not.
    records["a"] = _manual_records("a", [0.9, 0.95, 0.97, 0.99], [True, True, True, True])
    after = leave_one_out(records, shipped=0.3)
    assert after["a"]["left out"]["threshold"] == before["a"]["left out"]["threshold"]
    assert after["a"]["left out"]["threshold"] == fit_threshold(records["b"] + records["c"])
    assert fit_threshold(records["a"]) != after["a"]["left out"]["threshold"]
    assert after["b"]["left out"]["threshold"] == fit_threshold(records["a"] + records["c"])  # a counts for b


def test_a_withheld_reply_is_useful_when_it_quotes_the_gold_answer_as_whole_words():
    from bench.manuals import score

    record = {"id": "q", "manual": "m", "golds": ["-x"], "route": "documents",
              "candidates": [{"text": "--exec", "score": 0.1}], "passages": ["git cherry-pick -x"], "ms": 1.0}
    assert score({**record, "withheld_reply": "Not sure. The closest passage says: “use **-x** to …”"}, 0.3)["useful"]
    assert not score({**record, "withheld_reply": "Not sure. The closest passage says: “use -xpatience”"},
                     0.3)["useful"]  # "x" inside another word is not the answer
