"""How many document questions the router sends away from the documents (to help, out-of-scope or a reply).

    python -m bench.routing [--router DIR]

Every question here is a real document question, so every route other than "documents" or "fallback" is a miss.
Sets: the technical set (bench/techdocs), and samples of SQuADShifts new_wiki (1,000) and COVID-QA (380) drawn
from outside the first random 1,000 of each (seed 0), which were looked at while writing routing data.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from spanqa.plugin.engine.assistant import Assistant
from spanqa.plugin.engine.defaults import router_location
from spanqa.plugin.engine.router import load_router
from spanqa.plugin.engine.squad import load_squad

from bench.techdocs.build import build
from spanqa.settings import Settings

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def unseen_questions(path: Path, count: int) -> list[str]:
    examples = load_squad(path)
    seen = {e.id for e in random.Random(0).sample(examples, min(1000, len(examples)))}
    rest = [e for e in examples if e.id not in seen]
    return [e.question for e in random.Random(1).sample(rest, min(count, len(rest)))]


def routed_away_by(router, questions: list[str]) -> list[tuple[str, str]]:
    """(question, label) for each question `router` sends somewhere other than the documents or the fallback."""
    assistant = Assistant(router=router)
    return [(question, intent.label) for question, intent in zip(questions, router.classify_many(questions),
                                                                 strict=True)
            if assistant.route_for(intent) not in ("documents", "fallback")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--router", type=Path, help="router directory (default: the default router)")
    args = parser.parse_args()
    router = load_router(args.router or router_location(Settings.from_env()))
    sets = {"technical set": [qa["question"] for article in build()["data"] for p in article["paragraphs"]
                              for qa in p["qas"]],
            "new_wiki (unseen)": unseen_questions(SHARED / "squadshifts" / "new_wiki_v1.0.json", 1000),
            "COVID-QA (unseen)": unseen_questions(SHARED / "covid-qa" / "covid_qa_200423.json", 380)}
    for name, questions in sets.items():
        misses = routed_away_by(router, questions)
        print(f"{name}: {len(misses)}/{len(questions)} routed away ({100 * len(misses) / len(questions):.1f} %)")
        for question, label in misses[:10]:
            print(f"    {label:14s} {question}")


if __name__ == "__main__":
    main()
