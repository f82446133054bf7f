"""The door-conformance suite: one table of cases, run through every door — the Python service, the CLI, an MCP
client, HTTP REST, the OpenAI-compatible route (with the openai client), the LangChain tools and the chat UI
(AppTest) — asserting the same verb, the same limits, the same JSON keys and the same error message at each, and
the HTTP status that goes with each error type.

A door joins by adding an adapter to DOORS: it turns a `Call` into what the door gives back, as an `Outcome`. A
door that cannot express a case (the UI has no top_k beyond its slider, the OpenAI route no retrieval mode) says
so with `None` and is checked for what it offers instead.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import CORPUS, write_corpus
from spanqa.plugin.doors.service import Service, error_json, http_status

from bench.pdf_pages import typeset_pdf
from spanqa.errors import SpanqaError
from spanqa.settings import Settings

pytestmark = pytest.mark.integration
APP = str(Path(__file__).resolve().parent.parent / "ui" / "app.py")
QUESTION = "What does pump error E-4712 mean?"
TOO_LONG = "why " * 501  # 2,004 characters: over the default max_question_chars of 2,000
UNSURE = "How long is the warranty on the pump motor?"  # the documents do not say: withheld
PDF_FACT = "The pump's spare impeller is stored in the blue cabinet beside the boiler room door."


@dataclass(frozen=True)
class Call:
    """One request, in the service's words: the operation and its arguments."""

    operation: str  # ask (routed), answer (unrouted), search, remove
    arguments: dict


@dataclass
class Outcome:
    """What a door gave back: the response JSON, or an error's message (and type and status where the door has
    them)."""

    data: dict | None = None
    message: str | None = None
    type: str | None = None
    status: int | None = None

    @property
    def failed(self) -> bool:
        return self.message is not None


def _service_outcome(run: Callable[[], dict]) -> Outcome:
    try:
        return Outcome(data=run())
    except SpanqaError as exc:
        return Outcome(message=str(exc), **{"type": error_json(exc)["type"], "status": http_status(exc)})


# --- the doors ------------------------------------------------------------------------------------------------

def python_door(env, call: Call) -> Outcome | None:
    return _service_outcome(lambda: env.service().call(call.operation, call.arguments).data)


def cli_door(env, call: Call) -> Outcome | None:
    from spanqa.plugin.doors.cli import main

    a = call.arguments
    options = {"top_k": "--top-k", "min_score": "--threshold", "mode": "--mode", "k": "-k"}
    flags = [part for key, flag in options.items() if key in a for part in (flag, str(a[key]))]
    argv = {"ask": ["ask", a.get("question", "")], "search": ["search", a.get("query", "")],
            "remove": ["docs", "remove", a.get("document_id", "")],
            "view": ["show", a.get("document_id", ""), "--span", f"{a.get('start')}:{a.get('end')}"],
            "page": ["show", a.get("document_id", ""), "--span", f"{a.get('start')}:{a.get('end')}", "--page",
                     str(a.get("page")), "--page-image", str(env.scratch / "page.png")]
            }.get(call.operation)
    if argv is None or "history" in a:
        return None  # the CLI's ask is routed (no unrouted verb); its conversations are `spanqa chat` (test_chat.py)
    code = main([*argv, "--collection", env.location, *flags, *(["--json"] if call.operation != "remove" else [])])
    out, err = env.capsys.readouterr()
    if code != 0:
        return Outcome(message=err.strip().split(": error: ", 1)[-1])
    if call.operation == "page":
        return Outcome(data={"boxes": json.loads(out)["page_image_boxes"], "png": (env.scratch / "page.png").read_bytes()})
    return Outcome(data=json.loads(out) if out.strip().startswith("{") else {})


