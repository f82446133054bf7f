"""spanqa over the Model Context Protocol: the three tools and the collection's documents as resources.

    spanqa mcp [--collection DIR]          # stdio: Claude Desktop, Cursor, VS Code, the OpenAI Agents SDK
    spanqa serve                           # streamable HTTP at /mcp, beside the REST and OpenAI-compatible routes

Built on the official `mcp` SDK's low-level server, as a shim over the service layer (plugin/doors/service.py):
the tools take exactly the argument models of the LangChain tools and the HTTP API — same names, descriptions and
limits. A bad argument or a refusal comes back as a tool error (`isError`) with the message every door gives; the
server keeps serving.
"""

from __future__ import annotations

import logging
import re
import uuid
from urllib.parse import quote, unquote

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from spanqa.plugin.doors.service import TOOLS, Service
from spanqa.ui.render import span_view_text

from spanqa import __version__
from spanqa.errors import NotFound, SpanqaError

__all__ = ["DOCUMENT_URI", "build_mcp_server", "serve_stdio"]

DOCUMENT_URI = "spanqa://documents/"
_SPAN = re.compile(r"(?P<id>[^/]+)/span/(?P<start>\d+)-(?P<end>\d+)")
SPAN_CONTEXT = 600  # characters a span resource shows either side of the span
INSTRUCTIONS = ("spanqa answers questions from the user's own documents with verbatim, cited quotes. Use "
                "document_qa for questions, document_search to browse passages, and read a document resource for "
                "its full text. An answer with abstained=true means the documents do not answer the question.")
_LOG = logging.getLogger("spanqa.mcp")


async def _run(function, *args):
    """`function(*args)` on a worker thread (the engine is CPU-bound); a SpanqaError goes to the client as it is,
    anything else as a reference to the trace in the server's log, never as the trace itself."""
    try:
        return await anyio.to_thread.run_sync(function, *args)
    except SpanqaError:
        raise
    except Exception as exc:
        reference = uuid.uuid4().hex[:12]
        _LOG.error("unexpected error %s in an MCP call", reference, exc_info=exc)
        raise RuntimeError(f"Something went wrong on the server (reference {reference}); its log has the "
                           "details") from None


def build_mcp_server(service: Service) -> Server:
    """An MCP server whose tools and resources all run on `service` (one engine, one copy of each model)."""
    server = Server("spanqa", version=__version__, instructions=INSTRUCTIONS)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [types.Tool(name=name, description=description,
                           inputSchema=service.tool_schema(name).model_json_schema())
                for name, (_, description) in TOOLS.items()]

    @server.call_tool(validate_input=False)  # the service validates, with messages that name the field and limit
    async def call(name: str, arguments: dict) -> dict:
        result = await _run(service.tool, name, arguments)
        return result.data  # structured content, and the same JSON as text for clients that read only text

    @server.list_resources()
    async def list_resources() -> list[types.Resource]:
        documents = (await _run(service.call, "documents")).value
        return [types.Resource(uri=DOCUMENT_URI + quote(d.id), name=d.source, title=d.title or d.source,
                               mimeType="text/plain", description=f"{d.passages} passages, {d.characters:,} characters",
                               size=d.characters)
                for d in documents]

    @server.list_resource_templates()
    async def list_resource_templates() -> list[types.ResourceTemplate]:
        return [types.ResourceTemplate(
            uriTemplate=DOCUMENT_URI + "{document_id}/span/{start}-{end}", name="span",
            title="A span of a document, in its place", mimeType="text/plain",
            description="The text around characters start…end of a document (an answer's or passage's "
                        "document_id, start and end), the span between » and «.")]

    @server.read_resource()
    async def read_resource(uri) -> list[ReadResourceContents]:
        text = str(uri)
        if not text.startswith(DOCUMENT_URI):
            raise NotFound(f"Unknown resource {text}; spanqa's resources are {DOCUMENT_URI}<document id> and "
                           f"{DOCUMENT_URI}<document id>/span/<start>-<end>")
        span = _SPAN.fullmatch(text[len(DOCUMENT_URI):])
        if span:
            view = await _run(service.call, "view", {"document_id": unquote(span["id"]), "start": int(span["start"]),
                                                     "end": int(span["end"]), "context": SPAN_CONTEXT})
            return [ReadResourceContents(content=span_view_text(view.data, color=False), mime_type="text/plain")]
        document = await _run(service.call, "document", {"document_id": unquote(text[len(DOCUMENT_URI):])})
        return [ReadResourceContents(content=document.data["text"], mime_type="text/plain")]

    return server


async def serve_stdio(service: Service) -> None:
    """Serve MCP on stdin/stdout until the client closes them. Everything else spanqa prints goes to stderr."""
    from mcp.server.stdio import stdio_server

    server = build_mcp_server(service)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
