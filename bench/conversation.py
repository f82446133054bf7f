"""Follow-up questions, measured: `python -m bench conversations [--out DIR]`.

On the conversation development set (bench/conversations), every follow-up turn is answered three ways in one
run, over one collection (the set's articles and technical READMEs):

    alone        the follow-up as written, without the conversation (spanqa before conversations)
    history      the follow-up with the conversation before it, as a door passes it: the user's questions and
                 spanqa's own replies as text (the OpenAI shape), and as the chat UI passes it (with each reply's
                 response JSON)
    standalone   the rewrite a perfect rewriter would produce (the ceiling)

Reported per way: F1 on the answerable follow-ups (an abstention scores 0), recall@5 (the gold answer inside one
of the five passages read), abstention on the unanswerable ones, and latency (p50, p95) with what resolution
itself took. Also: routing (follow-ups that reach the documents through `respond`, and chit-chat after an answer
that stays chit-chat) and first turns answered after an unrelated conversation (a topic switch must not be
dragged back: their F1 must equal the F1 alone).

`--synthetic N` adds a check on text nobody looked at while writing the rules: N two-turn conversations made from
SQuADShifts new_wiki (questions past the first 1,000, which chose the reader): two questions on one paragraph
that both name its article's subject (a proper name), the second with that name replaced by "it" — the
follow-up — and the original second question as its standalone rewrite.

`--single-turn N` adds the single-turn sets (the technical development set, SQuADShifts new_wiki and COVID-QA,
N questions each, seeded), each question answered alone (as before conversations: the same code path) and after
an unrelated earlier exchange (as in a chat that changed subject): end-to-end F1 (abstaining right = 1) and p50.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from bench.common import markdown_table, percentiles, write_json

__all__ = ["main", "run"]

CHITCHAT_AFTER_ANSWER = ["thanks!", "great, thank you", "bye for now", "hello again"]


def _collection(directory: Path):
    from spanqa.plugin.engine.collections import open_collection

    from bench.conversations import sources

    # Built afresh: an incremental ingest into a collection left by an earlier run keeps documents the set no longer
    # lists, and the run would measure another collection than it names.
    shutil.rmtree(directory, ignore_errors=True)
    collection = open_collection(directory, create=True)
    collection.ingest([str(p) for p in sources()])
    return collection


def _score(turn, response) -> dict:
    from spanqa.plugin.engine.squad import f1_score, normalize_answer

    gold = normalize_answer(turn.answer)
    recall = bool(gold) and any(gold in normalize_answer(h.passage.text) for h in response.passages[:5])
    prediction = "" if response.abstained or not response.answers else response.answers[0].text
    return {"answerable": turn.answerable, "abstained": response.abstained,
            "f1": f1_score(prediction, turn.answer) if turn.answerable else float(response.abstained),
            "recall": float(recall), "total_ms": response.timings.get("total_ms", 0.0),
            "resolve_ms": response.timings.get("resolve_ms", 0.0), "prediction": prediction,
            "resolved": response.resolution.question}


def _history(conversation, responses, upto: int, with_json: bool) -> list[dict]:
    history = []
    for turn, response in zip(conversation.turns[:upto], responses[:upto], strict=True):
        history.append({"role": "user", "content": turn.question})
        reply = {"role": "assistant", "content": response.reply}
        if with_json:
            reply["response"] = response.to_json()
        history.append(reply)
    return history


def _converse(assistant, conversation, with_json: bool) -> list[dict]:
    """The conversation as a user has it: each turn asked with the turns before it and spanqa's own replies."""
    responses, scores = [], []
    for i, turn in enumerate(conversation.turns):
        response = assistant.respond(turn.question, history=_history(conversation, responses, i, with_json))
        responses.append(response)
        if i:
            scores.append(_score(turn, response))
    return scores


def _summary(scores: list[dict]) -> dict:
    answerable = [s for s in scores if s["answerable"]]
    unanswerable = [s for s in scores if not s["answerable"]]
    mean = lambda values: 100 * sum(values) / len(values) if values else float("nan")  # noqa: E731
    return {"f1": mean([s["f1"] for s in answerable]), "recall_at_5": mean([s["recall"] for s in answerable]),
            "unanswerable_abstained": mean([s["abstained"] for s in unanswerable]),
            "answerable_withheld": mean([s["abstained"] for s in answerable]),
            **percentiles([s["total_ms"] for s in scores]),
            "resolve_p50_ms": percentiles([s["resolve_ms"] for s in scores])["p50_ms"],
            "resolve_p95_ms": percentiles([s["resolve_ms"] for s in scores])["p95_ms"], "n": len(scores)}


