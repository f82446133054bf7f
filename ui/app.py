"""spanqa chat UI: `streamlit run ui/app.py` (or `spanqa ui`). A thin door onto plugin.Assistant."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `streamlit run ui/app.py` from a checkout

from plugin.assistant import Assistant, Response  # noqa: E402
from plugin.collections import ensure_default_collection  # noqa: E402
from plugin.config import Settings, cache_dir  # noqa: E402
from plugin.errors import SpanqaError  # noqa: E402
from retriever import Collection  # noqa: E402
from retriever.errors import CollectionError  # noqa: E402
from retriever.store import Feedback  # noqa: E402
from ui.render import escape_markdown, highlighted_passage, intent_badge, source_label  # noqa: E402

DEFAULT = "default"
st.set_page_config(page_title="spanqa", page_icon="🔎", layout="wide")
st.markdown("<style>.spanqa-answer{background:#ffe08a;padding:0 2px;border-radius:3px}"
            ".spanqa-passage{font-size:0.92em;line-height:1.5;white-space:pre-wrap}</style>", unsafe_allow_html=True)


def collections_root() -> Path:
    return cache_dir() / "collections"


@st.cache_resource(show_spinner="Loading models and the collection…")
def engine(name: str) -> Assistant:
    """One engine per collection, shared by every browser session (the engine's parts lock what they must)."""
    settings = Settings.from_env()
    limits = settings.collection_limits()
    collection = (ensure_default_collection(limits=limits) if name == DEFAULT
                  else Collection(collections_root() / name, limits=limits))
    assistant = Assistant(collection, settings=settings)
    assistant.warm_up()
    return assistant


# --- sidebar: collection, documents, settings ---------------------------------------------------------------
with st.sidebar:
    st.title("🔎 spanqa")
    root = collections_root()
    existing = sorted(p.name for p in root.iterdir() if (p / "manifest.json").is_file()) if root.is_dir() else []
    names = [DEFAULT] + [n for n in existing if n != DEFAULT]
    choice = st.selectbox("Collection", names + ["➕ New collection…"], key="collection_choice")
    if choice == "➕ New collection…":
        new_name = st.text_input("Name of the new collection", key="new_collection")
        if not new_name:
            st.info("Type a name (letters, digits, - and _) to create the collection.")
            st.stop()
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", new_name):
            st.error("Use only letters, digits, '-' and '_' (at most 64 characters).")
            st.stop()
        choice = new_name
    try:
        assistant = engine(choice)
    except (CollectionError, SpanqaError, OSError) as exc:
        st.error(f"Could not open collection {choice!r}: {exc}")
        st.stop()
    collection = assistant.collection

    with st.expander("Documents", expanded=False):
        uploads = st.file_uploader("Add documents", accept_multiple_files=True, key="uploader",
                                   type=["txt", "md", "markdown", "rst", "html", "htm", "pdf", "docx"])
        if uploads and st.button("Ingest", type="primary"):
            with st.status(f"Ingesting {len(uploads)} file(s)…", expanded=True) as status:
                report = collection.ingest_bytes([(u.name, u.getvalue()) for u in uploads],
                                                 progress=lambda message, done, total: status.write(message))
                for skipped in report.skipped:
                    st.warning(f"Skipped: {skipped.reason}")
                status.update(label=report.summary(), state="error" if report.skipped and not
                              (report.added or report.updated or report.unchanged) else "complete")
        documents = collection.documents()
        if not documents:
            st.caption("No documents yet.")
        for doc in documents:
            left, right = st.columns([5, 1])
            left.caption(f"{Path(doc.source).name} · {doc.passages} passages")
            if right.button("🗑", key=f"del-{doc.id}", help=f"Delete {Path(doc.source).name}"):
                collection.delete(doc.id)
                st.rerun()

    with st.expander("Settings", expanded=False):
        defaults = Settings.from_env()
        top_k = st.slider("Passages to read (top-k)", 1, 20, defaults.top_k, key="top_k")
        threshold = st.slider("Answer threshold", 0.0, 1.0, defaults.answer_threshold, 0.05, key="threshold",
                              help="Answers with a lower confidence are withheld; the closest passages are shown.")
        mode = st.radio("Retrieval", ["hybrid", "dense", "bm25"], key="mode", horizontal=True)
    if st.button("Clear chat"):
        st.session_state.messages = []


# --- chat -----------------------------------------------------------------------------------------------------
def show_response(index: int, response: Response) -> None:
    st.markdown(intent_badge(response.intent.label, response.intent.confidence))
    st.markdown(escape_markdown(response.reply))
    best = response.best
    if best is not None:
        passage = next((h.passage for h in response.passages if h.passage.id == best.passage_id), None)
        if passage is not None:
            st.markdown(highlighted_passage(passage.text, best.start, best.end), unsafe_allow_html=True)
        st.caption(f"Source: {source_label(best.source, best.page)} · characters {best.document_start}–"
                   f"{best.document_end} · confidence {best.score:.2f}")
    if response.passages:
        with st.expander("Other candidates and the passages consulted"):
            for answer in response.answers[1 if best else 0 :]:
                st.markdown("- " + escape_markdown(f"“{answer.text}” — {source_label(answer.source, answer.page)} "
                                                   f"(confidence {answer.score:.2f})"))
            for hit in response.passages:
                st.caption(f"{source_label(hit.passage.source, hit.passage.page)} · fused {hit.score:.4f}")
                st.text(hit.passage.text[:800])
    if response.route in ("documents", "fallback") and response.answers:
        rating = st.feedback("thumbs", key=f"feedback-{index}")
        saved = st.session_state.setdefault("feedback_saved", set())
        if rating is not None and index not in saved:
            top = response.answers[0]
            collection.add_feedback(Feedback(response.message, top.text, top.source, int(rating),
                                             top.passage_id, top.score))
            saved.add(index)
            st.toast("Thanks for the feedback!")


st.session_state.setdefault("messages", [])
if not collection.documents():
    st.info("This collection is empty. Add documents under **Documents** in the sidebar.")
for index, message in enumerate(st.session_state.messages):
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.text(message["content"])
        elif "response" in message:
            show_response(index, message["response"])
        else:
            st.error(message["content"])

if prompt := st.chat_input("Ask a question about your documents"):
    st.session_state.messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.text(prompt)
    with st.chat_message("assistant"):
        try:
            with st.spinner("Reading…"):
                response = assistant.respond(prompt, top_k=top_k, threshold=threshold, mode=mode)
        except SpanqaError as exc:
            st.session_state.messages.append({"role": "assistant", "content": str(exc)})
            st.error(str(exc))
        else:
            st.session_state.messages.append({"role": "assistant", "response": response})
            show_response(len(st.session_state.messages) - 1, response)
