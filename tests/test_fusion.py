from __future__ import annotations

import pytest
from spanqa.retriever.fusion import reciprocal_rank_fusion


def test_rrf_rewards_agreement():
    fused = reciprocal_rank_fusion({"dense": [(1, 0.9), (2, 0.8), (3, 0.1)], "bm25": [(2, 7.0), (4, 3.0)]}, k=60)
    assert [f.id for f in fused] == [2, 1, 4, 3]
    top = fused[0]
    assert top.ranks == {"dense": 2, "bm25": 1} and top.scores == {"dense": 0.8, "bm25": 7.0}
    assert top.score == pytest.approx(1 / 62 + 1 / 61)


def test_weights_and_zero_weight():
    ranked = {"dense": [(1, 0.9)], "bm25": [(2, 5.0)]}
    assert reciprocal_rank_fusion(ranked, {"bm25": 2.0})[0].id == 2
    only_dense = reciprocal_rank_fusion(ranked, {"bm25": 0.0})
    assert [f.id for f in only_dense] == [1]


def test_empty_lists():
    assert reciprocal_rank_fusion({"dense": [], "bm25": []}) == []


def test_fusion_finds_the_passage_both_retrievers_rank_second():
    # Each retriever is misled by a different passage; the one both rank second is the consensus answer.
    fused = reciprocal_rank_fusion({"dense": [(10, 0.8), (7, 0.7), (11, 0.2)], "bm25": [(20, 9.0), (7, 8.0)]})
    assert fused[0].id == 7
