"""Whether one round's model beats another's on the evaluation set by more than the set's
noise. With a handful of evaluation examples two rounds often score the same or differ by one
example; picking the "best" of them would be picking noise, so a run ends on its last round
unless an earlier one is clearly better (keep_best_round)."""

from __future__ import annotations

import numpy as np

RESAMPLES = 1000
ALPHA = 0.05  # one-sided: the earlier round must win in at least 95 % of the resamples


def _macro_f1(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Macro-F1 of each row of `gold`/`pred` (resamples x examples); a class with no
    prediction and no example counts 0, as sklearn's zero_division=0 does."""
    scores = []
    for c in range(n_classes):
        tp = ((pred == c) & (gold == c)).sum(1)
        fp = ((pred == c) & (gold != c)).sum(1)
        fn = ((pred != c) & (gold == c)).sum(1)
        denom = 2 * tp + fp + fn
        scores.append(np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0))
    return np.mean(scores, axis=0)


def clearly_better(gold, pred_a, pred_b, n_classes: int, metric: str = "accuracy",
                   resamples: int = RESAMPLES, alpha: float = ALPHA, seed: int = 0) -> bool:
    """True when predictions `pred_a` score higher than `pred_b` on `metric` (accuracy or
    macro_f1) in at least 1 - alpha of paired bootstrap resamples of the evaluation examples
    (the same resampled examples score both, so only the examples where they differ count)."""
    gold, pred_a, pred_b = (np.asarray(x, dtype=np.int64) for x in (gold, pred_a, pred_b))
    n = len(gold)
    if n == 0 or len(pred_a) != n or len(pred_b) != n:
        return False
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    g, a, b = gold[idx], pred_a[idx], pred_b[idx]
    if metric == "macro_f1":
        score_a, score_b = _macro_f1(g, a, n_classes), _macro_f1(g, b, n_classes)
    else:
        score_a, score_b = (a == g).mean(1), (b == g).mean(1)
    return float(np.mean(score_a > score_b)) >= 1 - alpha
