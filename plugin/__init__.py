"""spanqa's plugin (`spanqa.plugin`), in three rooms:

- `engine/` — what answers: the reader, the intent router, the assistant that joins them, collection opening.
- `doors/` — how applications reach the engine: the CLI and the LangChain toolkit (MCP and HTTP go here too).
- `lab/` — how models are trained and evaluated: reader training, SQuAD metrics, intent evaluation.

Imports point one way: doors → engine → retriever; the lab may import the engine, never the reverse.
"""
