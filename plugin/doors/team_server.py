"""`spanqa serve --config spanqa.toml`: one server, several collections, keys scoped to them.

    /v1/collections/{name}/ask /answer /search /classify /feedback /documents[/{id}[/view, /pages/{n}.png]]
                                           read scope; POST /documents, DELETE /documents/{id}, POST /sync: write
    /v1/collections/{name}/mcp             MCP over streamable HTTP, that collection only (read scope)
    /v1/models, /v1/chat/completions       OpenAI-compatible: `model` names the collection; the list holds only
                                           what the key can read
    /healthz /readyz                       open (they say nothing about the collections)
    /metrics                               Prometheus, for keys with `metrics = true`

Each collection is served by the same routes as a one-collection server (http_server.py), mounted under its name;
every collection shares one copy of the models (plugin/engine/models.py). In front of them one middleware decides,
before a collection is touched: the key (401), its rate (429), whether it sees the collection (else the one 404
that a collection which does not exist gets, byte for byte) and whether it holds the scope (403). Every decision
and every write goes to the audit log.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from spanqa.plugin.doors.access import AuditLog, KeyRing, RateLimiter, needs_write
from spanqa.plugin.doors.administration import FolderFollower
from spanqa.plugin.doors.http_server import (
    McpEndpoint,
    add_collection_routes,
    add_health,
    add_openai_routes,
    add_sync_routes,
    install_body_limit,
    install_cors,
    install_error_handlers,
    refusal,
    serving_lifespan,
    sync_logger,
)
from spanqa.plugin.doors.metrics import Metrics, install_metrics, route_label
from spanqa.plugin.doors.service import SCHEMA_VERSION, Service

from spanqa import __version__
from spanqa.errors import Forbidden, SpanqaError, Unauthorized
from spanqa.server_config import ServerConfig
from spanqa.settings import ServerSettings, Settings

__all__ = ["COLLECTIONS_ROOT", "TeamServer", "create_team_app"]

COLLECTIONS_ROOT = "/v1/collections/"
_OPEN = frozenset({"/healthz", "/readyz"})


def collection_in(path: str) -> tuple[str | None, str]:
    """(collection name, the route's pattern inside it) for a path under /v1/collections/; (None, "") else."""
    if not path.startswith(COLLECTIONS_ROOT):
        return None, ""
    name, _, rest = path[len(COLLECTIONS_ROOT):].partition("/")
    return name, route_label("/" + rest)


class TeamServer:
    """The collections of a configuration, opened (`Service` each, sharing the models), with their folder
    followers and MCP endpoints."""

    def __init__(self, config: ServerConfig, settings: Settings, serving: ServerSettings) -> None:
        self.config = config
        self.settings = settings
        self.services: dict[str, Service] = {}
        self.followers: dict[str, FolderFollower] = {}
        for name, entry in config.collections.items():
            service = Service.open(entry.location, settings, serving=serving, mounted_at=COLLECTIONS_ROOT + name)
            self.services[name] = service
            if entry.sync:
                self.followers[name] = FolderFollower(list(entry.sync), service, on_outcome=sync_logger(name))

    def readable(self, key) -> list[str]:
        return sorted(name for name in self.services if name in key.read)


def create_team_app(server: TeamServer, serving: ServerSettings) -> FastAPI:
    config = server.config
    keys, limiter = KeyRing(config.keys), RateLimiter()
    audit = AuditLog(config.audit_log, config.audit_reads) if config.audit_log else None
    metrics = Metrics()
    endpoints = {name: McpEndpoint(service) for name, service in server.services.items()}
    state: dict[str, Any] = {"ready": False}
    app = FastAPI(title="spanqa (team server)", version=__version__,
                  lifespan=serving_lifespan(server.services, list(endpoints.values()),
                                            list(server.followers.values()), state, tolerate_down=True),
                  description="Extractive, cited question answering over several collections, each under "
                              f"/v1/collections/NAME; the versioned response JSON (schema {SCHEMA_VERSION}).")
    install_error_handlers(app)
    for name, service in server.services.items():
        app.mount(COLLECTIONS_ROOT + name, _collection_app(service, endpoints[name], server.followers.get(name),
                                                           metrics, name))
        metrics.watch_batches(name, service)
    add_health(app, state, dict, metrics)
    add_openai_routes(app, lambda request, model: _chosen(request, model, server),
                      lambda request: server.readable(request.state.key))
    install_body_limit(app, server.settings.collection_limits().max_file_bytes)
    _install_access(app, keys, limiter, audit)
    install_cors(app, serving)
    install_metrics(app, metrics, lambda request: (getattr(request.state, "collection", ""),
                                                   route_label(request.url.path)))
    return app


def _collection_app(service: Service, mcp: McpEndpoint, follower: FolderFollower | None, metrics: Metrics,
                    name: str) -> FastAPI:
    """One collection's routes, as a one-collection server has them under /v1, to mount under its name."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    install_error_handlers(app)
    app.mount("/mcp", mcp)
    add_collection_routes(app, service, "", metrics.observer(name))
    add_sync_routes(app, follower, "")
    return app


def _chosen(request: Request, model: str, server: TeamServer) -> Service:
    """The collection an OpenAI-compatible request names as its `model`, where its key may read it."""
    KeyRing.check_scope(request.state.key, model, write=False)
    request.state.collection = model
    return server.services[model]


def _install_access(app: FastAPI, keys: KeyRing, limiter: RateLimiter, audit: AuditLog | None) -> None:
    @app.middleware("http")
    async def control(request: Request, call_next):
        path, method = request.url.path, request.method
        name, inner = collection_in(path)
        write = name is not None and needs_write(method, inner)
        request.state.collection = ""
        key = None
        try:
            if path in _OPEN:
                return await call_next(request)
            key = keys.identify(request.headers.get("authorization", ""))
            if key is None:
                raise Unauthorized("Missing or unknown API key: send 'Authorization: Bearer <key>'")
            request.state.key = key
            limiter.take(key)
            if name is not None:
                KeyRing.check_scope(key, name, write)
                request.state.collection = name
            elif path == "/metrics" and not key.metrics:
                raise Forbidden(f"The key {key.name!r} may not read /metrics (give it metrics = true)")
            response = await call_next(request)
        except SpanqaError as exc:
            response = refusal(exc)
        if audit is not None:
            audit.record(None if key is None else key.name, name or request.state.collection or None,
                         route_label(path), method, response.status_code, write)
        return response