def run(out: Path) -> dict:
    from spanqa.plugin.engine.assistant import Assistant

    from bench.conversations import load
    from spanqa.settings import Settings

    conversations = load()
    assistant = Assistant(_collection(out / "collection"), settings=Settings())
    assistant.warm_up()
    assistant.respond(conversations[0].turns[0].question)  # the technical reader loads on first use
    follow_ups = [(c, t) for c in conversations for t in c.turns[1:]]
    ways: dict[str, list[dict]] = {
        "alone": [_score(t, assistant.respond(t.question)) for _, t in follow_ups],
        "history (text)": [s for c in conversations for s in _converse(assistant, c, with_json=False)],
        "history (JSON)": [s for c in conversations for s in _converse(assistant, c, with_json=True)],
        "standalone": [_score(t, assistant.respond(t.standalone)) for _, t in follow_ups],
    }
    domains = {"all": None, "wiki": "wiki", "technical": "technical"}
    kinds = [c.domain for c, _ in follow_ups]
    results = {way: {name: _summary([s for s, k in zip(scores, kinds, strict=True) if d in (None, k)])
                     for name, d in domains.items()} for way, scores in ways.items()}
    results["routing"] = _routing(assistant, conversations)
    results["topic_switch"] = _topic_switch(assistant, conversations)
    results["turns"] = [{"id": c.id, "question": t.question, "standalone": t.standalone, "gold": t.answer,
                         **{way: scores[i] for way, scores in ways.items()}} for i, (c, t) in enumerate(follow_ups)]
    return results


def _routing(assistant, conversations) -> dict:
    """Follow-ups that `respond` sends to the documents, and chit-chat after an answer that stays chit-chat."""
    documents, chitchat = 0, 0
    for conversation in conversations:
        first = conversation.turns[0]
        history = [{"role": "user", "content": first.question},
                   {"role": "assistant", "content": assistant.respond(first.question).reply}]
        follow_up = assistant.respond(conversation.turns[1].question, history=history)
        documents += follow_up.route in ("documents", "fallback")
        chat = assistant.respond(CHITCHAT_AFTER_ANSWER[len(conversation.id) % len(CHITCHAT_AFTER_ANSWER)],
                                 history=history)
        chitchat += chat.route == "reply"
    n = len(conversations)
    return {"follow_ups_to_documents": 100 * documents / n, "chitchat_kept": 100 * chitchat / n, "n": n}


