"""Answers on technical text: code spans quoted whole, candidates ranked across passages, a collection's own
calibration (`spanqa calibrate`) applied by the engine, and thumbs-down on a routed reply turned into routing data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spanqa.plugin.doors.cli import main as cli
from spanqa.plugin.engine.answer_type import AnswerTypes, span_shape
from spanqa.plugin.engine.assistant import Assistant
from spanqa.plugin.engine.calibration import calibrate_collection, load_labels, routing_corrections
from spanqa.plugin.engine.defaults import add_routing_feedback, router_fingerprint, routing_feedback_path
from spanqa.plugin.engine.ranking import (
    CALIBRATION_SETTING,
    FEATURES,
    AnswerRanker,
    LogisticModel,
    ScoreCalibration,
    candidate_features,
)
from spanqa.plugin.engine.reader import Answer
from spanqa.plugin.engine.spans import snap_span, unit_spans
from spanqa.retriever import LocalCollection
from spanqa.retriever.records import Feedback, Hit, Passage

from spanqa.errors import DataFileError, InputError, ModelLoadError

TEXT = ("Pass ``action='store_true'`` for an on/off switch. mkdir raises FileExistsError when the folder exists; "
        "call psutil.boot_time() or run pytest --disable-socket. A well-known war lasted 1990-1995.")


@pytest.mark.parametrize(("cut", "whole"), [
    ("store_true", "action='store_true'"),  # a piece of an inline code segment → the segment
    ("FileExists", "FileExistsError"),  # a sub-word cut → the word
    ("boot_time", "psutil.boot_time()"),  # an identifier path with its call
    ("disable-socket", "--disable-socket"),  # a flag
    ("well", "well"),  # a hyphenated word is not code: left alone
    ("1990", "1990"),
    ("``action", "action='store_true'"),  # dangling backticks dropped
    ("FileExistsError when", "FileExistsError when"),
])
def test_code_spans_are_quoted_whole(cut, whole):
    start = TEXT.index(cut)
    s, e = snap_span(TEXT, start, start + len(cut))
    assert TEXT[s:e] == whole


CODE = ("Open it with ``open(path, newline='')`` first.\n\n```bash\n$ pytest --timeout=300\n```\n\n"
        ">>> orjson.dumps(data, option=orjson.OPT_NAIVE_UTC)\n"
        "Traceback (most recent call last):\n  File \"run.py\", line 3, in <module>\n"
        "subprocess.CalledProcessError: Command 'ls' returned non-zero exit status 2.\n\n"
        "Methods\n=======\n\nthread\n------\n\nThis is the surest method.\n")


@pytest.mark.parametrize(("cut", "whole"), [
    ("newline='", "open(path, newline='')"),  # a literal cut after its opening quote → the whole segment
    ("pytest --timeout=300\n```", "pytest --timeout=300"),  # a code fence after a command is not part of it
    ("$ pytest --timeout", "pytest --timeout=300"),  # nor is the shell prompt before it
    ("orjson.dumps(data, option", "orjson.dumps(data, option=orjson.OPT_NAIVE_UTC)"),  # a call's arguments closed
    ("Traceback (most recent call last):\n  File \"run.py\", line 3, in <module>\nsubprocess.CalledPr",
     "subprocess.CalledProcessError"),  # a traceback's frames are not the exception asked for
    ("thread\n------\n\nThis is the surest", "thread"),  # a span never runs across a heading's underline
    ("=======\n\nthread", "thread"),  # nor starts on one
])
def test_code_boundaries_never_cut_a_unit(cut, whole):
    start = CODE.index(cut)
    s, e = snap_span(CODE, start, start + len(cut))
    assert CODE[s:e] == whole


@pytest.mark.parametrize(("text", "shape"), [
    ("PYTEST_TIMEOUT", "identifier"), ("os.path.join", "dotted"), ("psutil.boot_time()", "call"),
    ("--disable-socket", "option"), ("max_tries=8", "option"), ("pip install --no-binary xxhash xxhash", "command"),
    ("newline=''", "option"), ("'utf-8'", "literal"), ("``None``", "literal"), ("30 seconds", "number"),
    ("0.4.0", "version"), ("Grant Jenks", "name"), ("a warning message", "phrase"),
    ("By default the plugin will not time out any tests.", "sentence"),
])
def test_span_shapes(text, shape):
    assert span_shape(text) == shape


def test_shipped_answer_types_know_what_a_question_asks_for():
    types = AnswerTypes.load()
    assert max(types.probabilities("How many seconds is the default timeout?").items(), key=lambda kv: kv[1])[0] \
        == "number"
    asked = types.probabilities("How do I install it with pip?")
    assert asked["command"] > asked["name"]


def test_units_offer_the_name_in_a_sentence_and_the_sentence_of_a_fragment():
    text = "Threadpoolctl helps. Call `threadpool_info()` to get a list of dicts describing the pools. Next one."
    start = text.index("Call")
    units = [text[s:e] for s, e in unit_spans(text, start, text.index(" to get") + 7)]
    assert "threadpool_info()" in units
    start = text.index("a list of dicts")
    assert "Call `threadpool_info()` to get a list of dicts describing the pools." in \
        [text[s:e] for s, e in unit_spans(text, start, start + len("a list of dicts"))]


def _answer(text: str, passage: Passage, margin: float) -> Answer:
    start = passage.text.index(text)
    return Answer(text, 0.5, margin, passage.id, start, start + len(text), start, start + len(text), "d", "s")


def test_features_see_agreement_across_passages_and_answer_type():
    one = Passage("d", "a.md", "Set the PYTEST_TIMEOUT variable. The default is 300.", 0, 51, id=1)
    two = Passage("d", "b.md", "Use PYTEST_TIMEOUT for a global limit of the suite.", 0, 51, id=2)
    hits = [Hit(one, 0.03, 0.6, 3.0, 1, 1), Hit(two, 0.02, 0.5, 2.0, 2, 2)]
    answers = [_answer("300", one, 3.0), _answer("PYTEST_TIMEOUT", one, 2.0), _answer("PYTEST_TIMEOUT", two, 1.5)]
    rows = candidate_features("Which environment variable sets a global timeout?", answers, hits)
    column = {name: rows[:, i] for i, name in enumerate(FEATURES)}
    assert rows.shape == (3, len(FEATURES))
    assert column["agreement_passages"][1] > 0 and column["agreement_passages"][0] == 0
    assert column["identifier_x_identifier"].tolist() == [0.0, 1.0, 1.0]
    assert column["margin_gap"][0] == 0 and column["margin_gap"][2] == -1.5
    assert column["hit_rank_inv"].tolist() == [1.0, 1.0, 0.5]


def test_shipped_ranker_loads_and_refuses_other_features(tmp_path):
    ranker = AnswerRanker.load()
    assert len(ranker.prose.weights) == len(FEATURES)
    data = ranker.to_json()
    data["features"] = data["features"][:-1]
    (tmp_path / "old.json").write_text(json.dumps(data))
    with pytest.raises(ModelLoadError, match="other features"):
        AnswerRanker.load(tmp_path / "old.json")


def test_ranker_candidates_are_never_reused_for_another_reader(tmp_path):
    """The candidate cache of `spanqa train-ranker` is keyed by the reader: retraining the reader in the same
    folder, or reading in another precision, collects new candidates instead of fitting on stale ones."""
    from types import SimpleNamespace

    from spanqa.plugin.lab.ranker_training import reader_identity

    (tmp_path / "model.safetensors").write_bytes(b"version 1")
    reader = SimpleNamespace(model_name=str(tmp_path), precision="bf16")
    before = reader_identity(reader)
    (tmp_path / "model.safetensors").write_bytes(b"version 2, retrained")
    assert reader_identity(reader) != before
    assert reader_identity(SimpleNamespace(model_name=str(tmp_path), precision="fp32")) != reader_identity(reader)


def test_ranker_orders_by_probability():
    ranker = AnswerRanker(LogisticModel(mean=(0.0,) * len(FEATURES), scale=(1.0,) * len(FEATURES),
                                        weights=tuple(1.0 if f == "identifier_x_identifier" else 0.0
                                                      for f in FEATURES), bias=0.0))
    passage = Passage("d", "a.md", "It is 300 by default; PYTEST_TIMEOUT overrides it.", 0, 50, id=1)
    hits = [Hit(passage, 0.03, 0.6, 3.0, 1, 1)]
    ranked = ranker.rank("Which environment variable overrides it?",
                         [_answer("300", passage, 5.0), _answer("PYTEST_TIMEOUT", passage, 1.0)], hits)
    assert [a.text for a in ranked] == ["PYTEST_TIMEOUT", "300"]
    assert ranked[0].score == pytest.approx(1 / (1 + np.exp(-1)))


def test_each_reader_gets_its_own_scale_and_overlapping_units_are_shown_once():
    names_first = LogisticModel((0.0,) * len(FEATURES), (1.0,) * len(FEATURES),
                                tuple(1.0 if f == "identifier" else 0.0 for f in FEATURES), 0.0)
    ranker = AnswerRanker(names_first, names_first, reader_calibration={"technical": ScoreCalibration(1.0, -2.0)})
    passage = Passage("d", "a.md", "Set PYTEST_TIMEOUT to change it.", 0, 32, id=1)
    hits = [Hit(passage, 0.03, 0.6, 3.0, 1, 1)]
    question, sentence = "Which variable?", [_answer("Set PYTEST_TIMEOUT to change it", passage, 1.0)]
    assert [a.text for a in ranker.rank(question, sentence, hits)] == ["Set PYTEST_TIMEOUT to change it"]  # prose
    general = ranker.rank(question, sentence, hits, technical=True)
    technical = ranker.rank(question, sentence, hits, reader="technical", technical=True)
    assert [a.text for a in general] == ["PYTEST_TIMEOUT"]  # the unit, not also the sentence that holds it
    assert general[0].unit and general[0].document_start == passage.text.index("PYTEST_TIMEOUT")
    assert technical[0].score == pytest.approx(ScoreCalibration(1.0, -2.0).probability(general[0].score))
    data = json.loads(json.dumps(ranker.to_json()))
    assert data["reader_calibration"]["technical"]["b"] == -2.0


def test_a_ranker_with_a_technical_model_round_trips(tmp_path):
    """What `spanqa train-ranker --technical-data … --technical-calibration …` writes loads back whole, with the
    answer types its features need."""
    model = LogisticModel(tuple(float(i) for i in range(len(FEATURES))), (1.0,) * len(FEATURES),
                          (0.5,) * len(FEATURES), -1.0, "test")
    AnswerRanker(model, model, reader_calibration={"technical": ScoreCalibration(1.0, 0.6)}).save(tmp_path / "r.json")
    loaded = AnswerRanker.load(tmp_path / "r.json")
    assert loaded.technical == model and loaded.prose == model and loaded.answer_types is not None
    assert loaded.reader_calibration["technical"].b == 0.6
    assert AnswerRanker.load().answer_types is None  # the shipped ranker has no technical model (README, issue 29)


def test_score_calibration_round_trips():
    calibration = ScoreCalibration(0.7, -0.4)
    for p in (0.05, 0.3, 0.5, 0.9):
        assert calibration.inverse(calibration.probability(p)) == pytest.approx(p, abs=1e-9)
    assert ScoreCalibration().probability(0.42) == 0.42
    assert ScoreCalibration.from_json(calibration.to_json()) == calibration


def test_labels_files_are_read_or_refused_by_line(tmp_path):
    good = tmp_path / "labels.jsonl"
    good.write_text('{"question": "How long?", "answers": ["24 months"]}\n\n{"question": "Who?", "answers": []}\n')
    assert [(q.question, q.answers) for q in load_labels(good)] == [("How long?", ("24 months",)), ("Who?", ())]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok", "answers": []}\n{"answers": []}\n')
    with pytest.raises(DataFileError, match="line 2"):
        load_labels(bad)
    with pytest.raises(DataFileError, match="not found"):
        load_labels(tmp_path / "missing.jsonl")


def test_thumbs_down_on_a_routed_reply_becomes_routing_data(tmp_path, embedder):
    collection = LocalCollection(tmp_path / "c", embedder=embedder)
    collection.add_feedback(Feedback("minimum system requirements", "Hello!", "", 0, route="reply"))
    collection.add_feedback(Feedback("hi", "Hello!", "", 1, route="reply"))
    collection.add_feedback(Feedback("When?", "1889", "t.txt", 0, 3, 0.8, route="documents"))
    assert routing_corrections(collection) == ["minimum system requirements"]
    home = tmp_path / "home"
    before = router_fingerprint(home)
    assert add_routing_feedback(routing_corrections(collection), home) == 1
    assert add_routing_feedback(routing_corrections(collection), home) == 0  # recorded once
    row = json.loads(routing_feedback_path(home).read_text())
    assert row == {"text": "minimum system requirements", "label": "document_question"}
    assert router_fingerprint(home) != before  # the refitted router no longer matches: `spanqa setup` fits it again


@pytest.mark.integration
def test_calibrate_stores_a_fit_every_assistant_applies(tmp_path, embedder, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    facts = {f"item{i}.txt": f"Part {i} of the pump costs {10 + i} euros and weighs {i + 2} kilograms."
             for i in range(12)}
    for name, text in facts.items():
        (folder / name).write_text(text)
    collection = LocalCollection(tmp_path / "c", embedder=embedder)
    collection.ingest([folder])
    labels = [{"question": f"How much does part {i} of the pump cost?", "answers": [f"{10 + i} euros"]}
              for i in range(12)]
    labels += [{"question": f"Who designed part {i}?", "answers": []} for i in range(12)]
    path = tmp_path / "labels.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in labels))
    assistant = Assistant(collection)
    before = assistant.answer("How much does part 3 of the pump cost?").answers[0].score
    with pytest.raises(InputError, match="at least 20"):
        calibrate_collection(assistant, load_labels(path)[:5], save=False)
    assert cli(["calibrate", "--collection", str(tmp_path / "c"), "--labels", str(path), "--json"]) == 0
    stored = LocalCollection(tmp_path / "c", embedder=embedder).get_setting(CALIBRATION_SETTING)
    calibration = ScoreCalibration.from_json(stored)
    assert calibration != ScoreCalibration() and "24 labelled" in calibration.fitted_on
    after = Assistant(LocalCollection(tmp_path / "c", embedder=embedder)).answer(
        "How much does part 3 of the pump cost?").answers[0].score
    assert after == pytest.approx(calibration.probability(before), abs=1e-6)
