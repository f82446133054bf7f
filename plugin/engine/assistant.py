"""The engine: route a message, then retrieve, extract and cite — or reply in kind.

The CLI, the LangChain tools and the chat UI all call `Assistant.respond` (or `answer`, which skips routing),
so behaviour is the same behind every door.

When does spanqa abstain? One tunable number, `Settings.answer_threshold` (default 0.3), applies to the answer
confidence: the probability that the answer is right. The reader proposes candidate spans from every retrieved
passage; the answer ranker (plugin/engine/ranking.py) scores each with everything the engine knows (the reader's
margin, agreement across passages, retrieval ranks and cosine, answer-type fit) and orders them; the collection's
own calibration (`spanqa calibrate`, identity until fitted) then adjusts the scale to that collection's documents.
A span from a passage the embedder finds unrelated (cosine <= 0.05) is never an answer, so an empty or off-topic
collection cannot produce a confident quote.

Below the threshold the answer is withheld, and the reply says spanqa is not sure and quotes the passage most likely
to hold the answer, its best candidate marked (plugin/engine/closest.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from spanqa.plugin.engine.closest import Closest, closest_passage
from spanqa.plugin.engine.conversation import Resolution, resolve, standalone
from spanqa.plugin.engine.models import shared_model, shared_reader, shared_router
from spanqa.plugin.engine.ranking import CALIBRATION_SETTING, AnswerRanker, ScoreCalibration
from spanqa.plugin.engine.reader import Answer, Reader, combine_answers
from spanqa.plugin.engine.requests import parse, turns
from spanqa.plugin.engine.response import Response, citation
from spanqa.plugin.engine.router import INTENTS, Intent, Router
from spanqa.plugin.engine.term_selection import TermSelector
from spanqa.plugin.engine.text_kind import looks_technical
from spanqa.retriever import Collection, Embedder, Hit
from spanqa.retriever.fusion import fuse_hits

from spanqa.errors import InputError, InvalidRequest
from spanqa.settings import Settings

__all__ = ["Assistant", "Response", "ROUTES", "REPLIES", "CANDIDATES", "answer_settled", "passage_relevance"]

UNCALIBRATED = ScoreCalibration()  # the ranker's own probabilities

# intent → handler. A message the router is unsure about (below its threshold) takes the "fallback" route:
# it tries the documents, but answers only when the answer clears a stricter bar (FALLBACK_THRESHOLD), because
# a wrong extract is worse than a polite "I am not sure what you mean".
ROUTES: dict[str, str] = {intent: {"document_question": "documents", "help": "help"}.get(intent, "reply")
                          for intent in INTENTS}
FALLBACK_THRESHOLD = 0.6
# How a follow-up's passages weigh the search with the conversation's words against the message's own search
# (reciprocal-rank fusion weights). Measured on the conversation development set (python -m bench conversations,
# README): the conversation alone found the gold passage as often (recall@5 94.4) but lost follow-ups that move to
# a related document; equal weights cost 4 points of recall; the resolved question instead of the message, 4 too.
FOLLOW_UP_FUSION = {"conversation": 1.0, "message": 0.5}
# Replies a follow-up keeps even after a conversation ("thanks!" after an answer is thanks, not a question).
CHITCHAT = ("greeting", "thanks", "goodbye")
HANDLERS = {"documents", "reply", "help", "fallback"}

REPLIES: dict[str, str] = {
    "greeting": "Hello! Ask me anything about your documents and I will quote the answer with its source.",
    "thanks": "You're welcome! Ask another question whenever you like.",
    "goodbye": "Goodbye! Your documents will be here when you come back.",
    "smalltalk": "I'm a document assistant, so I'm better at your files than at chatting. "
                 "Try asking a question about your documents.",
    "out_of_scope": "I can't do that: I only answer questions from the documents in this collection.",
}


# Candidate spans the reader proposes per question for the ranker to order (the ranker sees all of them; a door
# shows the top-k). More cost nothing measurable: decoding is a sort per window, the forward pass is the same.
CANDIDATES = 20


@dataclass
class Reading:
    """What reading gave one question: its ranked answers, and the windows and passages read for them."""

    answers: list[Answer] = field(default_factory=list)
    windows: int = 0
    passages: int = 0
    reader: str = "general"  # which reader read them: "general" or "technical"


def _readable(hits: list[Hit]) -> list[Hit]:
    """The hits worth reading: a passage the embedder finds unrelated never gives an answer (module docstring)."""
    return [h for h in hits if passage_relevance(h.dense_score) > 0.0]


def _distinct(readers: list[Reader]) -> list[Reader]:
    """Each reader once, in first-use order (a batch's questions share at most two)."""
    return list({id(r): r for r in readers}.values())


def answer_settled(ranked: list[Answer], stop_score: float) -> bool:
    """Whether reading more passages is unlikely to change the answer: the best so far scores `stop_score` or
    more. A confident answer from the top-ranked passages is rarely beaten by a lower-ranked one; how rarely, and
    what the rule costs in F1, is measured by `python -m bench.adaptive`."""
    return bool(ranked) and ranked[0].score >= stop_score


def by_options(requests: list, run) -> list:
    """`run(group, top_k, min_score, mode)` for each group of requests that share their options, the results in the
    requests' order (a batch searches with one k and reads against one threshold)."""
    groups: dict[tuple, list[int]] = {}
    for i, request in enumerate(requests):
        groups.setdefault((request.top_k, request.min_score, request.mode), []).append(i)
    results: list = [None] * len(requests)
    for options, members in groups.items():
        for i, result in zip(members, run([requests[i] for i in members], *options), strict=True):
            results[i] = result
    return results


def passage_relevance(cosine: float | None) -> float:
    """How strongly retrieval supports a passage, from 0 (unrelated) to 1; see the module docstring."""
    if cosine is None:
        return 1.0  # BM25-only search matched the question's words: no dense evidence either way
    return min(1.0, max(0.0, (cosine - 0.05) / 0.25))


class Assistant:
    """Route → retrieve → extract → cited answer.

    Usage:
        assistant = Assistant("my-collection")
        response = assistant.respond("When was the tower built?")
        print(response.reply)

    Args:
        collection: a Collection, a collection directory or PostgreSQL URL, or None for the `collection` setting
            or else the default collection.
        retriever: instead of a collection, any LangChain retriever (e.g. `vector_store.as_retriever()`): spanqa
            reads and cites what it returns (see spanqa.retriever.langchain_source).
        reader: the extractive reader (default: the shipped general one, at `settings.reader_precision`).
        technical_reader: the reader for passages that read like technical documentation, chosen per question
            by `settings.reader_domain` (default: the shipped technical one, loaded on first use; when `reader` is
            given and this is not, `reader` reads everything).
        ranker: orders the reader's candidates across passages (default: the shipped one). `rank=False` keeps
            the reader's own margin order × passage relevance instead (spanqa before the ranker).
        router: the intent classifier (default: the default router, trained on first use).
        settings: top-k, threshold, retrieval mode, limits (default: the defaults; a door passes
            `Settings.from_env()`, see spanqa.plugin.doors.service).
        routes: overrides of the intent → handler table (handlers: documents, reply, help, fallback), e.g.
            {"smalltalk": "documents"} to send small talk to the documents too.
    """

    def __init__(self, collection: Collection | str | Path | None = None, reader: Reader | None = None,
                 router: Router | None = None, settings: Settings | None = None,
                 routes: dict[str, str] | None = None, ranker: AnswerRanker | None = None,
                 rank: bool = True, retriever=None, technical_reader: Reader | None = None) -> None:
        self.settings = settings or Settings()  # a door resolves the environment: Settings.from_env()
        self.routes = {**ROUTES, **(routes or {})}
        unknown = set(self.routes.values()) - HANDLERS
        if unknown:
            raise InputError(f"unknown route handler(s) {sorted(unknown)}; choose from {sorted(HANDLERS)}")
        if retriever is not None:
            if collection is not None:
                raise InputError("give a collection or a retriever, not both")
            from spanqa.retriever.langchain_source import RetrieverCollection

            collection = RetrieverCollection(retriever, Embedder(self.settings.embedder_path,
                                                                 precision=self.settings.embedder_precision,
                                                                 device=self.settings.device),
                                             limits=self.settings.collection_limits())
        self._collection_arg = collection
        self._collection: Collection | None = collection if isinstance(collection, Collection) else None
        precision, device = self.settings.reader_precision, self.settings.device
        self.reader = reader or shared_reader(self.settings.reader_path, precision, device)
        if technical_reader is None and reader is None:
            technical_reader = shared_reader(self.settings.technical_reader_path, precision, device)
        self.technical_reader = technical_reader
        self._router = router
        self.ranker = (ranker or AnswerRanker.load()) if rank else None
        path = self.settings.term_selector_path
        self.term_selector = shared_model(("term_selector", str(path)), lambda: TermSelector.load(path))

    @property
    def collection(self) -> Collection:
        if self._collection is None:
            from spanqa.plugin.engine.collections import open_collection

            self._collection = open_collection(self._collection_arg, settings=self.settings)
        return self._collection

    @property
    def router(self) -> Router:
        if self._router is None:
            from spanqa.plugin.engine.defaults import router_location

            self._router = shared_router(router_location(self.settings), self.settings)
        return self._router

    def warm_up(self) -> None:
        """Load the models every message may need now rather than on the first message. The technical reader
        loads on the first question whose passages need it (about a second, once): prose never pays its memory."""
        _ = self.collection
        self.router.warm_up()
        self.reader.warm_up()

    # --- the verbs, on checked requests (plugin/engine/requests.py): what the service calls -----------------

    def run_classify(self, request) -> Intent:
        return self.router.classify(request.message)

    def run_search(self, request) -> list[Hit]:
        k = request.k if request.k is not None else self.settings.top_k
        mode = request.mode if request.mode is not None else self.settings.retrieval_mode
        return self.collection.search(request.query, k=k, mode=mode)

    def run_ask(self, requests: list) -> list[Response]:
        """Route each message, then answer it from the documents or reply in kind: one router pass, one embedding
        call and one search for the requests that share options, their passages read in shared reader batches.
        Each response is what asking alone would give; its timings are those of its batch's stages."""
        return by_options(requests, self._respond_group)

    def run_answer(self, requests: list, intent: Intent | None = None) -> list[Response]:
        """Answer each question from the documents, without routing; `intent`: what a caller that routed the
        questions itself recorded."""
        intent = intent or Intent("document_question", 1.0, False)

        def answer(group: list, top_k: int | None, threshold: float | None, mode: str | None) -> list[Response]:
            threshold = threshold if threshold is not None else self.settings.answer_threshold
            return self._answer_many(self._resolutions(group), [intent] * len(group), top_k, mode,
                                     [threshold] * len(group))

        return by_options(requests, answer)

    # --- the same verbs for Python callers: their arguments checked by the same contract --------------------

    def check(self, operation: str, **arguments) -> Any:
        """`arguments` checked as `operation`'s request (InvalidRequest names each bad field)."""
        return parse(self.settings, operation, arguments)

    def classify(self, message: str) -> Intent:
        return self.run_classify(self.check("classify", message=message))

    def search(self, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        return self.run_search(self.check("search", query=query, k=k, mode=mode))

    def respond(self, message: str, top_k: int | None = None, threshold: float | None = None,
                mode: str | None = None, history: Sequence[Any] | None = None) -> Response:
        """Answer a chat message: route it, then answer from the documents or reply in kind. `history`: the
        conversation's earlier messages, oldest first, as `{"role": "user" | "assistant", "content": str}`
        (optionally with the earlier response's JSON as "response"); a follow-up is read in their light
        (plugin/engine/conversation.py). None or [] answers the message alone."""
        return self.respond_many([message], top_k, threshold, mode, None if history is None else [history])[0]

    def respond_many(self, messages: list[str], top_k: int | None = None, threshold: float | None = None,
                     mode: str | None = None, histories: Sequence[Sequence[Any] | None] | None = None
                     ) -> list[Response]:
        """`respond` for several messages at once (each with its own history, when given)."""
        return self.run_ask(self._checked("ask", messages, top_k, threshold, mode, histories))

    def answer(self, question: str, top_k: int | None = None, threshold: float | None = None,
               mode: str | None = None, history: Sequence[Any] | None = None,
               intent: Intent | None = None) -> Response:
        """Answer from the documents, without routing (what the `document_qa` tool does); `history` as in
        `respond`; `intent`: what a caller that routed the question itself recorded."""
        return self.run_answer(self._checked("answer", [question], top_k, threshold, mode,
                                             None if history is None else [history]), intent)[0]

    def answer_many(self, questions: list[str], top_k: int | None = None, threshold: float | None = None,
                    mode: str | None = None, histories: Sequence[Sequence[Any] | None] | None = None
                    ) -> list[Response]:
        """`answer` for several questions at once (one embedding call, one search, shared reader batches)."""
        return self.run_answer(self._checked("answer", questions, top_k, threshold, mode, histories))

    def _checked(self, operation: str, questions: list[str], top_k: int | None, threshold: float | None,
                 mode: str | None, histories: Sequence[Sequence[Any] | None] | None) -> list:
        if histories is not None and len(histories) != len(questions):
            raise InvalidRequest(f"{len(questions)} questions but {len(histories)} histories: give one per question")
        histories = histories if histories is not None else [None] * len(questions)
        return [self.check(operation, question=q, top_k=top_k, min_score=threshold, mode=mode, history=h)
                for q, h in zip(questions, histories, strict=True)]

    # --- answering ---------------------------------------------------------------------------------------

    def _respond_group(self, requests: list, top_k: int | None, threshold: float | None,
                       mode: str | None) -> list[Response]:
        router = self.router  # loads the router outside the timed stages
        started = time.perf_counter()
        resolutions = self._resolutions(requests)
        resolved = time.perf_counter()
        intents = self._route(router, resolutions)
        route_ms = (time.perf_counter() - resolved) * 1000
        routes = [self.route_for(intent) for intent in intents]
        base = threshold if threshold is not None else self.settings.answer_threshold
        to_documents = [i for i, route in enumerate(routes) if route in ("documents", "fallback")]
        answered = dict(zip(to_documents, self._answer_many(
            [resolutions[i] for i in to_documents], [intents[i] for i in to_documents], top_k, mode,
            [max(base, FALLBACK_THRESHOLD) if routes[i] == "fallback" else base for i in to_documents]),
            strict=True))
        responses = []
        for i, (resolution, intent, route) in enumerate(zip(resolutions, intents, routes, strict=True)):
            response = answered[i] if i in answered else self._reply_in_kind(resolution.message, intent, route)
            response.route = route
            if route == "fallback" and response.abstained:
                # Not understood, so nothing is quoted as if it were: the reply asks again instead.
                response.closest = None
                response.reply = ("I'm not sure what you mean, and the documents don't answer it clearly. "
                                  + self._help_text())
            response.timings["resolve_ms"] = (resolved - started) * 1000
            response.timings["route_ms"] = route_ms
            response.timings["total_ms"] = (time.perf_counter() - started) * 1000
            responses.append(response)
        return responses

    def _reply_in_kind(self, message: str, intent: Intent, route: str) -> Response:
        if route == "help":
            return Response(message, intent, route, self._help_text())
        return Response(message, intent, route, REPLIES.get(intent.label, REPLIES["smalltalk"]))

    def _resolutions(self, requests: list) -> list[Resolution]:
        """How each checked question is understood after its history (standalone without one)."""
        return [resolve(r.question, turns(r.history), self.term_selector) if r.history else standalone(r.question)
                for r in requests]

    def _route(self, router: Router, resolutions: list[Resolution]) -> list[Intent]:
        """Each message's intent. A follow-up the router does not send to the documents on its own words ("and by
        whom?" reads like small talk) is classified again as understood, unless it is confident chit-chat
        ("thanks!" after an answer is still thanks)."""
        intents = router.classify_many([r.message for r in resolutions])
        again = [i for i, (r, intent) in enumerate(zip(resolutions, intents, strict=True))
                 if r.follow_up and self.route_for(intent) != "documents"
                 and (intent.below_threshold or intent.label not in CHITCHAT)]
        if again:
            for i, intent in zip(again, router.classify_many([resolutions[i].question for i in again]), strict=True):
                if self.route_for(intent) == "documents":
                    intents[i] = intent
        return intents

    def route_for(self, intent: Intent) -> str:
        """The handler a classified message goes to: documents, reply, help or fallback."""
        return "fallback" if intent.below_threshold else self.routes.get(intent.label, "fallback")

    def _answer_many(self, resolutions: list[Resolution], intents: list[Intent], top_k: int | None,
                     mode: str | None, thresholds: list[float]) -> list[Response]:
        """Answer checked, resolved questions from the documents, each against its own threshold: each searches
        its resolution's query and reads its resolved question."""
        if not resolutions:
            return []
        started = time.perf_counter()
        top_k = top_k if top_k is not None else self.settings.top_k
        mode = mode if mode is not None else self.settings.retrieval_mode
        questions = [r.question for r in resolutions]
        found = self._search_resolved(resolutions, top_k, mode)
        if not any(found) and len(self.collection) == 0:
            return [Response(r.message, intent, "documents", "The collection is empty: add documents first (upload "
                             "them in the sidebar, or run `spanqa ingest PATH`).", abstained=True, resolved=r)
                    for r, intent in zip(resolutions, intents, strict=True)]
        calibration = self.calibration() if self.ranker is not None else None  # one read per batch, not per question
        readers = [self.reader_for(hits) for hits in found]
        for reader in _distinct(readers):
            reader.warm_up()  # model loading is not part of any stage's latency
        retrieved = time.perf_counter()
        read = self._read_and_rank(questions, found, readers, top_k, calibration)
        done_reading = time.perf_counter()
        responses = []
        for resolution, intent, hits, reading, threshold in zip(resolutions, intents, found, read, thresholds,
                                                                 strict=True):
            answers = reading.answers
            abstained = not answers or answers[0].score < threshold
            response = Response(resolution.message, intent, "documents", "", answers, hits, abstained,
                                reader=reading.reader, resolved=resolution)
            if abstained:
                response.closest = closest_passage(answers, hits, self.settings.max_quote_chars)
                response.reply = self._abstention_text(response.closest)
            else:
                response.reply = self._answer_text(answers[0])
            response.timings.update({"retrieve_ms": (retrieved - started) * 1000,
                                     "read_ms": (done_reading - retrieved) * 1000,
                                     "reader_windows": float(reading.windows),
                                     "passages_read": float(reading.passages)})
            responses.append(response)
        return responses

    def _search_resolved(self, resolutions: list[Resolution], k: int, mode: str) -> list[list[Hit]]:
        """Each resolution's passages, in one search call. A follow-up's are those of its query (the message with
        the conversation's words) fused with those of the message alone (reciprocal-rank fusion, FOLLOW_UP_FUSION):
        the conversation's words find the topic, and a follow-up that moves to a related document keeps some of
        the passages its own words find."""
        follow_ups = [i for i, r in enumerate(resolutions) if r.follow_up]
        found = self.collection.search_many([r.query for r in resolutions] +
                                            [resolutions[i].message for i in follow_ups], k=k, mode=mode)
        hits, own = found[:len(resolutions)], found[len(resolutions):]
        for i, alone in zip(follow_ups, own, strict=True):
            hits[i] = fuse_hits({"conversation": hits[i], "message": alone}, k, FOLLOW_UP_FUSION)
        return hits

    def reader_for(self, hits: list[Hit]) -> Reader:
        """The reader for one question's retrieved passages (all of them, so that every round of adaptive
        reading uses the same one): `settings.reader_domain`, where "auto" asks `looks_technical`, each passage
        weighed by its relevance (an unrelated one has no say)."""
        domain = self.settings.reader_domain
        if self.technical_reader is None or domain == "general":
            return self.reader
        if domain == "technical" or self.technical_text(hits):
            return self.technical_reader
        return self.reader

    @staticmethod
    def technical_text(hits: list[Hit]) -> bool:
        """Whether one question's passages read like technical documentation, each weighed by its relevance (an
        unrelated one has no say): what picks the technical reader in "auto" and the ranker's technical model."""
        return looks_technical([h.passage.text for h in hits], [passage_relevance(h.dense_score) for h in hits])

    def reader_name(self, reader: Reader) -> str:
        """"general" or "technical": which of the assistant's readers `reader` is (the ranker scales each's own)."""
        return "general" if reader is self.reader else "technical"

    def _read_and_rank(self, questions: list[str], found: list[list[Hit]], readers: list[Reader], top_k: int,
                       calibration: ScoreCalibration | None) -> list[Reading]:
        """Each question's ranked answers and what was read for them, each question by its reader. Adaptive
        reading: the first `read_first` passages of every question are read in one shared pass, the rest only
        for the questions whose best answer is not yet settled (`answer_settled`); 0 reads everything at once."""
        first = self.settings.read_first
        rounds = ((0, first), (first, None)) if first else ((0, None),)
        readings = [Reading(reader=self.reader_name(r)) for r in readers]
        technical = [self.technical_text(hits) for hits in found]
        candidates: list[list[Answer]] = [[] for _ in questions]
        pending = list(range(len(questions)))
        for low, high in rounds:
            pending = [i for i in pending if found[i][low:high]]
            read = self.read_candidates_many([questions[i] for i in pending], [found[i][low:high] for i in pending],
                                              [readers[i] for i in pending])
            for i, (answers, windows) in zip(pending, read, strict=True):
                candidates[i] = combine_answers(candidates[i] + answers, CANDIDATES)
                # Uncalibrated here: the stop rule was chosen on the ranker's own scores, so a collection's
                # calibration must not change how much is read (it did: a steep fit settled every question early).
                readings[i].answers = self.rank(questions[i], candidates[i], found[i], top_k, UNCALIBRATED,
                                                readings[i].reader, technical[i])
                readings[i].windows += windows
                readings[i].passages += len(_readable(found[i][low:high]))
            pending = [i for i in pending if not answer_settled(readings[i].answers, self.settings.read_stop_score)]
        if self.ranker is not None:
            calibration = calibration or self.calibration()
            for reading in readings:
                reading.answers = sorted((replace(a, score=calibration.probability(a.score)) for a in reading.answers),
                                         key=lambda a: a.score, reverse=True)
        return readings

    def read_candidates(self, question: str, hits: list[Hit]) -> tuple[list[Answer], int]:
        """The reader's candidate spans from the passages of `hits`, and the number of windows read. The ranker's
        training data comes from here too, so it learns from what it will see."""
        return self.read_candidates_many([question], [hits], [self.reader_for(hits)])[0]

    def read_candidates_many(self, questions: list[str], found: list[list[Hit]],
                              readers: list[Reader]) -> list[tuple[list[Answer], int]]:
        """Each question's candidates from its reader; the questions of one reader share its batches."""
        items = [(q, [h.passage for h in _readable(hits)]) for q, hits in zip(questions, found, strict=True)]
        results: list = [None] * len(items)
        for reader in _distinct(readers):
            mine = [i for i, r in enumerate(readers) if r is reader]
            for i, result in zip(mine, reader.read_many([items[i] for i in mine], top_k=CANDIDATES),
                                 strict=True):
                results[i] = result
        # A document deleted while its passages were being read must not be cited.
        alive = self.collection.existing({a.passage_id for r in results for a in r.answers})
        return [([a for a in result.answers if a.passage_id in alive], result.windows) for result in results]

    def rank(self, question: str, candidates: list[Answer], hits: list[Hit], top_k: int,
             calibration: ScoreCalibration | None = None, reader: str = "general",
             technical: bool | None = None) -> list[Answer]:
        """The `top_k` best candidates, best first, each scored with its probability of being right.
        `calibration`: the collection's (read from it when not given; a batch reads it once); `reader`: which
        reader read the candidates ("general" or "technical", `reader_name`); `technical`: whether the passages
        read like technical documentation (`technical_text(hits)` when not given)."""
        relevance = {h.passage.id: passage_relevance(h.dense_score) for h in hits}
        if self.ranker is None:  # the reader's top-k by margin, rescored by passage relevance
            ranked = [replace(a, score=a.score * relevance.get(a.passage_id, 0.0)) for a in candidates[:top_k]]
        else:
            calibration = calibration or self.calibration()
            ranked = [replace(a, score=calibration.probability(a.score))
                      for a in self.ranker.rank(question, candidates, hits, reader,
                                                self.technical_text(hits) if technical is None else technical)]
        ranked.sort(key=lambda a: a.score, reverse=True)
        return ranked[:top_k]

    def calibration(self) -> ScoreCalibration:
        """The collection's answer calibration (identity until `spanqa calibrate` fits one)."""
        return ScoreCalibration.from_json(self.collection.get_setting(CALIBRATION_SETTING))

    # --- wording -----------------------------------------------------------------------------------------

    @staticmethod
    def _answer_text(answer: Answer) -> str:
        return f"“{answer.text}” — {citation(answer.source, answer.page)} (confidence {answer.score:.2f})"

    @staticmethod
    def _abstention_text(closest: Closest | None) -> str:
        if closest is None:
            return "The documents don't answer that: no passage matched the question."
        where = citation(closest.passage.source, closest.passage.page)
        return f"Not sure. The closest passage ({where}) says: “{closest.marked}”"

    def _help_text(self) -> str:
        documents = len(self.collection.documents())
        return (f"I answer questions from the {documents} document(s) in this collection by quoting the passage "
                "that holds the answer, with its source and page. Ask a question such as “What does the "
                "warranty cover?”, upload documents in the sidebar (or run `spanqa ingest PATH`), and adjust "
                "top-k, the answer threshold and the retrieval mode in the settings.")
