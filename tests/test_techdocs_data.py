"""The technical question sets: every answer is a verbatim span of its README, the development set never shares a
README with the training questions, and training data cut into passages keeps every answer verbatim."""

from pathlib import Path

import pytest
from spanqa.plugin.lab.tech_mix import passage_article
from spanqa.retriever.chunking import Chunker, ChunkingSettings
from spanqa.retriever.records import Document

from bench.techdocs.build import build

TECHDOCS = Path(__file__).resolve().parent.parent / "bench" / "techdocs"


def _questions(dataset: dict) -> list[dict]:
    return [qa for article in dataset["data"] for p in article["paragraphs"] for qa in p["qas"]]


@pytest.mark.parametrize("name", ["questions.tsv", "train.tsv"])
def test_every_answer_is_a_verbatim_span_of_its_readme(name):
    dataset = build(TECHDOCS / name)  # raises on an answer that is not in its source
    for article in dataset["data"]:
        context = article["paragraphs"][0]["context"]
        for qa in article["paragraphs"][0]["qas"]:
            for a in qa["answers"]:
                assert context[a["answer_start"] : a["answer_start"] + len(a["text"])] == a["text"]


def test_the_development_set_asks_about_readmes_no_training_question_sees():
    dev, train = build(TECHDOCS / "questions.tsv"), build(TECHDOCS / "train.tsv")
    assert not {a["title"] for a in dev["data"]} & {a["title"] for a in train["data"]}
    questions = _questions(dev)
    assert len(questions) >= 100 and sum(qa["is_impossible"] for qa in questions) >= 15


@pytest.fixture(scope="module")
def chunker(tokenizer):
    return Chunker(tokenizer, ChunkingSettings(max_tokens=40, overlap_tokens=0))


def _article(context: str, qas: list[dict]) -> dict:
    return {"title": "pkg", "paragraphs": [{"context": context, "qas": qas}]}


README = ("Install it with pip install widget. " * 3 + "Widgets are configured in the widget.toml file. "
          + "The default colour is blue. " * 4 + "Call widget.spin(speed=3) to spin a widget.")


def test_questions_move_to_the_passage_holding_their_answer(chunker):
    answer = "widget.spin(speed=3)"
    article = _article(README, [{"id": "q1", "question": "How do I spin it?",
                                 "answers": [{"text": answer, "answer_start": README.index(answer)}]}])
    cut, dropped = passage_article(article, chunker)
    assert dropped == 0 and len(cut["paragraphs"]) == 1
    (paragraph,) = cut["paragraphs"]
    assert len(paragraph["context"]) < len(README)
    (moved,) = paragraph["qas"][0]["answers"]
    assert paragraph["context"][moved["answer_start"] : moved["answer_start"] + len(answer)] == answer


def test_an_unanswerable_question_reads_the_passage_sharing_its_words(chunker):
    article = _article(README, [{"id": "q2", "question": "Which file configures widgets in toml?", "answers": []}])
    cut, _ = passage_article(article, chunker)
    (paragraph,) = cut["paragraphs"]
    assert "widget.toml" in paragraph["context"] and paragraph["qas"][0]["answers"] == []


def test_an_answer_across_a_passage_boundary_is_dropped_not_mislabelled(chunker):
    passages = chunker.split(Document(source="pkg", text=README, title="pkg"))
    boundary = passages[0].end
    crossing = README[boundary - 10 : boundary + 10]
    article = _article(README, [{"id": "q3", "question": "What crosses?",
                                 "answers": [{"text": crossing, "answer_start": boundary - 10}]}])
    cut, dropped = passage_article(article, chunker)
    assert dropped == 1 and cut["paragraphs"] == []