def mcp_door(env, call: Call) -> Outcome | None:
    from mcp.shared.exceptions import McpError
    from mcp.shared.memory import create_connected_server_and_client_session
    from spanqa.plugin.doors.mcp_server import DOCUMENT_URI, build_mcp_server

    tool = {"answer": "document_qa", "search": "document_search"}.get(call.operation)
    if tool is None and call.operation not in ("remove", "view"):
        return None
    a = call.arguments
    uri = DOCUMENT_URI + a.get("document_id", "")
    if call.operation == "view":
        uri += f"/span/{a['start']}-{a['end']}"

    async def run() -> Outcome:
        async with create_connected_server_and_client_session(build_mcp_server(env.service())) as session:
            if tool is None:  # MCP reads documents and spans as resources; a missing one is the same NotFound
                try:
                    text = (await session.read_resource(uri)).contents[0].text
                except McpError as exc:
                    return Outcome(message=exc.error.message)
                return Outcome(data={"span": text.split("»", 1)[-1].split("«", 1)[0]} if "»" in text else {})
            result = await session.call_tool(tool, call.arguments)
            if result.isError:
                return Outcome(message=result.content[0].text)
            return Outcome(data=result.structuredContent)

    return asyncio.run(run())


def rest_door(env, call: Call) -> Outcome | None:
    client = env.http()
    if call.operation == "remove":
        response = client.delete(f"/v1/documents/{call.arguments['document_id']}")
    elif call.operation == "view":
        a = call.arguments
        response = client.get(f"/v1/documents/{a['document_id']}/view", params={"start": a["start"], "end": a["end"]})
        if response.status_code < 400:
            marked = re.search(r'<mark id="answer">(.*?)</mark>', response.text, re.S)
            return Outcome(data={"span": html.unescape(marked.group(1))})
    elif call.operation == "page":
        a = call.arguments
        response = client.get(f"/v1/documents/{a['document_id']}/pages/{a['page']}.png",
                              params={"start": a["start"], "end": a["end"]})
        if response.status_code < 400:
            return Outcome(data={"png": response.content})
    else:
        response = client.post(f"/v1/{call.operation}", json=call.arguments)
    if response.status_code >= 400:
        error = response.json()["error"]
        return Outcome(message=error["message"], type=error["type"], status=response.status_code)
    return Outcome(data=response.json() if response.content else {})


def openai_door(env, call: Call) -> Outcome | None:
    import openai

    history = call.arguments.get("history", [])
    if call.operation != "ask" or set(call.arguments) - {"question", "history"} or \
            not all(isinstance(m.get("content"), str) for m in history) or \
            (history and history[0].get("role") == "assistant"):
        return None  # a chat completion carries messages only (routed, with the server's options), text contents,
        # and a conversation that opens with the assistant's greeting, which it leaves out
    client = openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=env.http(), max_retries=0)
    try:
        completion = client.chat.completions.create(
            model="spanqa", messages=[*history, {"role": "user", "content": call.arguments["question"]}])
    except openai.APIStatusError as exc:
        error = exc.body.get("error", exc.body) if isinstance(exc.body, dict) else {}
        return Outcome(message=error.get("message"), type=error.get("type"), status=exc.status_code)
    return Outcome(data=completion.model_extra["spanqa"])


def langchain_door(env, call: Call) -> Outcome | None:
    from langchain_core.messages import ToolCall
    from spanqa.plugin.doors.langchain_tools import SpanqaToolkit

    name = {"answer": "document_qa", "search": "document_search"}.get(call.operation)
    if name is None:
        return None
    tool = next(t for t in SpanqaToolkit(service=env.service()).get_tools() if t.name == name)
    message = tool.invoke(ToolCall(name=name, args=call.arguments, id="call-1", type="tool_call"))
    if message.status == "error":
        return Outcome(message=message.content)
    return Outcome(data=json.loads(message.content))


def ui_door(env, call: Call) -> Outcome | None:
    from streamlit.testing.v1 import AppTest

    if call.operation != "ask" or set(call.arguments) != {"question"} or not call.arguments["question"]:
        return None  # the chat box sends routed, non-empty messages; top-k and mode are bounded widgets; the
        # history is the chat's own (test_the_chat_ui_reads_a_follow_up_in_the_light_of_the_chat)
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.chat_input[0].set_value(call.arguments["question"]).run()
    assert not at.exception, at.exception
    if at.error:
        return Outcome(message=at.error[0].value)
    return Outcome(data=at.session_state["messages"][-1]["response"])


