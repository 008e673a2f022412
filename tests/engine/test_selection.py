"""list_engine.selection: uncertainty, diverse and uncertain + diverse picks."""

from __future__ import annotations

import numpy as np
import pytest

from list_engine.selection import (
    diverse,
    neighbourhood_uncertainty,
    uncertain_diverse,
    uncertain_regions,
    uncertainty,
)


def test_margin_and_entropy():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.6, 0.4]])
    assert uncertainty(p).tolist() == pytest.approx([1.0, 0.2, 0.8])
    ent = uncertainty(p, "entropy")
    assert ent[0] == pytest.approx(1.0) and ent[1] < ent[2] < ent[0]
    three = np.array([[0.4, 0.4, 0.2], [0.5, 0.3, 0.2]])
    assert uncertainty(three).tolist() == pytest.approx([1.0, 0.8])  # top two only
    with pytest.raises(ValueError, match="kind must be one of"):
        uncertainty(p, "variance")
    with pytest.raises(ValueError, match="C >= 2"):
        uncertainty(np.ones((3, 1)))


def _blobs(seed=0):
    """Four well separated groups of 25 points."""
    rng = np.random.default_rng(seed)
    centres = np.eye(4) * 10
    x = np.concatenate([c + rng.normal(scale=0.3, size=(25, 4)) for c in centres])
    return x, np.repeat(np.arange(4), 25)


def test_diverse_covers_every_group():
    x, group = _blobs()
    picks = diverse(x, 4)
    assert sorted(group[picks]) == [0, 1, 2, 3]


def test_uncertain_diverse_spreads_the_uncertain_picks():
    x, group = _blobs()
    scores = np.zeros(100)
    scores[:25] = 0.9 + np.linspace(0, 0.05, 25)  # group 0 is the most uncertain...
    scores[25:50] = 0.6  # ...then group 1, ...
    scores[50:] = 0.1
    plain = np.argsort(-scores)[:2]
    assert set(group[plain]) == {0}  # plain uncertainty: two near-copies
    picks = uncertain_diverse(scores, x, 2, pool_factor=25)
    assert sorted(group[picks]) == [0, 1]
    assert 24 in picks  # the most uncertain of group 0
    assert len(uncertain_diverse(scores, x, 0)) == 0


def test_neighbourhood_uncertainty_averages_over_the_nearest():
    x = np.array([[1.0, 0.0], [0.99, 0.1], [0.98, 0.2], [0.0, 1.0], [0.1, 0.99]])
    scores = np.array([0.9, 0.6, 0.3, 1.0, 0.0])
    assert neighbourhood_uncertainty(scores, x, k=2)[:3].tolist() == pytest.approx([0.6] * 3)
    assert neighbourhood_uncertainty(scores, x, k=1)[3:].tolist() == pytest.approx([0.5, 0.5])
    assert neighbourhood_uncertainty(scores, x, k=0).tolist() == pytest.approx(scores.tolist())
    chunked = neighbourhood_uncertainty(scores, x, k=2, chunk=2)  # same answer in row chunks
    assert chunked.tolist() == pytest.approx(neighbourhood_uncertainty(scores, x, k=2).tolist())
    with pytest.raises(ValueError, match="5 scores but 4 embeddings"):
        neighbourhood_uncertainty(scores, x[:4])


def test_uncertain_regions_prefers_a_confusing_region_to_a_lone_ambiguous_text():
    x, group = _blobs()
    x[30:40, 2] += 3.0  # group 1 has a sub-group (cosine: another direction)...
    scores = np.full(100, 0.1)
    scores[30:40] = 0.7  # ...that the model confuses
    scores[3] = 1.0  # group 0: one ambiguous text among texts the model is sure of
    picks = uncertain_regions(scores, x, 4, k=9)
    assert sorted(group[picks]) == [0, 1, 2, 3]  # one per cluster: coverage first
    assert any(30 <= p < 40 for p in picks)  # group 1's pick comes from the confusing region
    region = neighbourhood_uncertainty(scores, x, k=9)
    assert region[3] < region[30:40].min()  # the lone ambiguous text's neighbours are sure
    plain = uncertain_diverse(scores, x, 2, pool_factor=6)
    assert 3 in plain  # the per-example strategy takes it first
    assert len(uncertain_regions(scores, x, 0)) == 0
