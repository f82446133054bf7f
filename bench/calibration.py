"""Does the threshold mean the same on every domain, and how many in-domain labels does `spanqa calibrate` need?

    python -m bench.calibration --data FILE.json [--labels 100,300] [--holdout 0.15] [--limit N] [--skip N]
        [--agreement]

Answers every question of a SQuAD-format file once with the shipped ranker (collection calibration = identity),
then reports, on the questions not used for fitting: ECE of the answer score and abstention at the default
threshold, before calibration and after `spanqa calibrate`'s fit on N labelled questions of that domain (sampled,
seeded; the rest measure it). Writes bench/out/calibration-<name>.json.

`--agreement` also tries a fit that needs no labels at all: each question is read by the other reader too, and
"both readers' first answers agree (F1 >= 0.5)" stands in for "right" (issue 29's label-free calibration).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

import numpy as np

from bench.common import write_json

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _other_reader_agrees(assistant, question: str, first) -> bool:
    """Whether the reader that did not answer `question` gives (F1 >= 0.5) the same first answer."""
    from spanqa.plugin.engine.squad import f1_score

    hits = assistant.search(question)
    mine = assistant.reader_for(hits)
    other = assistant.technical_reader if mine is assistant.reader else assistant.reader
    candidates = assistant.read_candidates_many([question], [hits], [other])[0][0]
    ranked = assistant.ranker.rank(question, candidates, hits, assistant.reader_name(other),
                                   assistant.technical_text(hits))
    return bool(ranked) and f1_score(first.text, ranked[0].text) >= 0.5


def _answer_all(path: Path, holdout: float, limit: int | None, skip: int, seed: int,
                agreement: bool = False) -> list[dict]:
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.engine.squad import CORRECT_F1, f1_score, max_over_ground_truths
    from spanqa.plugin.lab.ranker_training import open_domain_set

    rows = []
    with tempfile.TemporaryDirectory(prefix="spanqa-calibration-") as tmp:
        collection, questions = open_domain_set(path, Path(tmp) / "collection", holdout, seed, skip, None, limit)
        assistant = Assistant(collection)
        for question, truths in questions:
            response = assistant.answer(question, threshold=0.0)
            best = response.answers[0] if response.answers else None
            f1 = max_over_ground_truths(f1_score, best.text, truths) if best and truths else 0.0
            rows.append({"question": question, "answers": truths, "score": best.score if best else 0.0,
                         "right": bool(truths) and f1 >= CORRECT_F1, "f1": f1,
                         "agree": bool(best) and agreement and _other_reader_agrees(assistant, question, best)})
        collection.close()
    return rows


def _measure(rows: list[dict], scores: np.ndarray, threshold: float) -> dict:
    from spanqa.plugin.engine.calibration import expected_calibration_error

    right = np.array([r["right"] for r in rows], dtype=float)
    answerable = np.array([bool(r["answers"]) for r in rows])
    abstained = scores < threshold
    e2e = np.where(answerable, np.where(abstained, 0.0, [r["f1"] for r in rows]), abstained.astype(float))
    return {"questions": len(rows), "ece": round(expected_calibration_error(scores, right), 4),
            "abstained_answerable": round(float(abstained[answerable].mean()), 3) if answerable.any() else None,
            "abstained_unanswerable": round(float(abstained[~answerable].mean()), 3) if (~answerable).any() else None,
            "abstention_precision": round(float((~answerable[abstained]).mean()), 3) if abstained.any() else None,
            "e2e_f1": round(100 * float(e2e.mean()), 2)}


def run(args) -> dict:
    from spanqa.plugin.engine.calibration import fit_platt
    from spanqa.plugin.engine.ranking import ScoreCalibration

    from spanqa.settings import Settings

    rows = _answer_all(args.data, args.holdout, args.limit, args.skip, args.seed, args.agreement)
    threshold = Settings.answer_threshold
    result = {"data": args.data.name, "threshold": threshold,
              "shipped": _measure(rows, np.array([r["score"] for r in rows]), threshold)}
    for n in args.labels:
        if n >= len(rows) - 20:
            continue
        order = random.Random(args.seed).sample(range(len(rows)), len(rows))
        fit_rows, test_rows = [rows[i] for i in order[:n]], [rows[i] for i in order[n:]]
        raw = np.array([r["score"] for r in test_rows])
        for label, key in (("labels", "right"), ("questions, agreement as the label", "agree")):
            if key == "agree" and not args.agreement:
                continue
            a, b = fit_platt([(r["score"], r[key]) for r in fit_rows])
            calibration = ScoreCalibration(a, b)
            result[f"{n} {label}"] = {"a": round(a, 3), "b": round(b, 3),
                                      "before": _measure(test_rows, raw, threshold),
                                      "after": _measure(test_rows, np.array([calibration.probability(p) for p in raw]),
                                                        threshold)}
    if args.agreement:
        result["agreement rate"] = round(float(np.mean([r["agree"] for r in rows])), 3)
        result["right rate"] = round(float(np.mean([r["right"] for r in rows])), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED / "covid-qa" / "covid_qa_200423.json")
    parser.add_argument("--labels", default="100,300", help="comma-separated numbers of in-domain labels")
    parser.add_argument("--holdout", type=float, default=0.15)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--skip", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--agreement", action="store_true",
                        help="also fit on the two readers' agreement instead of labels (no labels needed)")
    args = parser.parse_args()
    args.labels = [int(n) for n in args.labels.split(",") if n.strip()]
    result = run(args)
    out = Path("bench/out") / f"calibration-{args.data.stem}.json"
    write_json(out, result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
