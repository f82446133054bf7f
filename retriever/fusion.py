"""Reciprocal-rank fusion of ranked lists (Cormack et al. 2009), with a weight per list.

RRF uses ranks, not scores, because cosine similarities and BM25 scores live on different scales; a passage's
fused score is sum_i w_i / (k + rank_i), rank starting at 1, summed over the lists that contain it.
"""

from __future__ import annotations

from dataclasses import dataclass

from spanqa.retriever.records import Hit

from spanqa.errors import InputError

__all__ = ["FusedItem", "fuse_hits", "reciprocal_rank_fusion"]


@dataclass
class FusedItem:
    id: int
    score: float
    ranks: dict[str, int]
    scores: dict[str, float]


def reciprocal_rank_fusion(
    ranked: dict[str, list[tuple[int, float]]], weights: dict[str, float] | None = None, k: int = 60,
) -> list[FusedItem]:
    """Fuse named ranked lists of (id, score), best first. Lists with weight 0 are skipped.

    Returns every id found, best fused score first; ties keep the order of first appearance.
    """
    if k < 0:
        raise InputError(f"k must be non-negative, got {k}")
    weights = weights or {}
    fused: dict[int, FusedItem] = {}
    for name, items in ranked.items():
        weight = weights.get(name, 1.0)
        if weight == 0:
            continue
        for rank, (item_id, score) in enumerate(items, start=1):
            entry = fused.setdefault(item_id, FusedItem(item_id, 0.0, {}, {}))
            if name in entry.ranks:  # a list that repeats an id counts it once, at its best rank
                continue
            entry.score += weight / (k + rank)
            entry.ranks[name] = rank
            entry.scores[name] = score
    return sorted(fused.values(), key=lambda e: e.score, reverse=True)


def fuse_hits(ranked: dict[str, list[Hit]], k: int, weights: dict[str, float] | None = None) -> list[Hit]:
    """The best `k` passages of several searches' hits, by weighted reciprocal-rank fusion; each passage keeps the
    Hit (and its retrieval scores) of the first list that found it."""
    first: dict[int, Hit] = {}
    for hits in ranked.values():
        for hit in hits:
            first.setdefault(hit.passage.id, hit)
    fused = reciprocal_rank_fusion({name: [(h.passage.id, h.score) for h in hits] for name, hits in ranked.items()},
                                   weights)
    return [first[item.id] for item in fused[:k]]
