"""A team server (`spanqa serve --config`): config errors named, and against a real server process on loopback the
leak suite — every route and door (REST, OpenAI-compatible, MCP over HTTP) × every key × every collection: what a
key cannot see answers byte for byte as a collection that does not exist — then scopes, metrics, the audit log and
rate limits."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpx
import pytest
import tomli_w
from helpers import spanqa_serve

from spanqa.errors import ConfigError
from spanqa.server_config import key_digest, load_config

SPANQA = str(Path(sys.executable).parent / "spanqa")
DOCUMENTS = {
    "hr": {"leave.txt": "Employees get 28 days of paid leave a year, booked through the HR portal."},
    "eng": {"deploy.txt": "Production deploys happen on Tuesdays after the 10 am stand-up, never on Fridays."},
    "ops": {"pager.txt": "The on-call engineer answers a page within 15 minutes, day or night."},
}
KEYS = {  # name → (key, read, write, metrics, rate_per_minute)
    "hr-readers": ("sqk_hr_reader_key_for_tests_only_0001", ["hr"], [], False, 0),
    "eng-admin": ("sqk_eng_admin_key_for_tests_only_0002", ["archive", "eng"], ["eng"], True, 0),
    "ops-feeder": ("sqk_ops_feeder_key_for_tests_only_003", [], ["ops"], False, 0),
    "slow": ("sqk_slow_key_for_tests_only_000000004", ["hr"], [], False, 3),
}
NOWHERE = "finance"  # a collection that does not exist


def _write_config(path: Path, collections: dict, keys: list[dict], server: dict | None = None) -> Path:
    path.write_text(tomli_w.dumps({"server": server or {}, "collections": collections, "keys": keys}))
    return path


def _key_entry(name: str, key: str, read, write, metrics=False, rate=0) -> dict:
    return {"name": name, "key_sha256": key_digest(key).hex(), "read": read, "write": write, "metrics": metrics,
            "rate_per_minute": rate}


# --- the configuration file ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "named"), [
    ({"name": "a", "key": "plain", "read": ["hr"]}, "never written in the file in plain text"),
    ({"name": "a", "key_sha256": "0" * 64, "read": ["payroll"]}, "read names 'payroll', not in [collections]"),
    ({"name": "a", "key_sha256": "zz", "read": ["hr"]}, "key_sha256 must be 64 hexadecimal digits"),
    ({"name": "a", "key_env": "SPANQA_TEST_UNSET_KEY", "read": ["hr"]}, "SPANQA_TEST_UNSET_KEY', which is not set"),
    ({"name": "a b", "key_sha256": "0" * 64}, "letters, digits, '-' or '_'"),
    ({"name": "a", "key_sha256": "0" * 64, "reed": ["hr"]}, "unknown entry reed"),
], ids=["plain key", "unknown collection", "bad digest", "unset env", "bad name", "misspelled scope"])
def test_a_bad_key_entry_is_refused_by_name(tmp_path, entry, named):
    path = _write_config(tmp_path / "spanqa.toml", {"hr": str(tmp_path / "hr")}, [entry])
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        load_config(path, environ={})


def test_duplicate_names_keys_and_toml_errors_are_named(tmp_path):
    same = [_key_entry("a", "k1", ["hr"], []), _key_entry("a", "k2", ["hr"], [])]
    with pytest.raises(ConfigError, match="key 'a': the name is used by an earlier key"):
        load_config(_write_config(tmp_path / "a.toml", {"hr": "x"}, same), environ={})
    twins = [_key_entry("a", "k1", ["hr"], []), _key_entry("b", "k1", ["hr"], [])]
    with pytest.raises(ConfigError, match="two keys have the same key"):
        load_config(_write_config(tmp_path / "b.toml", {"hr": "x"}, twins), environ={})
    (tmp_path / "c.toml").write_text('[collections]\nhr = "x"\nhr = "y"\n')
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(tmp_path / "c.toml")
    with pytest.raises(ConfigError, match="no \\[\\[keys\\]\\]"):
        load_config(_write_config(tmp_path / "d.toml", {"hr": "x"}, []))
    with pytest.raises(ConfigError, match="could not be read"):
        load_config(tmp_path / "absent.toml")
    loaded = load_config(_write_config(tmp_path / "e.toml", {"hr": "x", "eng": {"location": "y", "sync": ["/d"]}},
                                       [{"name": "env", "key_env": "K", "read": ["hr"], "write": ["eng"]}]),
                         environ={"K": "the-key"})
    key = loaded.keys[0]
    assert key.digest == key_digest("the-key") and key.sees("eng") and not key.sees("ops")
    assert loaded.collections["eng"].sync == ("/d",)


def test_spanqa_keys_new_prints_a_key_once_and_the_line_that_matches_it(capsys, tmp_path):
    from spanqa.plugin.doors.cli import main

    assert main(["keys", "new", "hr-readers"]) == 0
    out = capsys.readouterr().out
    key = next(line.split()[-1] for line in out.splitlines() if line.strip().startswith("#   sqk_"))
    entry = out[out.index("[[keys]]"):]
    (tmp_path / "spanqa.toml").write_text('[collections]\nhr = "x"\n' + entry.replace("read = []", 'read = ["hr"]'))
    loaded = load_config(tmp_path / "spanqa.toml")
    assert loaded.keys[0].name == "hr-readers" and loaded.keys[0].digest == key_digest(key)
    assert key not in (tmp_path / "spanqa.toml").read_text()
    assert main(["keys", "new", "no spaces"]) == 2


# --- a real team server -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def team(tmp_path_factory, embedder):
    """`spanqa serve --config` on a free loopback port: three collections, four keys, an audit log."""
    from spanqa.retriever import LocalCollection

    root = tmp_path_factory.mktemp("team")
    for name, files in DOCUMENTS.items():
        for file, text in files.items():
            (root / name / "docs").mkdir(parents=True, exist_ok=True)
            (root / name / "docs" / file).write_text(text)
        LocalCollection(root / name / "collection", embedder=embedder).ingest([root / name / "docs"])
    keys = [_key_entry(name, key, read, write, metrics, rate) for name, (key, read, write, metrics, rate) in
            KEYS.items()]
    collections = {n: str(root / n / "collection") for n in [*DOCUMENTS, "archive"]}  # archive: never built
    config = _write_config(root / "spanqa.toml", collections, keys, {"audit_log": str(root / "audit.jsonl")})
    with spanqa_serve(["--config", str(config)], tmp_path_factory.mktemp("team-home")) as url:
        yield {"url": url, "audit": root / "audit.jsonl"}


def _auth(key_name: str | None) -> dict:
    if key_name is None:
        return {}
    key = KEYS[key_name][0] if key_name in KEYS else "sqk_not_a_key_anyone_was_given"
    return {"Authorization": f"Bearer {key}"}


# Every route a collection has, with a request each: (method, path under the collection, JSON body or None).
ROUTES = [
    ("POST", "ask", {"question": "How many days of leave do we get?"}),
    ("POST", "answer", {"question": "When do production deploys happen?"}),
    ("POST", "search", {"query": "on-call page", "k": 1}),
    ("POST", "classify", {"message": "hello"}),
    ("POST", "feedback", {"message": "q", "rating": 1}),
    ("GET", "documents", None),
    ("GET", "documents/0123456789abcdef", None),
    ("GET", "documents/0123456789abcdef/view?start=0&end=1", None),
    ("GET", "documents/0123456789abcdef/pages/1.png?start=0&end=1", None),
    ("DELETE", "documents/0123456789abcdef", None),
    ("POST", "sync", None),
    ("GET", "sync", None),
    ("POST", "mcp/", {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                      "params": {"protocolVersion": "2025-03-26", "capabilities": {},
                                 "clientInfo": {"name": "leak-suite", "version": "1"}}}),
]
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


def _request(client: httpx.Client, key: str | None, method: str, path: str, body) -> httpx.Response:
    return client.request(method, path, headers={**_auth(key), **MCP_HEADERS}, json=body)


def _shape(response: httpx.Response) -> tuple:
    return response.status_code, response.headers.get("content-type"), response.content


@pytest.mark.integration
def test_no_key_learns_anything_about_a_collection_it_cannot_see(team):
    leaks, checked = [], 0
    with httpx.Client(base_url=team["url"], timeout=120) as client:
        for key in [*(k for k in KEYS if k != "slow"), "wrong", None]:  # "slow": its rate, tested on its own
            sees = set(KEYS[key][1]) | set(KEYS[key][2]) if key in KEYS else set()
            for method, route, body in ROUTES:
                nowhere = _shape(_request(client, key, method, f"/v1/collections/{NOWHERE}/{route}", body))
                for collection in DOCUMENTS:
                    if collection in sees:
                        continue
                    checked += 1
                    got = _shape(_request(client, key, method, f"/v1/collections/{collection}/{route}", body))
                    if got != nowhere:
                        leaks.append((key, method, route, collection, got[:2], nowhere[:2]))
            for collection in DOCUMENTS:  # the OpenAI-compatible door: the collection is the model
                if collection in sees:
                    continue
                chat = {"messages": [{"role": "user", "content": "How many days of leave?"}]}
                checked += 1
                got = _shape(client.post("/v1/chat/completions", headers=_auth(key), json={**chat, "model": collection}))
                if got != _shape(client.post("/v1/chat/completions", headers=_auth(key),
                                             json={**chat, "model": NOWHERE})):
                    leaks.append((key, "chat", collection))
            models = client.get("/v1/models", headers=_auth(key))
            if key in KEYS:
                assert [m["id"] for m in models.json()["data"]] == sorted(KEYS[key][1])
            else:
                assert models.status_code == 401
    assert checked >= 12 * len(ROUTES) and leaks == []  # 5 keys × the collections each cannot see


@pytest.mark.integration
def test_a_key_reads_what_it_may_writes_only_with_write_scope_and_links_stay_in_its_collection(team):
    with httpx.Client(base_url=team["url"], timeout=120) as client:
        hr = client.post("/v1/collections/hr/answer", headers=_auth("hr-readers"),
                         json={"question": "How many days of paid leave do employees get?"})
        best = hr.json()["answers"][0]
        assert "28" in best["text"] and best["view"].startswith("/v1/collections/hr/documents/")
        view = client.get(best["view"].split("#")[0], headers=_auth("hr-readers"))
        assert view.status_code == 200 and '<mark id="answer">' in view.text
        assert client.get(best["view"].split("#")[0], headers=_auth("eng-admin")).status_code == 404
        upload = client.post("/v1/collections/hr/documents", headers=_auth("hr-readers"),
                             files=[("files", ("x.txt", b"Something new.", "text/plain"))])
        assert upload.status_code == 403 and "may not change collection 'hr'" in upload.json()["error"]["message"]
        fed = client.post("/v1/collections/ops/documents", headers=_auth("ops-feeder"),
                          files=[("files", ("rota.txt", b"The weekend rota is posted on Thursdays.", "text/plain"))])
        assert fed.status_code == 200 and fed.json()["added"] == ["rota.txt"]
        assert client.post("/v1/collections/ops/search", headers=_auth("ops-feeder"),
                           json={"query": "rota"}).status_code == 403, "write scope alone does not read"
        chat = client.post("/v1/chat/completions", headers=_auth("eng-admin"),
                           json={"model": "eng", "messages": [{"role": "user", "content": "When do deploys happen?"}]})
        assert chat.status_code == 200 and "Tuesday" in chat.json()["choices"][0]["message"]["content"]
        assert chat.json()["model"] == "eng"


@pytest.mark.integration
def test_a_collection_that_cannot_be_opened_is_an_error_to_its_readers_and_hidden_from_the_rest(team):
    with httpx.Client(base_url=team["url"], timeout=120) as client:
        down = client.get("/v1/collections/archive/documents", headers=_auth("eng-admin"))
        assert down.status_code == 503 and down.json()["error"]["type"] == "collection_error"
        hidden = client.get("/v1/collections/archive/documents", headers=_auth("hr-readers"))
        assert _shape(hidden) == _shape(client.get(f"/v1/collections/{NOWHERE}/documents",
                                                   headers=_auth("hr-readers")))
        assert client.get("/v1/collections/eng/documents", headers=_auth("eng-admin")).status_code == 200


@pytest.mark.integration
def test_mcp_over_http_serves_one_collection_to_a_key_that_reads_it(team):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def run() -> dict:
        url = f"{team['url']}/v1/collections/eng/mcp/"
        async with httpx.AsyncClient(headers=_auth("eng-admin"), timeout=120) as http, \
                streamable_http_client(url, http_client=http) as (read, write, _), ClientSession(read, write) as session:
            await session.initialize()
            result = await session.call_tool("document_qa", {"question": "When do production deploys happen?"})
            resources = (await session.list_resources()).resources
            return {"answer": result.structuredContent["answers"][0], "sources": [r.name for r in resources]}

    got = asyncio.run(run())
    assert "Tuesdays" in got["answer"]["text"] and got["answer"]["view"].startswith("/v1/collections/eng/")
    assert [Path(s).name for s in got["sources"]] == ["deploy.txt"]


@pytest.mark.integration
def test_metrics_move_with_requests_and_need_the_metrics_scope(team):
    with httpx.Client(base_url=team["url"], timeout=120) as client:
        def asked() -> float:
            text = client.get("/metrics", headers=_auth("eng-admin")).text
            lines = [line for line in text.splitlines() if line.startswith("spanqa_requests_total{")
                     and 'collection="eng"' in line and 'route="collections/{name}/answer"' in line
                     and 'status="200"' in line]
            return sum(float(line.rsplit(" ", 1)[1]) for line in lines)

        before = asked()
        for _ in range(2):
            client.post("/v1/collections/eng/answer", headers=_auth("eng-admin"), json={"question": "When?"})
        assert asked() == before + 2
        text = client.get("/metrics", headers=_auth("eng-admin")).text
        assert "spanqa_request_seconds_bucket" in text and "spanqa_batch_size" in text
        assert 'collection="finance"' not in text and "sqk_" not in text and "eng-admin" not in text
        assert client.get("/metrics", headers=_auth("hr-readers")).status_code == 403
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").json() == {"status": "ready"}


@pytest.mark.integration
def test_the_audit_log_holds_writes_and_refusals_and_never_a_key(team):
    with httpx.Client(base_url=team["url"], timeout=120) as client:
        client.post("/v1/collections/eng/documents", headers=_auth("eng-admin"),
                    files=[("files", ("runbook.txt", b"Restart the queue worker first.", "text/plain"))])
        client.post("/v1/collections/eng/ask", headers=_auth("hr-readers"), json={"question": "deploys?"})
    lines = [json.loads(line) for line in team["audit"].read_text().splitlines()]
    assert {"key": "eng-admin", "collection": "eng", "route": "collections/{name}/documents", "method": "POST",
            "status": 200} in [{k: v for k, v in line.items() if k != "time"} for line in lines]
    assert any(line["key"] == "hr-readers" and line["collection"] == "eng" and line["status"] == 404
               for line in lines)
    assert not any(k[0] in team["audit"].read_text() for k in KEYS.values())


@pytest.mark.integration
def test_a_key_over_its_rate_waits_with_retry_after(team):
    with httpx.Client(base_url=team["url"], timeout=120) as client:
        statuses = [client.get("/v1/collections/hr/documents", headers=_auth("slow")) for _ in range(5)]
    limited = [r for r in statuses if r.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1
    assert "3 requests a minute" in limited[0].json()["error"]["message"]