DOORS = {"python": python_door, "cli": cli_door, "mcp": mcp_door, "rest": rest_door, "openai": openai_door,
         "langchain": langchain_door, "ui": ui_door}
ROUTED = {"python", "cli", "rest", "openai", "ui"}  # doors whose "ask" exists; "answer" is unrouted everywhere


class Doors:
    """A collection, and every door onto it, opened the way a user would (settings from the environment)."""

    def __init__(self, location: str, capsys, monkeypatch, scratch: Path) -> None:
        self.location = location
        self.capsys = capsys
        self.scratch = scratch  # where a door writes a file it returns (the CLI's --page-image)
        monkeypatch.setenv("SPANQA_COLLECTION", location)  # the UI opens what the environment names
        self._service: Service | None = None
        self._http = None

    def service(self) -> Service:
        if self._service is None:
            self._service = Service.open(self.location)
        return self._service

    def http(self):
        from fastapi.testclient import TestClient
        from spanqa.plugin.doors.http_server import create_app

        if self._http is None:
            from spanqa.settings import ServerSettings

            serving = ServerSettings()  # micro-batched, as `spanqa serve` is
            self._http = TestClient(create_app(Service.open(self.location, serving=serving), serving))
            self._http.__enter__()  # runs the lifespan: models warm, MCP sessions up
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.__exit__(None, None, None)


@pytest.fixture(scope="module")
def corpus_collection(tmp_path_factory, embedder) -> str:
    from spanqa.retriever import LocalCollection

    root = tmp_path_factory.mktemp("doors")
    collection = LocalCollection(root / "collection", embedder=embedder)
    collection.ingest([write_corpus(root / "docs", CORPUS)])
    collection.ingest_bytes([("handbook.pdf", typeset_pdf("Pump handbook", [PDF_FACT], columns=2))])
    collection.close()
    return str(root / "collection")


@pytest.fixture
def doors(corpus_collection, capsys, monkeypatch, tmp_path):
    opened = Doors(corpus_collection, capsys, monkeypatch, tmp_path)
    yield opened
    opened.close()


def through_every_door(doors: Doors, call: Call) -> dict[str, Outcome]:
    outcomes = {name: door(doors, call) for name, door in DOORS.items()}
    return {name: outcome for name, outcome in outcomes.items() if outcome is not None}


def assert_same_refusal(outcomes: dict[str, Outcome], kind: str, status: int) -> str:
    """Every door refused, with the Python service's message; typed doors with `kind`, HTTP with `status`."""
    expected = outcomes["python"]
    assert expected.failed and expected.type == kind and expected.status == status, expected
    for name, outcome in outcomes.items():
        assert outcome.failed, f"{name} did not refuse: {outcome}"
        assert outcome.message == expected.message, f"{name}: {outcome.message!r} != {expected.message!r}"
        if outcome.type is not None:
            assert (outcome.type, outcome.status) == (kind, status), name
    return expected.message


# --- the cases -------------------------------------------------------------------------------------------------

def test_a_good_question_gets_the_same_answer_and_keys_at_every_door(doors):
    asked = through_every_door(doors, Call("ask", {"question": QUESTION}))
    answered = through_every_door(doors, Call("answer", {"question": QUESTION}))
    assert set(asked) == {"python", "cli", "rest", "openai", "ui"} and set(answered) == {"python", "mcp", "rest",
                                                                                           "langchain"}
    every = {f"{name} ask": o for name, o in asked.items()} | {f"{name} answer": o for name, o in answered.items()}
    keys = set(every["python ask"].data)
    for name, outcome in every.items():
        assert not outcome.failed, f"{name}: {outcome.message}"
        assert set(outcome.data) == keys, name
        assert outcome.data["schema"] == 1 and "clogged" in outcome.data["answers"][0]["text"], name
        assert len({p["text"] for p in outcome.data["passages"]}) == len(outcome.data["passages"]), name


