"""spanqa over the Model Context Protocol: the three tools and the collection's documents as resources.

    spanqa mcp [--collection DIR]          # stdio: Claude Desktop, Cursor, VS Code, the OpenAI Agents SDK
    spanqa serve                           # streamable HTTP at /mcp, beside the REST and OpenAI-compatible routes

Built on the official `mcp` SDK's low-level server so that the tools take exactly the argument models of the
LangChain tools and the HTTP API (plugin/doors/schemas.py): same names, descriptions and limits. A bad argument
or a refusal comes back as a tool error (`isError`) that names the field; the server keeps serving.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import anyio
from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.lowlevel.helper_types import ReadResourceContents
from pydantic import ValidationError
from spanqa.plugin.doors.schemas import TOOL_DESCRIPTIONS, TOOL_INPUTS, call_tool, validation_message

from spanqa import __version__
from spanqa.errors import InputError, SpanqaError

__all__ = ["DOCUMENT_URI", "build_mcp_server", "serve_stdio"]

DOCUMENT_URI = "spanqa://documents/"
INSTRUCTIONS = ("spanqa answers questions from the user's own documents with verbatim, cited quotes. Use "
                "document_qa for questions, document_search to browse passages, and read a document resource for "
                "its full text. An answer with abstained=true means the documents do not answer the question.")


def build_mcp_server(assistant) -> Server:
    """An MCP server whose tools and resources all run on `assistant` (one engine, one copy of each model)."""
    server = Server("spanqa", version=__version__, instructions=INSTRUCTIONS)

    @server.list_tools()
    async def list_tools() -> list[types.Tool]:
        return [types.Tool(name=name, description=TOOL_DESCRIPTIONS[name], inputSchema=model.model_json_schema())
                for name, model in TOOL_INPUTS.items()]

    @server.call_tool(validate_input=False)  # pydantic validates, with messages that name the field and limit
    async def call(name: str, arguments: dict) -> dict:
        if name not in TOOL_INPUTS:
            raise InputError(f"Unknown tool {name!r}; spanqa's tools are {', '.join(TOOL_INPUTS)}")
        try:
            data, _ = await anyio.to_thread.run_sync(call_tool, assistant, name, arguments)
        except ValidationError as exc:
            raise InputError(validation_message(exc)) from exc
        except SpanqaError as exc:
            raise InputError(f"{exc} Change the arguments and try again.") from exc
        return data  # structured content, and the same JSON as text for clients that read only text

    @server.list_resources()
    async def list_resources() -> list[types.Resource]:
        documents = await anyio.to_thread.run_sync(assistant.collection.documents)
        return [types.Resource(uri=DOCUMENT_URI + quote(d.id), name=d.source, title=d.title or d.source,
                               mimeType="text/plain", description=f"{d.passages} passages, {d.characters:,} characters",
                               size=d.characters)
                for d in documents]

    @server.read_resource()
    async def read_resource(uri) -> list[ReadResourceContents]:
        text = str(uri)
        if not text.startswith(DOCUMENT_URI):
            raise InputError(f"Unknown resource {text}; spanqa's resources are {DOCUMENT_URI}<document id>")
        document = await anyio.to_thread.run_sync(assistant.collection.document, unquote(text[len(DOCUMENT_URI):]))
        if document is None:
            raise InputError(f"No document {text} in this collection (it may have been removed)")
        return [ReadResourceContents(content=document.text, mime_type="text/plain")]

    return server


async def serve_stdio(assistant) -> None:
    """Serve MCP on stdin/stdout until the client closes them. Everything else spanqa prints goes to stderr."""
    from mcp.server.stdio import stdio_server

    server = build_mcp_server(assistant)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())
