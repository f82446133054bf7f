"""Which reader reads a question: technical documentation is told from prose by its code-like tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from spanqa.plugin.engine.text_kind import CODE_DENSITY, code_density, looks_technical

from spanqa.errors import InputError
from spanqa.settings import Settings

SOURCES = Path(__file__).resolve().parents[1] / "bench" / "techdocs" / "sources"

PROSE = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall.",
    "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough.",
    "After the election, the new council met in the town hall (built in 1902) and chose a mayor.",
]
TECHNICAL = [
    'Rotate the file once it is too big: `logger.add("file_1.log", rotation="500 MB")`.',
    "Run `pytest --timeout=300` to stop tests that hang; the default method is signal.",
    ">>> import distro\n>>> distro.id()\n'ubuntu'",
]


@pytest.mark.parametrize("text", PROSE)
def test_prose_has_no_code_density(text):
    assert code_density(text) < CODE_DENSITY


@pytest.mark.parametrize("text", TECHNICAL)
def test_code_spans_make_a_passage_technical(text):
    assert code_density(text) >= CODE_DENSITY


def test_the_majority_of_a_questions_passages_decides():
    assert looks_technical(TECHNICAL)
    assert looks_technical(TECHNICAL[:2] + PROSE[:1])
    assert not looks_technical(TECHNICAL[:1] + PROSE[:2])
    assert not looks_technical(PROSE)
    assert not looks_technical([])  # nothing read: the general reader


def test_passages_vote_by_their_relevance():
    """A prose question in a collection of manuals: its one relevant prose passage outweighs the code fillers."""
    assert not looks_technical(PROSE[:1] + TECHNICAL, [1.0, 0.2, 0.2, 0.2])
    assert looks_technical(PROSE[:1] + TECHNICAL, [0.4, 1.0, 1.0, 0.5])
    assert not looks_technical(TECHNICAL, [0.0, 0.0, 0.0])  # nothing related: the general reader


def test_real_readmes_read_as_technical_and_wikipedia_as_prose():
    """The measured separation the rule rests on, on the shipped READMEs of the technical set."""
    readmes = [p.read_text(encoding="utf-8") for p in sorted(SOURCES.glob("*.txt"))]
    assert readmes and all(code_density(text) >= CODE_DENSITY for text in readmes)


def test_reader_domain_is_validated_in_the_one_home_of_settings(monkeypatch):
    assert Settings().reader_domain == "auto"
    with pytest.raises(InputError, match="reader_domain must be one of auto, general, technical"):
        Settings(reader_domain="legal")
    monkeypatch.setenv("SPANQA_READER_DOMAIN", "general")
    assert Settings.from_env().reader_domain == "general"


def test_the_technical_reader_ships_inside_the_package():
    from spanqa.settings import SHIPPED_TECHNICAL_READER

    folder = SHIPPED_TECHNICAL_READER
    assert (folder / "model.safetensors").is_file() and (folder / "README.md").is_file()
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["BertForQuestionAnswering"]