def _topic_switch(assistant, conversations) -> dict:
    """First turns asked alone, and after the last turn of a conversation from the other domain."""
    alone, switched, same = [], [], 0
    for i, conversation in enumerate(conversations):
        other = conversations[(i + len(conversations) // 2) % len(conversations)]
        history = [{"role": "user", "content": other.turns[-1].standalone},
                   {"role": "assistant", "content": "(an earlier answer)"}]
        turn = conversation.turns[0]
        a, b = assistant.respond(turn.question), assistant.respond(turn.question, history=history)
        alone.append(_score(turn, a)["f1"])
        switched.append(_score(turn, b)["f1"])
        same += not b.resolution.follow_up
    n = len(conversations)
    return {"f1_alone": 100 * sum(alone) / n, "f1_after_other_topic": 100 * sum(switched) / n,
            "left_alone": 100 * same / n, "n": n}


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SINGLE_TURN_SETS = {  # name → (SQuAD-format file, questions skipped: those that chose models, contexts kept)
    "technical": (Path("bench/out/techdocs.json"), 0, None),
    "new_wiki": (SHARED / "squadshifts" / "new_wiki_v1.0.json", 1000, None),
    "COVID-QA": (SHARED / "covid-qa" / "covid_qa_200423.json", 0, 12),
}
UNRELATED = [{"role": "user", "content": "How long does a worker bee live in summer?"},
             {"role": "assistant", "content": "“about six weeks” — honey-bee.md, page 1 (confidence 0.95)"}]


def single_turn(count: int) -> dict:
    """Each set's questions alone and after an unrelated exchange, on the benchmark's collections."""
    from spanqa.plugin.engine.squad import f1_score, max_over_ground_truths
    from transformers import AutoTokenizer

    from bench.qa_data import build_bench_set
    from bench.systems import SpanqaSystem
    from bench.techdocs.build import build
    from spanqa.settings import Settings

    tokenizer = AutoTokenizer.from_pretrained(Settings.from_env().embedder_path)
    results = {}
    for name, (path, skip, contexts) in SINGLE_TURN_SETS.items():
        if name == "technical":
            write_json(path, build())
        system = SpanqaSystem(Settings.from_env().reader_path, top_k=5)
        bench = build_bench_set(path, tokenizer, limit=count, skip=skip, contexts=contexts)
        system.index(bench)
        ways: dict[str, list[tuple[float, float]]] = {"alone": [], "after another topic": []}
        for question in bench.questions:
            for way, history in (("alone", None), ("after another topic", UNRELATED)):
                response = system.assistant.respond(question.text, history=history)
                prediction = "" if response.abstained or not response.answers else response.answers[0].text
                ways[way].append((max_over_ground_truths(f1_score, prediction, list(question.answers)),
                                  response.timings["total_ms"]))
        results[name] = {way: {"f1": 100 * sum(f for f, _ in scores) / len(scores),
                               "p50_ms": percentiles([t for _, t in scores])["p50_ms"], "n": len(scores)}
                         for way, scores in ways.items()}
    return results


def synthetic_conversations(count: int, seed: int = 0) -> tuple[list, list]:
    """(documents, conversations) from new_wiki: see the module docstring. Built at run time from the shared data,
    never stored."""
    import json
    import random
    import re

    from spanqa.retriever.records import Document

    from bench.conversations import Conversation, Turn

    data = json.loads((SHARED / "squadshifts" / "new_wiki_v1.0.json").read_text())
    seen, documents, conversations = 0, [], []
    for article in data["data"]:
        subject = re.sub(r"\s*\(.*\)", "", article["title"].replace("_", " "))
        name = re.compile(rf"\b(?:the )?({re.escape(subject)})('s)?(?![\w-])", re.I)
        for number, paragraph in enumerate(article["paragraphs"]):
            questions = paragraph["qas"]
            seen += len(questions)
            if seen <= 1000:
                continue
            named = [q for q in questions if (m := name.search(q["question"])) and m.group(1)[0].isupper()]
            if len(named) < 2:
                continue
            first, second = named[0], named[1]
            follow_up = name.sub(lambda m: "its" if m.group(2) else "it", second["question"], count=1)
            source = f"{subject} #{number}"
            documents.append(Document(source=source, text=paragraph["context"], title=subject))
            answers = [a["text"] for a in second["answers"]]
            conversations.append(Conversation(f"{subject}-{number}", (
                Turn(first["question"], first["question"], first["answers"][0]["text"], source),
                Turn(follow_up, second["question"], answers[0], source))))
    picked = random.Random(seed).sample(conversations, min(count, len(conversations)))
    return documents, picked


def synthetic(out: Path, count: int) -> dict:
    """Alone / with the conversation / standalone on the synthetic follow-ups (module docstring)."""
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.retriever import LocalCollection
    from spanqa.retriever.loaders import LoadReport

    documents, conversations = synthetic_conversations(count)
    collection = LocalCollection(out / "synthetic-collection")
    if len(collection) == 0:
        collection.add_documents(LoadReport(documents=documents))
    assistant = Assistant(collection)
    turns = [c.turns[1] for c in conversations]
    ways = {"alone": [_score(t, assistant.respond(t.question)) for t in turns],
            "history (text)": [s for c in conversations for s in _converse(assistant, c, with_json=False)],
            "standalone": [_score(t, assistant.respond(t.standalone)) for t in turns]}
    return {way: _summary(scores) for way, scores in ways.items()}


def report(results: dict) -> str:
    rows = [[way, name, s["f1"], s["recall_at_5"], s["unanswerable_abstained"], s["answerable_withheld"],
             s["p50_ms"], s["p95_ms"], s["resolve_p50_ms"], s["n"]]
            for way in ("alone", "history (text)", "history (JSON)", "standalone")
            for name, s in results[way].items()]
    table = markdown_table(["way", "set", "F1", "recall@5", "unanswerable abstained %", "answerable withheld %",
                            "p50 ms", "p95 ms", "resolve p50 ms", "n"], rows)
    r, t = results["routing"], results["topic_switch"]
    if results.get("synthetic"):
        table += "\n\n" + markdown_table(
            ["synthetic new_wiki follow-ups", "F1", "recall@5", "p50 ms", "n"],
            [[way, x["f1"], x["recall_at_5"], x["p50_ms"], x["n"]] for way, x in results["synthetic"].items()])
    single = results.get("single_turn")
    if single:
        table += "\n\n" + markdown_table(
            ["single-turn set", "F1 alone", "F1 after another topic", "p50 ms alone", "p50 ms after", "n"],
            [[name, s["alone"]["f1"], s["after another topic"]["f1"], s["alone"]["p50_ms"],
              s["after another topic"]["p50_ms"], s["alone"]["n"]] for name, s in single.items()])
    return (table + f"\n\nRouting: {r['follow_ups_to_documents']:.1f} % of second turns reach the documents; "
            f"{r['chitchat_kept']:.1f} % of chit-chat after an answer stays chit-chat (n={r['n']}).\n"
            f"Topic switch: first turns F1 {t['f1_alone']:.2f} alone, {t['f1_after_other_topic']:.2f} after another "
            f"conversation; left alone {t['left_alone']:.1f} % (n={t['n']}).\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench conversations", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("bench/out/conversations"))
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="also N synthetic follow-ups made from new_wiki (0: leave them out)")
    parser.add_argument("--single-turn", type=int, default=0, metavar="N",
                        help="also the single-turn sets, N questions each (0: leave them out)")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    results = run(args.out)
    write_json(args.out / "results.json", results)  # each section is kept as soon as it is measured
    if args.synthetic:
        results["synthetic"] = synthetic(args.out, args.synthetic)
        write_json(args.out / "results.json", results)
    if args.single_turn:
        results["single_turn"] = single_turn(args.single_turn)
    results["seconds"] = time.perf_counter() - started
    write_json(args.out / "results.json", results)
    text = report(results)
    (args.out / "report.md").write_text(text)
    print(text)
    return 0
