"""A run ends on an earlier round only when it beats the last beyond the evaluation's noise."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from list_engine.round_choice import _macro_f1, clearly_better


def test_seven_examples_cannot_rank_two_rounds():
    gold = [0, 1, 0, 1, 0, 1, 0]
    a = [0, 1, 0, 1, 0, 1, 1]  # 6 of 7
    b = [0, 1, 0, 1, 0, 0, 1]  # 5 of 7: one example apart
    assert not clearly_better(gold, a, b, 2)
    assert not clearly_better(gold, a, a, 2)  # the same predictions never win


def test_a_real_difference_on_many_examples_is_seen():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 600)
    a = np.where(rng.random(600) < 0.85, gold, (gold + 1) % 3)  # about 85 % right
    b = np.where(rng.random(600) < 0.75, gold, (gold + 1) % 3)  # about 75 % right
    assert clearly_better(gold, a, b, 3)
    assert not clearly_better(gold, b, a, 3)
    assert clearly_better(gold, a, b, 3, metric="macro_f1")


def test_macro_f1_matches_sklearn_including_absent_classes():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 4, (5, 40))
    pred = rng.integers(0, 3, (5, 40))  # class 3 never predicted
    ours = _macro_f1(gold, pred, 4)
    for i in range(5):
        ref = f1_score(gold[i], pred[i], labels=[0, 1, 2, 3], average="macro", zero_division=0)
        assert abs(ours[i] - ref) < 1e-12


def test_mismatched_or_empty_predictions_never_win():
    assert not clearly_better([], [], [], 2)
    assert not clearly_better([0, 1], [0, 1], [0], 2)
