"""The intent classifier: learning, persistence, calibration, out-of-scope threshold, bad data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from spanqa.plugin.engine.router import EmbeddingRouter, IntentClassifier, load_router, softmax
from spanqa.plugin.lab.router_eval import expected_calibration_error
from spanqa.plugin.lab.router_training import (
    IntentTrainConfig,
    choose_threshold,
    fit_temperature,
    load_labelled,
    stratified_split,
    train_intent_classifier,
)

from spanqa.errors import DataFileError, ModelLoadError
from spanqa.settings import Settings

TINY = {
    "weather": ["will it rain today", "is it sunny tomorrow", "what's the forecast", "how cold is it outside",
                "do I need an umbrella", "weather this weekend", "is it going to snow", "temperature right now",
                "will it be windy", "forecast for Monday"],
    "music": ["play some jazz", "put on my playlist", "play a song by Adele", "next track please", "turn the music up",
              "play rock music", "shuffle my songs", "pause the music", "play the radio", "skip this song"],
    "food": ["order a pizza", "find a sushi place", "I want a burger", "book a table for dinner", "what's for lunch",
             "deliver some noodles", "recommend a restaurant", "order thai food", "get me a salad", "cheap tacos near me"],
}


def write_jsonl(path, data: dict[str, list[str]]):
    path.write_text("\n".join(json.dumps({"text": t, "label": lab}) for lab, ts in data.items() for t in ts))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("intent")
    data = write_jsonl(folder / "train.jsonl", TINY)
    summary = train_intent_classifier(
        IntentTrainConfig(data=str(data), out=str(folder / "model"), val_fraction=0.2, epochs=8, patience=3,
                          batch_size=8, lr=2e-4), progress=False)
    return folder / "model", summary


@pytest.mark.integration
def test_training_learns_a_tiny_set(tiny_model):
    directory, summary = tiny_model
    classifier = IntentClassifier(directory)
    predictions = classifier.classify_many(["is it raining in Paris", "play something by the Beatles",
                                            "order me a curry"])
    assert [p.label for p in predictions] == ["weather", "music", "food"]
    assert summary["validation"]["accuracy"] >= 80
    alternatives = predictions[0].alternatives
    assert len(alternatives) == 2 and all(0 <= c <= 1 for _, c in alternatives)


@pytest.mark.integration
def test_save_load_round_trip_is_identical(tiny_model):
    directory, _ = tiny_model
    texts = ["rain tomorrow?", "louder music", "pizza now"]
    first = IntentClassifier(directory).logits(texts)
    second = IntentClassifier(directory).logits(texts)
    np.testing.assert_array_equal(first, second)
    assert IntentClassifier(directory).labels == ["food", "music", "weather"]


def test_temperature_scaling_lowers_ece_on_an_overconfident_model():
    rng = np.random.default_rng(0)
    n, k = 2000, 5
    targets = rng.integers(0, k, n)
    logits = rng.normal(0, 1, (n, k))
    logits[np.arange(n), targets] += 1.0  # right about 60 % of the time…
    logits *= 6.0  # …but with near-certain softmax probabilities
    correct = logits.argmax(1) == targets
    before = expected_calibration_error(softmax(logits).max(1), correct)
    temperature = fit_temperature(logits, targets)
    after = expected_calibration_error(softmax(logits, temperature).max(1), correct)
    assert temperature > 2 and after < before / 3


def test_threshold_sends_unseen_out_of_domain_text_to_out_of_scope():
    # in-scope validation messages are confident; out-of-scope ones are not
    confidences = np.array([0.95, 0.9, 0.92, 0.88, 0.97, 0.4, 0.35, 0.5])
    correct = np.array([True, True, True, True, True, False, False, False])
    is_oos = np.array([False] * 5 + [True] * 3)
    threshold = choose_threshold(confidences, correct, is_oos, tolerance=1.0)
    assert 0.5 < threshold <= 0.88
    # without out-of-scope validation data: the 5th percentile of confidence
    assert choose_threshold(confidences[:5], correct[:5], None, 1.0) == pytest.approx(np.quantile(confidences[:5], 0.05))


@pytest.mark.integration
def test_default_router_routes_and_flags_unseen_text():
    from spanqa.plugin.engine.defaults import SHIPPED_ROUTER, router_location

    assert router_location(Settings.from_env()) == SHIPPED_ROUTER  # shipped: nothing to train on a fresh install
    classifier = load_router(router_location(Settings.from_env()))
    got = {t: classifier.classify(t) for t in ["hello there!", "thanks a lot", "What does the lease say about pets?",
                                               "set an alarm for 6 am", "bye for now"]}
    assert [i.label for i in got.values()] == ["greeting", "thanks", "document_question", "out_of_scope", "goodbye"]
    assert got["set an alarm for 6 am"].out_of_scope


def test_stratified_split_keeps_every_label():
    labels = ["a"] * 10 + ["b"] * 4 + ["c"] * 2
    train, val = stratified_split(labels, 0.25, seed=1)
    assert {labels[i] for i in val} == {"a", "b", "c"} and not set(train) & set(val)


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("", ".jsonl", "holds no examples"),
        ('{"text": "hi"}\n{"text": "yo"}', ".jsonl", "lacks the column"),
        ('{"text": "hi", "label": "greet"}\n{"text": "yo", "label": "greet"}', ".jsonl", "1 distinct label"),
        ("text,category\nhi,greet\n", ".csv", "lacks the column"),
        ("not json at all", ".jsonl", "could not be parsed"),
    ],
)
def test_bad_data_files_give_clear_errors(tmp_path, content, suffix, message):
    path = tmp_path / f"data{suffix}"
    path.write_text(content)
    with pytest.raises(DataFileError, match=message):
        load_labelled(path)


def test_missing_data_file(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        load_labelled(tmp_path / "nope.csv")


def test_csv_is_read(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('text,label\n"hello, you",greet\nbye,leave\n')
    assert load_labelled(path) == (["hello, you", "bye"], ["greet", "leave"])


def test_the_shipped_router_is_the_fit_of_todays_routing_data():
    import hashlib

    from spanqa.plugin.engine.defaults import ROUTING_DATA, SHIPPED_ROUTER

    summary = json.loads((SHIPPED_ROUTER / "training_summary.json").read_text())
    assert summary["data_sha256"] == hashlib.sha256(ROUTING_DATA.read_bytes()).hexdigest(), (
        "plugin/engine/data/intents.jsonl changed: refit with `spanqa train-intent "
        "plugin/engine/data/intents.jsonl --head --val-fraction 0.2 --out spanqa/models/router`")


@pytest.mark.integration
def test_a_routed_question_is_embedded_once_for_routing_and_search(tmp_path, embedder, monkeypatch):
    from spanqa.plugin.engine.assistant import Assistant
    from spanqa.plugin.engine.defaults import SHIPPED_ROUTER
    from spanqa.retriever import LocalCollection
    from spanqa.retriever.embedding import Embedder

    collection = LocalCollection(tmp_path / "c", embedder=embedder)
    collection.ingest_bytes([("pump.txt", b"The pump warranty lasts 24 months from delivery.")])
    encoded: list[list[str]] = []
    original = Embedder.encode
    monkeypatch.setattr(Embedder, "encode", lambda self, texts, progress=False: (
        encoded.append([texts] if isinstance(texts, str) else list(texts)), original(self, texts, progress))[1])
    assistant = Assistant(collection, router=EmbeddingRouter(SHIPPED_ROUTER, embedder=embedder))
    response = assistant.respond("How long does the pump warranty last, in months?")
    assert response.route == "documents" and "24" in response.answers[0].text
    assert encoded == [["How long does the pump warranty last, in months?"]]


def test_a_head_fitted_on_other_vectors_is_refused(tmp_path):
    import shutil

    from spanqa.plugin.engine.defaults import SHIPPED_ROUTER

    shutil.copytree(SHIPPED_ROUTER, tmp_path / "router")
    head = json.loads((tmp_path / "router" / "head.json").read_text())
    (tmp_path / "router" / "head.json").write_text(json.dumps({**head, "embedder": "another/model"}))
    with pytest.raises(ModelLoadError, match="fitted on another/model vectors"):
        load_router(tmp_path / "router").classify("hello")


@pytest.mark.integration
def test_routing_corrections_refit_the_shipped_head(tmp_path):
    from spanqa.plugin.engine.defaults import SHIPPED_ROUTER, add_routing_feedback, router_location
    from spanqa.plugin.engine.router_fitting import refit_default_router

    settings = Settings(home=str(tmp_path / "home"))
    home = settings.home_path
    # What a user corrects with a thumbs-down: a document's jargon that reads like a greeting to the router.
    message = "good morning routine"
    assert load_router(SHIPPED_ROUTER).classify(message).label == "greeting"
    add_routing_feedback([message, "good morning checklist", "morning routine steps", "the good morning procedure"],
                         home)
    assert router_location(settings) == SHIPPED_ROUTER  # answering never trains: the shipped router until refitted
    refitted = refit_default_router(home)
    assert refitted != SHIPPED_ROUTER and (refitted / "head.json").is_file()
    assert router_location(settings) == refitted
    stamp = (refitted / "head.json").stat().st_mtime_ns
    assert refit_default_router(home) == refitted and (refitted / "head.json").stat().st_mtime_ns == stamp  # not again
    assert load_router(refitted).classify(message).label == "document_question"
