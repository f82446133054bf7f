"""The technical training questions: every answer is a verbatim span of its page, of the kind the question asks."""

import json
import random
import textwrap

from spanqa.plugin.lab import tech_synth
from spanqa.plugin.lab.tech_synth import Page, questions_for_page


def _questions(page: Page) -> dict[str, str]:
    return {q.question: q.answer for q in questions_for_page(page, random.Random(0))}


def _api_page(source: str) -> Page:
    import ast

    module = ast.parse(textwrap.dedent(source))
    node = module.body[0]
    doc = ast.get_docstring(node)
    signature, defaults = tech_synth._signature(node)
    return Page("pkg", node.name, "function", f"{node.name}({signature})\n\n{doc}", defaults)


FETCH = '''
def fetch(url, timeout=30, verify=True):
    """Download a resource and return its body.

    Parameters
    ----------
    url : str
        The address of the resource.
    timeout : float
        Maximum number of seconds to wait for the server.

    Raises
    ------
    ConnectionError
        If the server cannot be reached.
    """
'''


def test_parameter_default_summary_and_exception_questions_quote_the_page():
    page = _api_page(FETCH)
    questions = questions_for_page(page, random.Random(0))
    answers = {q.answer for q in questions}
    assert {"url", "timeout", "30", "fetch", "ConnectionError"} <= answers
    assert "Download a resource and return its body" in answers
    for q in questions:
        assert page.text[q.start : q.start + len(q.answer)] == q.answer
        assert q.question.endswith("?") and q.answer not in {"self", "Parameters", "Raises"}


def test_the_exception_question_carries_its_condition():
    asked = [q for q, a in _questions(_api_page(FETCH)).items() if a == "ConnectionError"]
    assert asked and "if the server cannot be reached" in asked[0]


def test_google_and_sphinx_parameters_are_found():
    google = _api_page('''
    def connect(host, retries=3):
        """Open a connection to the database.

        Args:
            host (str): The name of the machine to connect to.
            retries (int): Number of attempts before giving up.
        """
    ''')
    sphinx = _api_page('''
    def render(template):
        """Render a template into a string of HTML.

        :param template: the name of the template file to render
        """
    ''')
    assert {"host", "retries", "3"} <= set(_questions(google).values())
    assert "template" in _questions(sphinx).values()


def test_command_line_options_become_flag_questions():
    page = Page("tool", "cli", "option", "usage: cli [options]\n\noptions:\n"
                "  --dry-run                   Show what would change without writing anything\n"
                "  --jobs, -j                  Number of worker processes\n")
    answers = _questions(page)
    assert set(answers.values()) == {"--dry-run", "--jobs"}
    assert any("show what would change" in q for q in answers)


def test_readme_instruction_above_a_code_line_asks_how_to():
    page = Page("tool", "tool", "readme", "Installation\n============\n\n"
                "To install the latest release, run:\n\n    pip install tool\n\nThat is all.\n")
    assert list(_questions(page).items()) and set(_questions(page).values()) == {"pip install tool"}


def test_pages_without_documentation_structure_give_no_questions():
    page = Page("pkg", "x", "function", "x()\n\nSee also the module docs; x is kept for compatibility.")
    assert questions_for_page(page, random.Random(0)) == []


def test_the_benchmark_packages_stay_out_of_the_training_set(tmp_path, monkeypatch):
    from importlib import metadata

    installed = [metadata.distribution(name) for name in ("pytest-timeout", "pluggy", "iniconfig")]
    monkeypatch.setattr(tech_synth.metadata, "distributions", lambda: installed)
    sources = tmp_path / "sources"
    sources.mkdir()
    (sources / "pytest-timeout.txt").write_text("held out")
    out = tmp_path / "train.json"
    tech_synth.main(["--out", str(out), "--exclude-sources", str(sources), "--per-package", "20"])
    articles = json.loads(out.read_text())["data"]
    assert {a["title"] for a in articles} == {"synth:pluggy", "synth:iniconfig"}
    for paragraph in (p for a in articles for p in a["paragraphs"]):
        for qa in paragraph["qas"]:
            answer = qa["answers"][0]
            assert paragraph["context"][answer["answer_start"]:][: len(answer["text"])] == answer["text"]
