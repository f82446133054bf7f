"""Answers on real manuals, leave one manual out: `python -m bench manuals [--before REV] [--out DIR]`.

`../shared/data/manuals/` holds five reference manuals shipped by Debian (SQLite, Git, PostgreSQL, Bash, Node.js;
14 pages each) with 45 answerable and 5 unanswerable questions each, written in users' words by people who did not
write spanqa. Each manual is ingested as its own collection and every question is asked as a user asks it
(`Service.ask`: routed, default settings), once, with the answer threshold at 1 so that every reply is recorded
both ways: its top candidates with their scores, and the reply it gets when the answer is withheld. Any operating
point is then scored from that one run.

Two operating points per manual:

    shipped        the answer threshold as shipped (`Settings.answer_threshold`)
    left out       the threshold chosen on the other four manuals (the highest answerable F1 with at least
                   `UNANSWERABLE_WITHHELD` of their unanswerable questions withheld), applied to this one

Follow-ups: each manual's twelve three-turn conversations (users' wording: pronouns, "that flag", ellipsis, topic
moves), turns 2 and 3 asked four ways at the shipped threshold: alone as written, with the conversation as the
chat UI passes it (replies with their JSON), with the replies' text only (an OpenAI client's history), and as the
standalone rewrite a careful person would type (the ceiling); F1 on the answerable ones, recall@5 (a gold answer
in the passages read) and the unanswerable ones withheld.

Nothing is fitted on the manual it is scored on (`fit_threshold` is handed only the others' records;
tests/test_bench.py holds it to that). Reported per manual and as the mean: end-to-end F1 on the answerable
questions (a withheld answer scores 0), withheld answerable / unanswerable, top-1 F1 never abstaining, the best of
the candidates returned, gold in the passages read, **useful replies** (the answer right, F1 >= 0.5, or a withheld
reply whose text holds a gold answer as whole words), ECE of the answer score and p50 latency. With `--before
REV` the same harness runs spanqa as it was at REV in a process of its own, and each row gains the paired 95 %
bootstrap interval of the difference over the same 250 questions. Beside them, in the same run (`--own-sets N`),
each system answers N questions of each of the project's own sets (technical, new_wiki, COVID-QA): a change
ships when the left-out mean improves and no set loses more than OWN_SET_TOLERANCE F1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import markdown_table, write_json

__all__ = ["MANUALS", "collect", "fit_threshold", "leave_one_out", "main", "score", "summary"]

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "manuals"
MANUALS = ("sqlite", "git", "postgresql", "bash", "nodejs")
UNANSWERABLE_WITHHELD = 0.8  # the floor: at least this share of unanswerable questions withheld
USEFUL_F1 = 0.5
OWN_SET_TOLERANCE = 1.0  # a change ships when the left-out mean improves and no set loses more F1 than this
THRESHOLDS = [round(0.01 * i, 2) for i in range(101)]


@dataclass(frozen=True)
class Question:
    id: str
    manual: str
    text: str
    answers: tuple[str, ...]  # empty: unanswerable


def questions(manual: str) -> list[Question]:
    data = json.loads((DATA / manual / "qa.json").read_text())
    found = []
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                golds = () if qa.get("is_impossible") else tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                found.append(Question(qa["id"], manual, qa["question"], golds))
    return found


def _record(data: dict, base: dict, ms: float) -> dict:
    return {**base, "route": data["route"], "reader": data.get("reader", ""),
            "candidates": [{"text": a["text"], "score": a["score"]} for a in data["answers"]],
            "withheld_reply": data["reply"], "passages": [p["text"] for p in data["passages"]], "ms": ms}


def _asked(service, text: str, base: dict, **options) -> tuple[dict, dict]:
    started = time.perf_counter()
    data = service.ask(text, **options).data
    return data, _record(data, base, (time.perf_counter() - started) * 1000)


def collect(manual: str, out: Path) -> dict[str, list[dict]]:
    """Every question of `manual`, asked once (threshold 1): what each reply would be either way; and every
    conversation's follow-ups asked three ways at the shipped threshold (the conversation's earlier replies
    depend on it). Runs against whichever spanqa is importable (today's, or an earlier revision's)."""
    from spanqa import Service, open_collection

    location = out / "collections" / manual
    shutil.rmtree(location, ignore_errors=True)  # built afresh: the run measures exactly the manual's pages
    open_collection(str(location), create=True).ingest([str(DATA / manual / "docs")])
    service = Service.open(str(location))
    service.ask("What is this manual about?")  # loads the models (and the technical reader) outside the timings
    records = []
    for q in questions(manual):
        base = {"id": q.id, "manual": manual, "question": q.text, "golds": list(q.answers)}
        records.append(_asked(service, q.text, base, min_score=1.0)[1])
    return {"questions": records, **follow_ups(service, manual)}


WAYS = ("alone", "conversation", "conversation (text)", "standalone")


def follow_ups(service, manual: str) -> dict[str, list[dict]]:
    """Each conversation's follow-up turns (2 and 3) asked four ways: alone as written; with the conversation as
    the chat UI passes it (spanqa's earlier replies with their JSON); with the replies' text only (an OpenAI
    client's history); and as their standalone rewrite (the ceiling)."""
    conversations = json.loads((DATA / manual / "conversations.json").read_text())["conversations"]
    ways: dict[str, list[dict]] = {way: [] for way in WAYS}
    for conversation in conversations:
        histories: dict[str, list[dict]] = {"conversation": [], "conversation (text)": []}
        for number, turn in enumerate(conversation["turns"], start=1):
            base = {"id": f"{conversation['id']}-{number}", "manual": manual, "question": turn["question"],
                    "golds": [] if turn["impossible"] else list(turn["answers"])}
            for way, history in histories.items():
                data, record = _asked(service, turn["question"], base, history=list(history) or None)
                if number > 1:
                    ways[way].append(record)
                reply = {"role": "assistant", "content": data["reply"]}
                if way == "conversation":
                    reply["response"] = {key: data.get(key) for key in ("route", "abstained", "answers", "resolved")}
                history += [{"role": "user", "content": turn["question"]}, reply]
            if number > 1:
                ways["alone"].append(_asked(service, turn["question"], base)[1])
                ways["standalone"].append(_asked(service, turn["standalone"], base)[1])
    return ways


def _words(text: str) -> str:
    from spanqa.plugin.engine.squad import normalize_answer

    return f" {normalize_answer(text)} "


def _f1(prediction: str, golds: list[str]) -> float:
    from spanqa.plugin.engine.squad import f1_score

    return max(f1_score(prediction, g) for g in golds)


def _answered(record: dict, threshold: float) -> bool:
    """Whether the reply gives its top candidate as the answer at `threshold` (a message the router was unsure of
    answers only above the stricter fallback bar, as the engine does)."""
    from spanqa.plugin.engine.assistant import FALLBACK_THRESHOLD

    if record["route"] not in ("documents", "fallback") or not record["candidates"]:
        return False
    bar = max(threshold, FALLBACK_THRESHOLD) if record["route"] == "fallback" else threshold
    return record["candidates"][0]["score"] >= bar


def score(record: dict, threshold: float) -> dict:
    """One question's measures at `threshold`."""
    golds, candidates = record["golds"], record["candidates"]
    answered = _answered(record, threshold)
    if not golds:
        return {"answerable": False, "answered": answered, "e2e": float(not answered),
                "confidence": candidates[0]["score"] if candidates else None, "right": False}
    top = _f1(candidates[0]["text"], golds) if candidates else 0.0
    holds = any(_words(g).strip() and _words(g) in _words(record["withheld_reply"]) for g in golds)
    return {"answerable": True, "answered": answered, "e2e": top if answered else 0.0, "top1": top,
            "best": max((_f1(c["text"], golds) for c in candidates), default=0.0),
            "gold_read": any(_words(g).strip() and _words(g) in _words(p) for g in golds for p in record["passages"]),
            "useful": (answered and top >= USEFUL_F1) or (not answered and holds),
            "confidence": candidates[0]["score"] if candidates else None, "right": top >= USEFUL_F1}


def _ece(scored: list[dict], bins: int = 10) -> float:
    pairs = [(s["confidence"], float(s["right"])) for s in scored if s["confidence"] is not None]
    if not pairs:
        return 0.0
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(c, r) for c, r in pairs if low <= c < high or (b == bins - 1 and c == 1.0)]
        if inside:
            total += len(inside) * abs(statistics.fmean(c for c, _ in inside) - statistics.fmean(r for _, r in inside))
    return total / len(pairs)


def summary(records: list[dict], threshold: float) -> dict:
    """The measures of `records` at `threshold` (percentages, as the tables show them)."""
    scored = [score(r, threshold) for r in records]
    answerable = [s for s in scored if s["answerable"]]
    unanswerable = [s for s in scored if not s["answerable"]]

    def share(items: list[dict], key: str) -> float:
        return 100 * statistics.fmean(float(s[key]) for s in items) if items else 0.0

    return {"threshold": threshold, "questions": len(scored), "e2e_f1_answerable": share(answerable, "e2e"),
            "e2e_f1_all": share(scored, "e2e"),
            "withheld_answerable": sum(not s["answered"] for s in answerable),
            "withheld_unanswerable": sum(not s["answered"] for s in unanswerable),
            "answerable": len(answerable), "unanswerable": len(unanswerable),
            "top1_f1": share(answerable, "top1"), "best_candidate_f1": share(answerable, "best"),
            "gold_in_passages_read": share(answerable, "gold_read"), "useful_replies": share(answerable, "useful"),
            "ece": _ece(scored), "p50_ms": statistics.median(r["ms"] for r in records)}


def fit_threshold(records: list[dict]) -> float:
    """The threshold with the highest end-to-end F1 on `records`' answerable questions among those that withhold
    at least UNANSWERABLE_WITHHELD of their unanswerable ones (ties: the higher threshold, the safer)."""
    best, chosen = -1.0, THRESHOLDS[-1]
    for threshold in THRESHOLDS:
        measures = summary(records, threshold)
        if measures["withheld_unanswerable"] < UNANSWERABLE_WITHHELD * measures["unanswerable"]:
            continue
        if measures["e2e_f1_answerable"] >= best:
            best, chosen = measures["e2e_f1_answerable"], threshold
    return chosen


def leave_one_out(records: dict[str, list[dict]], shipped: float) -> dict[str, dict]:
    """Per manual: its measures at the shipped threshold and at the one fitted on the other manuals alone."""
    rows = {}
    for manual, own in records.items():
        others = [r for name, rs in records.items() if name != manual for r in rs]
        fitted = fit_threshold(others)
        rows[manual] = {"shipped": summary(own, shipped), "left out": summary(own, fitted)}
    return rows


def paired(after: list[dict], before: list[dict], key: str, threshold_after: dict[str, float],
           threshold_before: dict[str, float], resamples: int = 10_000) -> dict:
    """Mean difference of a per-question measure on the answerable questions (after − before, the same questions)
    with its 95 % bootstrap interval; each question scored at its manual's threshold for each system."""
    import numpy as np

    old = {r["id"]: score(r, threshold_before[r["manual"]]) for r in before}
    diffs = []
    for r in after:
        new = score(r, threshold_after[r["manual"]])
        if r["id"] in old and new["answerable"] and key in new:
            diffs.append(float(new[key]) - float(old[r["id"]][key]))
    values = np.array(diffs)
    means = values[np.random.default_rng(0).integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    return {"questions": len(values), "difference": 100 * float(values.mean()),
            "ci95": [100 * float(np.percentile(means, 2.5)), 100 * float(np.percentile(means, 97.5))]}


def _collect_all(out: str) -> dict[str, dict[str, list[dict]]]:
    return {manual: collect(manual, Path(out)) for manual in MANUALS}


COLUMNS = [("e2e F1 (answerable)", "e2e_f1_answerable"), ("withheld answerable", "withheld_answerable"),
           ("withheld unanswerable", "withheld_unanswerable"), ("top-1 F1", "top1_f1"),
           ("best candidate F1", "best_candidate_f1"), ("gold in passages read %", "gold_in_passages_read"),
           ("useful replies %", "useful_replies"), ("ECE", "ece"), ("p50 ms", "p50_ms"), ("threshold", "threshold")]


def _table(rows: dict[str, dict], way: str) -> str:
    body = [[manual, *[rows[manual][way][key] for _, key in COLUMNS]] for manual in rows]
    body.append(["mean", *[statistics.fmean(rows[m][way][key] for m in rows) for _, key in COLUMNS]])
    return markdown_table(["manual", *[name for name, _ in COLUMNS]], body)


def _conversation_table(conversations: dict[str, dict[str, dict]]) -> str:
    keys = [("F1", "e2e_f1_answerable"), ("recall@5", "gold_in_passages_read"),
            ("withheld unanswerable", "withheld_unanswerable"), ("useful %", "useful_replies")]
    manuals = list(next(iter(conversations.values())))
    rows = []
    for way, per_manual in conversations.items():
        for manual in [*manuals, "mean"]:
            if manual == "mean":
                rows.append([way, "mean", *[statistics.fmean(per_manual[m][k] for m in manuals) for _, k in keys]])
            else:
                rows.append([way, manual, *[per_manual[manual][k] for _, k in keys]])
    return markdown_table(["way", "manual", *[name for name, _ in keys]], rows)


def main(argv: list[str] | None = None) -> int:
    from bench.conversation import single_turn
    from bench.revision import checkout
    from bench.run import _in_own_process
    from spanqa.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m bench manuals", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/manuals"))
    parser.add_argument("--before", metavar="REV", help="also run spanqa as it was at this git revision")
    parser.add_argument("--own-sets", type=int, default=100, metavar="N",
                        help="also answer N questions of each of the project's own sets (technical, new_wiki, "
                             "COVID-QA) with each system in the same run, the check that no set loses more than "
                             f"{OWN_SET_TOLERANCE} F1 (0: skip)")
    args = parser.parse_args(argv)
    shipped = Settings().answer_threshold
    systems = {"spanqa": _in_own_process(_collect_all, str(args.out / "now"))}
    own = {"spanqa": _in_own_process(single_turn, args.own_sets)} if args.own_sets else {}
    if args.before:
        with checkout(args.before) as root:
            systems["spanqa-before"] = _in_own_process(_collect_all, str(args.out / "before"), spanqa_root=root)
            if args.own_sets:
                own["spanqa-before"] = _in_own_process(single_turn, args.own_sets, spanqa_root=root)
    results = {"shipped_threshold": shipped, "systems": {}, "own_sets": own}
    if own:
        print(f"\nthe project's own sets, F1 (the shipped threshold)\n{_own_sets_table(own)}")
    for name, collected in systems.items():
        records = {manual: found["questions"] for manual, found in collected.items()}
        rows = leave_one_out(records, shipped)
        conversations = {way: {manual: summary(found[way], shipped) for manual, found in collected.items()}
                         for way in WAYS}
        results["systems"][name] = {"rows": rows, "records": records, "conversations": conversations,
                                    "follow_up_records": {m: {w: found[w] for w in WAYS} for m, found in
                                                          collected.items()}}
        for way in ("shipped", "left out"):
            print(f"\n{name}, {way} threshold\n{_table(rows, way)}")
        print(f"\n{name}, follow-ups (shipped threshold)\n{_conversation_table(conversations)}")
    if "spanqa-before" in systems:
        results["paired"] = _paired_report(results["systems"])
        for line in results["paired"]:
            print(line["text"])
    write_json(args.out / "results.json", results)
    return 0


