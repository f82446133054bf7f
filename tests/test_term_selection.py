"""The learned term selector that reads follow-ups (plugin/engine/term_selection.py): it ships in the package, runs
on the CPU without the other models, refuses a file it cannot use, and is retrained by one command that gives the
same model for the same data and seed. How well it reads follow-ups: test_conversation.py, and on the manuals
`python -m bench manuals`."""

from __future__ import annotations

import json
import random

import pytest
from spanqa.plugin.doors.cli import main
from spanqa.plugin.engine.term_selection import Context, TermSelector
from spanqa.plugin.lab.term_selector_training import make_follow_up

from spanqa.errors import ModelLoadError
from spanqa.settings import SHIPPED_TERM_SELECTOR, Settings


def test_the_shipped_selector_loads_from_the_package_and_reads_on_the_cpu():
    selector = TermSelector.load(Settings().term_selector_path)
    assert Settings().term_selector_path == SHIPPED_TERM_SELECTOR and "conversations made from" in selector.trained_on
    context = Context(("How do I make a shallow clone of a repository?",), "--depth")
    assert {"depth", "clone"} <= set(selector.select("and how do I deepen it later?", context))
    assert selector.select("What is the default port of PostgreSQL?", context) == []  # a new topic


@pytest.mark.parametrize("damage", ["missing", "not json", "other features"])
def test_a_selector_file_that_cannot_be_used_is_refused_by_name(tmp_path, damage):
    path = tmp_path / "selector.json"
    if damage == "not json":
        path.write_text("{")
    elif damage == "other features":
        data = json.loads(SHIPPED_TERM_SELECTOR.read_text())
        path.write_text(json.dumps({**data, "features": data["features"][:-1]}))
    with pytest.raises(ModelLoadError, match="term selector" if damage != "other features" else "other features"):
        TermSelector.load(path)


def test_a_follow_up_is_made_by_taking_its_topic_away():
    made = make_follow_up("When did Tower Bridge open to traffic?", {"tower", "bridge"}, random.Random(1))
    assert made is not None
    text, removed = made
    assert removed == {"tower", "bridge"} and "tower" not in text.lower()
    assert make_follow_up("What is the capital of France?", {"tower"}, random.Random(1)) is None


def _tiny_squad(path, paragraphs: int = 40):
    """A SQuAD-format file whose paragraphs each hold three questions about one made-up machine."""
    rng = random.Random(0)
    data = []
    for i in range(paragraphs):
        name = f"Machine{i}"
        part = rng.choice(["valve", "motor", "filter", "pump"])
        context = f"The {name} has a {part}. The {name} was built in {1900 + i}. Its {part} lasts {i + 2} years."
        qas = [{"id": f"{i}-{k}", "question": q, "answers": [{"text": a, "answer_start": context.index(a)}]}
               for k, (q, a) in enumerate([(f"What part does the {name} have?", part),
                                           (f"When was the {name} built?", str(1900 + i)),
                                           (f"How long does the {part} of the {name} last?", f"{i + 2} years")])]
        data.append({"title": name, "paragraphs": [{"context": context, "qas": qas}]})
    path.write_text(json.dumps({"data": data}))
    return path


def test_training_is_reproducible_from_one_command(tmp_path, capsys):
    squad = _tiny_squad(tmp_path / "squad.json")
    outputs = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in outputs:
        assert main(["train-term-selector", "--squad", str(squad), "--conversations", "200", "--seed", "3",
                     "--out", str(out)]) == 0
    assert outputs[0].read_bytes() == outputs[1].read_bytes()
    report = capsys.readouterr().out
    assert "gate_threshold" in report and "held_out_term_recall" in report
    trained = TermSelector.load(outputs[0])
    assert trained.trained_on.endswith("seed 3") and trained.idf


def test_training_without_its_data_says_so(tmp_path, capsys):
    assert main(["train-term-selector", "--squad", str(tmp_path / "nowhere.json"),
                 "--out", str(tmp_path / "x.json")]) != 0
    assert "No SQuAD file at" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