def test_each_verb_means_the_same_at_every_door(doors):
    """`ask` routes (a greeting gets a greeting), `answer` never does, whichever door the message came through."""
    asked = through_every_door(doors, Call("ask", {"question": "hello!"}))
    answered = through_every_door(doors, Call("answer", {"question": "hello!"}))
    assert {name: o.data["route"] for name, o in asked.items()} == dict.fromkeys(asked, "reply")
    assert {name: o.data["route"] for name, o in answered.items()} == dict.fromkeys(answered, "documents")
    assert set(asked) == ROUTED


def test_an_unsure_reply_quotes_the_closest_passage_in_the_same_words_at_every_door(doors):
    """A withheld answer still helps: every door's reply says spanqa is not sure and quotes the passage most likely
    to hold the answer, its best candidate marked, with the same `closest` JSON."""
    asked = through_every_door(doors, Call("ask", {"question": UNSURE}))
    answered = through_every_door(doors, Call("answer", {"question": UNSURE}))
    every = {f"{name} ask": o for name, o in asked.items()} | {f"{name} answer": o for name, o in answered.items()}
    expected = every["python ask"].data
    closest = expected["closest"]
    assert expected["abstained"] and closest is not None
    assert expected["reply"] == f"Not sure. The closest passage ({closest['citation']}) says: “{closest['marked']}”"
    assert len(closest["text"]) <= Settings().max_quote_chars and closest["text"] in CORPUS[closest["source"].rsplit("/", 1)[-1]]
    for name, outcome in every.items():
        assert not outcome.failed, f"{name}: {outcome.message}"
        assert outcome.data["reply"] == expected["reply"] and outcome.data["closest"] == closest, name
        assert set(outcome.data) == set(expected), name


@pytest.mark.parametrize(("call", "named"), [
    (Call("ask", {"question": ""}), "question: String should have at least 1 character"),
    (Call("answer", {"question": ""}), "question: String should have at least 1 character"),
    (Call("ask", {"question": TOO_LONG}), "(max_length=2000, the max_question_chars setting)"),
    (Call("answer", {"question": TOO_LONG}), "(max_length=2000, the max_question_chars setting)"),
    (Call("ask", {"question": QUESTION, "top_k": 51}), "top_k: Input should be less than or equal to 50 (le=50, "
                                                        "the max_top_k setting)"),
    (Call("answer", {"question": QUESTION, "top_k": 51}), "(le=50, the max_top_k setting)"),
    (Call("search", {"query": "pump", "mode": "fuzzy"}), "mode: Input should be 'hybrid', 'dense' or 'bm25'"),
    (Call("search", {"query": "pump", "k": 1001}), "(le=1000, the max_results setting)"),
], ids=["empty ask", "empty answer", "too long ask", "too long answer", "top_k ask", "top_k answer", "bad mode",
        "k over max_results"])
def test_bad_arguments_are_refused_in_the_same_words_at_every_door(doors, call, named):
    outcomes = through_every_door(doors, call)
    assert len(outcomes) >= 3, outcomes  # ask: Python, CLI, REST; answer and search: Python, MCP, REST, LangChain
    message = assert_same_refusal(outcomes, "invalid_request", 422)
    assert named in message and message.startswith("Invalid arguments — ")


FIRST = {"role": "user", "content": QUESTION}
REPLY = {"role": "assistant", "content": "“the water filter is clogged and must be rinsed” — error-b.txt, page 1 "
                                         "(confidence 0.95)"}


def test_a_follow_up_is_answered_in_the_light_of_the_conversation_at_every_door(doors):
    follow_up = {"question": "what about E-4711?", "history": [FIRST, REPLY]}
    asked = through_every_door(doors, Call("ask", follow_up))
    answered = through_every_door(doors, Call("answer", follow_up))
    assert set(asked) == {"python", "rest", "openai"} and set(answered) == {"python", "mcp", "rest", "langchain"}
    for name, outcome in {**{f"{n} ask": o for n, o in asked.items()},
                          **{f"{n} answer": o for n, o in answered.items()}}.items():
        assert not outcome.failed, f"{name}: {outcome.message}"
        data = outcome.data
        assert data["message"] == "what about E-4711?", name
        assert data["resolved"] == {"question": "What does pump error E-4711 mean?", "follow_up": True,
                                    "turns": [0, 1], "query": data["resolved"]["query"], "terms": []}, name
        assert "motor overheated" in data["answers"][0]["text"] and not data["abstained"], name