def _own_sets_table(own: dict[str, dict]) -> str:
    """F1 on each of the project's own sets for each system, and the difference when both ran."""
    now, before = own["spanqa"], own.get("spanqa-before")
    rows = []
    for name, ways in now.items():
        row = [name, ways["alone"]["f1"], ways["alone"]["n"]]
        if before is not None:
            old = before[name]["alone"]["f1"]
            row += [old, ways["alone"]["f1"] - old]
        rows.append(row)
    header = ["set", "F1", "questions"] + (["F1 before", "difference"] if before is not None else [])
    return markdown_table(header, rows)


def _paired_report(systems: dict) -> list[dict]:
    after, before = systems["spanqa"], systems["spanqa-before"]
    flat_after = [r for rs in after["records"].values() for r in rs]
    flat_before = [r for rs in before["records"].values() for r in rs]
    lines = []
    for way in ("shipped", "left out"):
        thresholds_after = {m: after["rows"][m][way]["threshold"] for m in after["rows"]}
        thresholds_before = {m: before["rows"][m][way]["threshold"] for m in before["rows"]}
        for measure in ("e2e", "useful"):
            d = paired(flat_after, flat_before, measure, thresholds_after, thresholds_before)
            text = (f"{way} threshold, {measure}: after − before {d['difference']:+.2f} (95 % {d['ci95'][0]:+.2f} to "
                    f"{d['ci95'][1]:+.2f}; {d['questions']} questions)")
            lines.append({"way": way, "measure": measure, **d, "text": text})
    shipped = {m: after["rows"][m]["shipped"]["threshold"] for m in after["rows"]}
    for way in ("conversation", "conversation (text)"):
        flat_after = [r for found in after["follow_up_records"].values() for r in found[way]]
        flat_before = [r for found in before["follow_up_records"].values() for r in found[way]]
        for measure in ("e2e", "top1", "gold_read", "useful"):
            d = paired(flat_after, flat_before, measure, shipped, shipped)
            text = (f"follow-ups with the {way}, {measure}: after − before {d['difference']:+.2f} (95 % "
                    f"{d['ci95'][0]:+.2f} to {d['ci95'][1]:+.2f}; {d['questions']} follow-ups)")
            lines.append({"way": f"follow-ups, {way}", "measure": measure, **d, "text": text})
    return lines
