"""The evaluation maths (app/services/evaluation.py) against published values and sklearn."""

from __future__ import annotations

import numpy as np
import pytest

from app.services import evaluation as ev


def test_wilson_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17, table I: 81/263 and 15/148.
    lo, hi = ev.wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = ev.wilson_interval(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)
    # 0 of 10 is not "exactly 0 %": the interval reaches about 28 %.
    lo, hi = ev.wilson_interval(0, 10)
    assert lo == 0.0 and 0.27 < hi < 0.28
    assert ev.wilson_interval(0, 0) is None
    with pytest.raises(ValueError, match="between 0 and n"):
        ev.wilson_interval(11, 10)


def test_newcombe_difference_interval():
    # Newcombe (1998b), Statistics in Medicine 17, table II, example (a): 56/70 - 48/80.
    lo, hi = ev.difference_interval(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)


def test_macro_f1_agrees_with_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    gold, pred = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    pred[pred == 3] = 2  # class 3 never predicted: F1 0, as with zero_division=0
    expected = f1_score(gold, pred, labels=[0, 1, 2, 3], average="macro", zero_division=0)
    assert ev.macro_f1(gold, pred, 4) == pytest.approx(expected)


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 3, 60)
    pred = np.where(rng.random(60) < 0.7, gold, rng.integers(0, 3, 60))
    point = ev.macro_f1(gold, pred, 3)
    lo, hi = ev.bootstrap_macro_f1(gold, pred, 3, n_boot=500, seed=3)
    assert lo < point < hi and hi - lo > 0.1  # 60 examples: a wide interval
    assert ev.bootstrap_macro_f1(gold, pred, 3, n_boot=500, seed=3) == (lo, hi)
    assert ev.bootstrap_macro_f1([0, 1] * 10, [0, 1] * 10, 2) == (1.0, 1.0)  # always right
    assert ev.bootstrap_macro_f1([], [], 2) is None


def test_reliability_bins_and_ece_by_hand():
    conf = [0.55, 0.58, 0.95, 1.0]
    correct = [True, False, True, True]
    bins, ece = ev.reliability(conf, correct, bins=10)
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 0, 2, 0, 0, 0, 2]  # 1.0 in the last bin
    assert bins[5]["accuracy"] == 0.5 and bins[5]["confidence"] == pytest.approx(0.565)
    assert bins[9]["accuracy"] == 1.0 and bins[9]["confidence"] == pytest.approx(0.975)
    assert ece == pytest.approx(0.5 * 0.065 + 0.5 * 0.025)
    assert ev.reliability([], [])[1] is None


def test_small_set_warning_says_how_many_are_needed():
    text = ev.small_set_warning(10)
    assert "Only 10 evaluation examples" in text and "26 points" in text and "97" in text
    assert ev.small_set_warning(97) is None  # +-10 points reached
    assert ev.small_set_warning(0) is None


def test_compare_text():
    same = ev.compare_text(0.7, 10, 0.6, 10, "Run #1", "Run #2")
    assert "cannot be told apart" in same and "+10.0 points" in same
    clear = ev.compare_text(0.9, 1000, 0.8, 1000, "Run #1", "Run #2")
    assert clear.startswith("Run #1 is better")
    assert ev.compare_text(None, 10, 0.5, 10) is None


def test_report_of_a_round_with_stored_predictions():
    probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]]
    metric = {"round": 2, "accuracy": 0.75, "macro_f1": 0.73, "details": {
        "n": 4, "labels": ["neg", "pos"],
        "per_class": {"pos": {"precision": 1.0, "recall": 0.5, "f1": 0.67, "support": 2},
                      "neg": {"precision": 0.67, "recall": 1.0, "f1": 0.8, "support": 2}},
        "eval_predictions": {"gold": [0, 1, 0, 0], "probs": probs}}}
    rep = ev.report(metric)
    assert rep["n"] == 4 and rep["accuracy_interval"] == ev.wilson_interval(3, 4)
    assert [r["class"] for r in rep["per_class"]] == ["neg", "pos"]  # label order
    assert rep["macro_f1_interval"] is not None and rep["ece"] is not None
    assert sum(b["count"] for b in rep["bins"]) == 4
    assert "Only 4 evaluation examples" in rep["warning"]
    assert ev.kept_round([{"round": 1, "details": {}}, metric]) is metric
    bare = ev.report({"round": 0, "accuracy": None, "macro_f1": None, "details": {}})
    assert bare["accuracy_interval"] is None and bare["bins"] is None


def test_kept_round_text_says_which_round_and_why():
    def m(r, acc, f1, kept=False):
        details = {"n": 40, **({"eval_predictions": {"gold": [0], "probs": [[1.0, 0.0]]}}
                               if kept else {})}
        return {"round": r, "accuracy": acc, "macro_f1": f1, "details": details}

    earlier = [m(0, 0.7, 0.6), m(1, 0.8, 0.75, kept=True), m(2, 0.75, 0.7)]
    text = ev.kept_round_text(earlier, {"keep_best_round": True, "best_round_metric": "accuracy"})
    assert text.startswith("This model is round 1, the best round by accuracy (80.0 % on 40")
    assert "the last round (round 2) scored lower" in text
    by_f1 = ev.kept_round_text(earlier, {"best_round_metric": "macro_f1"})
    assert "best round by macro-F1 (75.0 %" in by_f1
    last = [m(0, 0.5, 0.4), m(1, 0.6, 0.5, kept=True)]
    assert "as chosen" in ev.kept_round_text(last, {"keep_best_round": False})
    assert "also scored best" in ev.kept_round_text(last, {})
    # An earlier round scored higher but not clearly: the run kept its last round, and says so.
    noisy = [m(0, 0.6, 0.5), m(1, 0.55, 0.5, kept=True)]
    text = ev.kept_round_text(noisy, {})
    assert text.startswith("This model is the last round (round 1) (55.0 % on 40")
    assert "The teacher, round 0 scored higher (60.0 %)" in text and "within the noise" in text
    unmeasured = [m(0, None, None), m(1, None, None)]
    assert "no evaluation set to choose by" in ev.kept_round_text(unmeasured, {})
    assert ev.kept_round_text([], {}) is None