def test_the_chat_ui_reads_a_follow_up_in_the_light_of_the_chat(doors):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    at.chat_input[0].set_value(QUESTION).run()
    at.chat_input[0].set_value("what about E-4711?").run()
    assert not at.exception, at.exception
    data = at.session_state["messages"][-1]["response"]
    assert data["resolved"]["question"] == "What does pump error E-4711 mean?" and "overheated" in data["answers"][0]["text"]
    understood = [c.value for c in at.caption if c.value.startswith("Understood as")]
    assert len(understood) == 1 and "4711" in understood[0]  # under the follow-up only (Markdown-escaped)
    clear = next(b for b in at.button if b.label == "Clear chat")
    clear.click().run()
    at.chat_input[0].set_value("what about E-4711?").run()
    assert not at.session_state["messages"][-1]["response"]["resolved"]["follow_up"]  # a new conversation


def test_a_thumbs_down_on_a_follow_up_keeps_the_question_as_understood(doors):
    service = doors.service()
    data = service.ask("what about E-4711?", history=[FIRST, REPLY]).data
    rating = {"message": data["message"], "answer": data["answers"][0]["text"], "rating": 0,
              "resolved": data["resolved"]["question"]}
    service.call("feedback", rating)
    response = doors.http().post("/v1/feedback", json=rating)
    assert response.status_code == 200
    kept = service.engine.collection.feedback()[-2:]
    assert [f.question for f in kept] == ["What does pump error E-4711 mean?"] * 2 and [f.rating for f in kept] == [0, 0]


MANY = [{"role": "user", "content": "hi"}] * 65
BAD_HISTORIES = [
    (MANY, "history: List should have at most 64 items after validation, not 65 (field_type=List, max_length=64, "
           "actual_length=65, the max_history_turns setting)"),
    ([FIRST, {"role": "assistant", "content": "x" * 64_000}], "history has 64,033 characters; the limit is 64,000 "
                                                               "(the max_history_chars setting)"),
    ([{"role": "robot", "content": "beep"}], "history.0.role: Input should be 'user' or 'assistant'"),
    ([{"role": "user", "content": 42}], "history.0.content: Input should be a valid string"),
    ([REPLY], "history has no user message"),
    ([FIRST, {"role": "assistant"}], "history.1.content: Field required"),
]


@pytest.mark.parametrize(("history", "named"), BAD_HISTORIES,
                         ids=["too many", "too long", "bad role", "not text", "only assistant", "no content"])
def test_a_bad_history_is_refused_in_the_same_words_at_every_door(doors, history, named):
    asked = through_every_door(doors, Call("ask", {"question": QUESTION, "history": history}))
    answered = through_every_door(doors, Call("answer", {"question": QUESTION, "history": history}))
    assert {"python", "rest"} <= set(asked) and set(answered) == {"python", "mcp", "rest", "langchain"}
    for outcomes in (asked, answered):
        message = assert_same_refusal(outcomes, "invalid_request", 422)
        assert named in message and message.startswith("Invalid arguments — ")


def test_a_span_is_shown_in_its_document_the_same_at_every_door(doors):
    answer = doors.service().call("answer", {"question": QUESTION}).data["answers"][0]
    span = {"document_id": answer["document_id"], "start": answer["start"], "end": answer["end"]}
    outcomes = through_every_door(doors, Call("view", span))
    assert set(outcomes) == {"python", "cli", "mcp", "rest"}
    for name, outcome in outcomes.items():
        assert not outcome.failed, f"{name}: {outcome.message}"
        assert outcome.data["span"] == answer["text"], name
    outside = through_every_door(doors, Call("view", {**span, "end": 10**6}))
    message = assert_same_refusal(outside, "input_error", 400)
    assert f"{span['start']}:{10**6}" in message
    unknown = through_every_door(doors, Call("view", {**span, "document_id": "no-such-document"}))
    assert_same_refusal(unknown, "not_found", 404)


