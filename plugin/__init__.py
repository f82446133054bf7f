"""spanqa's plugin (`spanqa.plugin`), in three rooms:

- `engine/` — what answers: the `Engine` protocol and its implementations (the assistant, the micro-batching
  front), the reader, the intent router, the answer ranker and its calibration, the response JSON, collection
  opening.
- `doors/` — how applications reach the engine: `service.py`, the one layer of operations, argument models and
  errors, and its shims: the CLI, MCP, HTTP (REST and OpenAI-compatible) and the LangChain toolkit.
- `lab/` — how models are trained and evaluated: the readers, the intent router, the answer ranker.

Imports point one way: doors → engine → retriever; the lab may import the engine, never the reverse.
"""
