"""Register the spanqa toolkit with a LangChain agent.

With your own chat model (anything `langchain.chat_models.init_chat_model` knows, e.g. "openai:gpt-4.1-mini"):

    python examples/agent.py --model openai:gpt-4.1-mini "What does the warranty cover?" --collection my-docs

Without any model or network (a scripted fake model that calls `document_qa` with your question, then
answers with what the tool returned):

    python examples/agent.py --scripted "How does spanqa combine dense and BM25 search?"
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from langchain.agents import create_agent  # noqa: E402
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel  # noqa: E402
from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402

from spanqa import Service, SpanqaToolkit  # noqa: E402


class ScriptedChatModel(FakeMessagesListChatModel):
    """A fake chat model for offline runs: first it calls `document_qa` with the question, then it writes its
    final message from the tool's JSON output. (The fakes in langchain-core do not implement bind_tools.)"""

    def bind_tools(self, tools, **kwargs):
        return self

    def _generate(self, messages, stop=None, run_manager=None, **kwargs):
        tool_results = [m for m in messages if isinstance(m, ToolMessage)]
        if not tool_results:
            question = messages[-1].content
            call = {"name": "document_qa", "args": {"question": question}, "id": "call_1", "type": "tool_call"}
            self.responses = [AIMessage(content="", tool_calls=[call])]
        else:
            result = json.loads(_text(tool_results[-1].content))
            if not result["abstained"] and result["answers"]:
                best = result["answers"][0]
                text = f"{best['text']} (source: {best['citation']})"
            else:
                text = result["reply"]
            self.responses = [AIMessage(content=text)]
        self.i = 0
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


def _text(content) -> str:
    """A tool message's text: a string, or the text blocks of a list (how MCP tools come through adapters)."""
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)


def build_agent(model, collection: str | None):
    toolkit = SpanqaToolkit(service=Service.open(collection))  # settings from the environment, once
    return create_agent(model, tools=toolkit.get_tools(),
                        system_prompt="Answer questions about the user's documents with the document_qa tool. "
                                      "Quote the answer and cite its source.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("question", nargs="?")
    parser.add_argument("--scripted", metavar="QUESTION", help="run offline with a scripted fake chat model")
    parser.add_argument("--model", help="a chat model id for init_chat_model, e.g. openai:gpt-4.1-mini")
    parser.add_argument("--collection", help="collection directory (default: the bundled default collection)")
    args = parser.parse_args()
    if args.scripted:
        question, model = args.scripted, ScriptedChatModel(responses=[AIMessage(content="")])
    elif args.model and args.question:
        from langchain.chat_models import init_chat_model

        question, model = args.question, init_chat_model(args.model)
    else:
        parser.error("give --scripted QUESTION, or --model ID and a question")
    agent = build_agent(model, args.collection)
    result = agent.invoke({"messages": [{"role": "user", "content": question}]})
    print(result["messages"][-1].content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
