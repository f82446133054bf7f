"""spanqa chat UI (`spanqa ui`): a thin door onto the service layer (plugin/doors/service.py).

Every reply is rendered from the versioned response JSON (spanqa.plugin.engine.response), the same shape the CLI,
the tools and the servers return; every spanqa error is shown as its message, never as a traceback.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import replace
from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components
from spanqa.plugin.doors.administration import FolderFollower
from spanqa.plugin.doors.service import (
    Service,
    exchange,
    interpretation,
    local_collections,
    recent_history,
    shown_location,
)
from spanqa.ui.render import escape_markdown, highlighted_passage, intent_badge, passage_block, span_view_html

from spanqa.errors import SpanqaError
from spanqa.settings import SEARCH_MODES, Settings

DEFAULT = "default"
VIEW_CONTEXT = 600  # characters the document view shows either side of a span (a dialog cannot scroll to it)
st.set_page_config(page_title="spanqa", page_icon="🔎", layout="wide")
st.markdown("<style>.spanqa-answer{background:#ffe08a;padding:0 2px;border-radius:3px}"
            ".spanqa-passage{font-size:0.92em;line-height:1.5;white-space:pre-wrap}</style>", unsafe_allow_html=True)


@st.cache_resource(show_spinner="Loading the models and the collection… (the very first time, spanqa also builds "
                                "its default collection: seconds)")
def open_service(name: str, settings: Settings) -> Service:
    """One service per collection and settings, shared by every browser session (the engine's parts lock what
    they must), all of them on one set of model weights. A name is the bundled default collection, the
    `collection` setting (a directory or a PostgreSQL URL), or a local collection under the `home` setting."""
    if name == DEFAULT:
        return Service.open(None, replace(settings, collection="")).warm_up()
    location = name if name == settings.collection else settings.home_path / "collections" / name
    return Service.open(location, settings, create=True).warm_up()


@st.cache_resource
def follow_folders(name: str, settings: Settings) -> FolderFollower:
    """The first collection following the `sync` folders while the UI runs (one watcher per process)."""
    return FolderFollower(settings.sync_roots, open_service(name, settings)).start()


def show_sync(status: dict) -> None:
    """The followed folders and what their last sync did."""
    st.caption("Following " + ", ".join(f"`{root}`" for root in status["roots"]))
    last = status["last_sync"]
    if last is None:
        st.caption("First sync running…")
    elif "error" in last:
        st.warning(f"Last sync refused: {last['error']}")
    else:
        when = time.strftime("%H:%M:%S", time.localtime(status["finished"]))
        st.caption(f"Last sync {when}: {last['added']} added, {last['updated']} updated, {last['removed']} "
                   f"removed, {last['renamed']} renamed, {last['unchanged']} unchanged, {last['skipped']} skipped")


# --- sidebar: collection, documents, settings ---------------------------------------------------------------
with st.sidebar:
    st.title("🔎 spanqa")
    door_settings = Settings.from_env()  # the door resolves the environment, once; the engine is handed it
    configured = door_settings.collection  # `spanqa ui --collection LOCATION` or $SPANQA_COLLECTION comes first
    names = ([configured] if configured else []) + [DEFAULT] + \
        [n for n in local_collections(door_settings) if n != DEFAULT]
    choice = st.selectbox("Collection", names + ["➕ New collection…"], key="collection_choice",
                          format_func=shown_location)
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
        service = open_service(choice, door_settings)
        documents = service.call("documents").data["documents"]
    except SpanqaError as exc:  # a damaged or vanished collection: say so, keep the page
        st.error(f"Could not open collection {choice!r}: {exc}")
        st.stop()
    settings = service.settings
    if door_settings.sync_roots and choice == names[0]:
        with st.expander("Synced folders", expanded=True):
            show_sync(follow_folders(choice, door_settings).status())

    with st.expander("Documents", expanded=False):
        uploads = st.file_uploader("Add documents", accept_multiple_files=True, key="uploader",
                                   type=["txt", "md", "markdown", "rst", "html", "htm", "pdf", "docx"])
        if uploads and st.button("Ingest", type="primary"):
            with st.status(f"Ingesting {len(uploads)} file(s)…", expanded=True) as status:
                try:
                    report = service.ingest([(u.name, u.getvalue()) for u in uploads],
                                            progress=lambda message, done, total: status.write(message)).value
                except SpanqaError as exc:
                    status.update(label=str(exc), state="error")
                    st.stop()
                for skipped in report.skipped:
                    st.warning(f"Skipped: {skipped.reason}")
                status.update(label=report.summary(), state="error" if report.skipped and not
                              (report.added or report.updated or report.unchanged) else "complete")
            documents = service.call("documents").data["documents"]
        if not documents:
            st.caption("No documents yet.")
        for doc in documents:
            left, right = st.columns([5, 1])
            left.caption(f"{Path(doc['source']).name} · {doc['passages']} passages")
            if right.button("🗑", key=f"del-{doc['document_id']}", help=f"Delete {Path(doc['source']).name}"):
                try:
                    service.remove(doc["document_id"])
                except SpanqaError as exc:
                    st.error(str(exc))
                else:
                    st.rerun()

    with st.expander("Settings", expanded=False):
        top_k = st.slider("Passages to read (top-k)", 1, settings.max_top_k, settings.top_k, key="top_k",
                          help=f"At most {settings.max_top_k} (the max_top_k setting).")
        threshold = st.slider("Answer threshold", 0.0, 1.0, settings.answer_threshold, 0.05, key="threshold",
                              help="Answers with a lower confidence are withheld; the closest passages are shown.")
        mode = st.radio("Retrieval", SEARCH_MODES, index=SEARCH_MODES.index(settings.retrieval_mode), key="mode",
                        horizontal=True)
    if st.button("Clear chat", help="Start a new conversation: follow-up questions are read in the light of the "
                                    "chat so far."):
        st.session_state.messages = []


# --- chat -----------------------------------------------------------------------------------------------------
def show_response(index: int, data: dict, note: str | None = None) -> None:
    """Render one reply from its response JSON (schema 1); `note`: how a follow-up was understood."""
    intent = data["intent"]
    st.markdown(intent_badge(intent["label"], intent["confidence"]))
    closest = data.get("closest") if data["abstained"] else None
    if closest is None:
        st.markdown(escape_markdown(data["reply"]))
    else:
        show_closest(closest)
        if st.button(f"Open {closest['citation']}", key=f"open-closest-{index}", icon=":material/description:"):
            open_in_document(closest)
    if note:
        st.caption(escape_markdown(note))
    best = None if data["abstained"] or not data["answers"] else data["answers"][0]
    if best is not None:
        passage = next((p for p in data["passages"] if p["passage_id"] == best["passage_id"]), None)
        if passage is not None:
            offset = passage["start"]
            st.markdown(highlighted_passage(passage["text"], best["start"] - offset, best["end"] - offset),
                        unsafe_allow_html=True)
        st.caption(f"Source: {best['citation']} · characters {best['start']}–{best['end']} · "
                   f"confidence {best['score']:.2f}")
        if st.button(f"Open {best['citation']}", key=f"open-{index}", icon=":material/description:",
                     help="The answer marked in its document (a PDF: its page, the answer boxed)"):
            open_in_document(best)
    if data["passages"]:
        with st.expander("Other candidates and the passages consulted"):
            for answer in data["answers"][1 if best else 0 :]:
                st.markdown("- " + escape_markdown(f"“{answer['text']}” — {answer['citation']} "
                                                   f"(confidence {answer['score']:.2f})"))
            for passage in data["passages"]:
                st.caption(f"{passage['citation']} · fused {passage['score']:.4f}")
                st.text(passage["text"][:800])
    # Every reply can be rated: a rated answer refits the collection's calibration, a thumbs-down on a reply that
    # did not come from the documents becomes routing data (`spanqa calibrate --routing`).
    rating = st.feedback("thumbs", key=f"feedback-{index}")
    saved = st.session_state.setdefault("feedback_saved", set())
    if rating is not None and index not in saved:
        try:
            service.call("feedback", feedback_arguments(data, int(rating)))
        except SpanqaError as exc:
            st.error(str(exc))
        else:
            saved.add(index)
            st.toast("Thanks for the feedback!")


@st.dialog("The answer in its document", width="large")
def open_in_document(span: dict) -> None:
    """A span's document around it, the span marked, and for a PDF its page with the span boxed: the page the
    span view route serves (one renderer), the image inlined since the dialog is not served by spanqa serve."""
    where = {"document_id": span["document_id"], "start": span["start"], "end": span["end"]}
    try:
        view = service.call("view", {**where, "context": VIEW_CONTEXT}).data
    except SpanqaError as exc:
        st.error(str(exc))
        return
    image = None
    if span.get("page_image"):
        try:
            image = service.call("page", {**where, "page": span["page"]}).value
        except SpanqaError as exc:  # the text view still shows the span
            st.caption(escape_markdown(str(exc)))
    inline = None if image is None else "data:image/png;base64," + base64.b64encode(image.png).decode()
    components.html(span_view_html(view, inline), height=720 if inline else 480, scrolling=True)


def show_closest(closest: dict) -> None:
    """A withheld answer: the passage most likely to hold it, quoted in full view, its best candidate marked."""
    st.markdown(escape_markdown(f"Not sure. The closest passage ({closest['citation']}) says:"))
    candidate = closest["candidate"]
    if candidate is None:
        st.markdown(passage_block(closest["text"]), unsafe_allow_html=True)
        return
    left, right = candidate["start"] - closest["start"], candidate["end"] - closest["start"]
    st.markdown(highlighted_passage(closest["text"], left, right, context=len(closest["text"])),
                unsafe_allow_html=True)
    st.caption(escape_markdown(f"Best candidate “{candidate['text']}”, confidence {candidate['score']:.2f}: below "
                               "the answer threshold, so it is shown as a quote, not given as the answer."))


def feedback_arguments(data: dict, rating: int) -> dict:
    """What a thumbs-up/down on one response says: about its answer, its abstention or its routing — and, for a
    follow-up, about the question as it was understood."""
    resolved = data.get("resolved") or {}
    understood = {"resolved": resolved["question"]} if resolved.get("follow_up") else {}
    if data["route"] in ("documents", "fallback") and not data["abstained"] and data["answers"]:
        top = data["answers"][0]
        return {"message": data["message"], "answer": top["text"], "source": top["source"], "rating": rating,
                "passage_id": top["passage_id"], "score": top["score"], "route": data["route"], **understood}
    route = "abstained" if data["route"] in ("documents", "fallback") else data["route"]
    return {"message": data["message"], "answer": data["reply"], "rating": rating, "route": route, **understood}


def chat_history(messages: list[dict], settings: Settings) -> list[dict]:
    """The chat so far as the conversation the next question is read in (the latest exchanges that fit the
    history limits). A message that got an error instead of a reply is left out with it."""
    return recent_history([exchange(message["content"], reply["response"])
                           for message, reply in zip(messages[::2], messages[1::2], strict=False)
                           if "response" in reply], settings)


st.session_state.setdefault("messages", [])
if not documents:
    st.info("This collection is empty. Add documents under **Documents** in the sidebar.")
for index, message in enumerate(st.session_state.messages):
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.text(message["content"])
        elif "response" in message:
            show_response(index, message["response"], message.get("note"))
        else:
            st.error(message["content"])

if prompt := st.chat_input("Ask a question about your documents"):
    history = chat_history(st.session_state.messages, settings)
    st.session_state.messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.text(prompt)
    with st.chat_message("assistant"):
        try:
            with st.spinner("Reading…"):
                data = service.ask(prompt, top_k=top_k, min_score=threshold, mode=mode, history=history or None).data
        except SpanqaError as exc:
            st.session_state.messages.append({"role": "assistant", "content": str(exc)})
            st.error(str(exc))
        else:
            note = interpretation(data, history)
            st.session_state.messages.append({"role": "assistant", "response": data, "note": note})
            show_response(len(st.session_state.messages) - 1, data, note)