def test_a_pdf_page_is_rendered_the_same_at_every_door_that_draws_it(doors):
    from io import BytesIO

    from PIL import Image

    answer = doors.service().call("answer", {"question": "Where is the spare impeller stored?"}).data["answers"][0]
    assert answer["page_image"] and "blue cabinet" in " ".join(answer["text"].split())
    span = {"document_id": answer["document_id"], "start": answer["start"], "end": answer["end"],
            "page": answer["page"]}
    outcomes = through_every_door(doors, Call("page", span))
    assert set(outcomes) == {"python", "cli", "rest"}
    drawn = outcomes["python"].data
    assert drawn["boxed"] == drawn["characters"] > 0 and outcomes["cli"].data["boxes"] == drawn["boxes"]
    for name in ("cli", "rest"):
        assert Image.open(BytesIO(outcomes[name].data["png"])).size == (drawn["width"], drawn["height"]), name
    text = next(d for d in doors.service().call("documents").data["documents"] if d["source"].endswith("tower.txt"))
    not_pdf = through_every_door(doors, Call("page", {**span, "document_id": text["document_id"]}))
    assert "is not a PDF" in assert_same_refusal(not_pdf, "input_error", 400)
    missing_page = through_every_door(doors, Call("page", {**span, "page": 40}))
    assert "page 40 does not exist" in assert_same_refusal(missing_page, "input_error", 400)


def test_an_unknown_document_is_not_found_at_every_door(doors):
    outcomes = through_every_door(doors, Call("remove", {"document_id": "no-such-document"}))
    assert set(outcomes) == {"python", "cli", "mcp", "rest"}  # the doors that manage documents
    assert "No document 'no-such-document'" in assert_same_refusal(outcomes, "not_found", 404)


def test_a_limit_lowered_by_the_environment_holds_at_every_door(doors, monkeypatch):
    monkeypatch.setenv("SPANQA_MAX_QUESTION_CHARS", "100")
    question = "What does pump error E-4712 mean " + "and why " * 10 + "?"  # 114 characters
    outcomes = through_every_door(doors, Call("ask", {"question": question}))
    assert set(outcomes) == ROUTED
    assert "(max_length=100, the max_question_chars setting)" in assert_same_refusal(outcomes, "invalid_request", 422)
    monkeypatch.setenv("SPANQA_MAX_RESULTS", "10")
    outcomes = through_every_door(Doors(doors.location, doors.capsys, monkeypatch, doors.scratch), Call("search", {"query": "pump",
                                                                                                     "k": 20}))
    assert "(le=10, the max_results setting)" in assert_same_refusal(outcomes, "invalid_request", 422)


def test_a_collection_that_vanished_is_a_collection_error_at_every_door(tmp_path, embedder, capsys, monkeypatch):
    from spanqa.retriever import LocalCollection

    location = tmp_path / "collection"
    LocalCollection(location, embedder=embedder).ingest([write_corpus(tmp_path / "docs", CORPUS)])
    doors = Doors(str(location), capsys, monkeypatch, tmp_path)
    try:
        doors.service().engine.warm_up()
        doors.http()
        shutil.rmtree(location)  # deleted while the doors hold it open
        outcomes = {name: DOORS[name](doors, Call("answer" if name in ("mcp", "langchain") else "ask",
                                                  {"question": QUESTION}))
                    for name in ("python", "mcp", "rest", "openai", "langchain")}
        message = assert_same_refusal(outcomes, "collection_error", 503)
        assert f"The collection at {location} is gone" in message
        # The CLI opens the collection per command: it finds none, and says so as a collection error.
        cli = cli_door(doors, Call("ask", {"question": QUESTION}))
        assert cli.failed and f"No collection at {location}" in cli.message
    finally:
        doors.close()


def test_the_ui_offers_exactly_the_limits_of_the_settings(doors, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("SPANQA_MAX_TOP_K", "12")
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    slider = at.slider(key="top_k")
    assert slider.max == 12 == Settings.from_env().max_top_k
