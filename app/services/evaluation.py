"""How far an evaluation on a few examples can be trusted: intervals, calibration, and
whether two runs can be told apart. Pure functions over plain numbers (no database).

- Wilson score interval for a proportion (accuracy): correct near 0 and 1 and for small n,
  where the textbook "p +- 1.96 sqrt(p(1-p)/n)" interval collapses to a point.
- Percentile bootstrap for macro-F1 (no closed form): resample the evaluation examples.
- Reliability diagram and expected calibration error (ECE, equal-width confidence bins).
- Newcombe's hybrid score interval for the difference of two accuracies: when it contains
  0, the evaluation cannot tell the two runs apart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 %
# Half-width (in accuracy points) above which the page warns: at +-10 points two sensible
# runs of the same task usually cannot be ranked.
WIDE_HALF_WIDTH = 0.10


def wilson_interval(correct: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95 % Wilson score interval of correct/n; None when n is 0."""
    if n <= 0:
        return None
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and n={n}, got {correct}")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def macro_f1(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> float:
    """Macro-F1 over all n_classes (a class absent from gold and pred scores 0, as sklearn's
    `precision_recall_fscore_support(labels=range(C), zero_division=0)` that the engine uses)."""
    scores = []
    for c in range(n_classes):
        tp = int(np.sum((pred == c) & (gold == c)))
        fp = int(np.sum((pred == c) & (gold != c)))
        fn = int(np.sum((pred != c) & (gold == c)))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else float("nan")


def bootstrap_macro_f1(gold: Sequence[int], pred: Sequence[int], n_classes: int,
                       n_boot: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of macro-F1 (resampling the evaluation examples)."""
    g, p = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    if len(g) == 0:
        return None
    if len(g) != len(p):
        raise ValueError(f"gold has {len(g)} labels but pred has {len(p)}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(g), size=(n_boot, len(g)))
    scores = np.array([macro_f1(g[i], p[i], n_classes) for i in idx])
    tail = (1 - level) / 2
    return float(np.quantile(scores, tail)), float(np.quantile(scores, 1 - tail))


def reliability(confidence: Sequence[float], correct: Sequence[bool],
                bins: int = 10) -> tuple[list[dict], float | None]:
    """(bins, ECE). Each bin: lo, hi, count, confidence (mean), accuracy (None when empty).
    ECE = sum over bins of count/n * |accuracy - confidence|."""
    conf = np.asarray(confidence, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if len(conf) != len(ok):
        raise ValueError(f"{len(conf)} confidences but {len(ok)} correctness flags")
    edges = np.linspace(0.0, 1.0, bins + 1)
    # A confidence of exactly 1.0 belongs to the last bin.
    which = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        members = which == b
        count = int(members.sum())
        row = {"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": count,
               "confidence": None, "accuracy": None}
        if count:
            row["confidence"] = float(conf[members].mean())
            row["accuracy"] = float(ok[members].mean())
            ece += count / len(conf) * abs(row["accuracy"] - row["confidence"])
        rows.append(row)
    return rows, (float(ece) if len(conf) else None)


def difference_interval(correct_a: int, n_a: int, correct_b: int,
                        n_b: int) -> tuple[float, float] | None:
    """Newcombe's hybrid score interval (method 10) for accuracy A - accuracy B."""
    wa, wb = wilson_interval(correct_a, n_a), wilson_interval(correct_b, n_b)
    if wa is None or wb is None:
        return None
    pa, pb = correct_a / n_a, correct_b / n_b
    d = pa - pb
    lo = d - math.sqrt((pa - wa[0]) ** 2 + (wb[1] - pb) ** 2)
    hi = d + math.sqrt((wa[1] - pa) ** 2 + (pb - wb[0]) ** 2)
    return lo, hi


def examples_for_half_width(half_width: float, p: float = 0.5, z: float = Z95) -> int:
    """Evaluation examples needed for a 95 % interval of about +-half_width (worst case p=0.5)."""
    return math.ceil(z * z * p * (1 - p) / (half_width * half_width))


def _pct(x: float) -> str:
    return f"{100 * x:.0f}"


def small_set_warning(n: int | None) -> str | None:
    """In plain words, when the evaluation set is too small to rank runs; None when it is
    large enough (95 % interval within +-WIDE_HALF_WIDTH at 50 % accuracy)."""
    if not n:
        return None
    lo, hi = wilson_interval(n // 2, n)
    half = (hi - lo) / 2
    if half <= WIDE_HALF_WIDTH:
        return None
    need = examples_for_half_width(WIDE_HALF_WIDTH)
    return (f"Only {n} evaluation examples: the true accuracy could be about "
            f"{_pct(half)} points higher or lower than measured, so two runs that differ by "
            f"less than that cannot be told apart. About {need} evaluation examples give "
            f"+-{_pct(WIDE_HALF_WIDTH)} points (label more held-out documents, or import "
            "documents with gold labels).")


def compare_text(acc_a: float | None, n_a: int | None, acc_b: float | None,
                 n_b: int | None, name_a: str = "Run A", name_b: str = "Run B") -> str | None:
    """Whether the evaluation can tell run A from run B, in plain words."""
    if acc_a is None or acc_b is None or not n_a or not n_b:
        return None
    ka, kb = round(acc_a * n_a), round(acc_b * n_b)
    lo, hi = difference_interval(ka, n_a, kb, n_b)
    diff = 100 * (acc_a - acc_b)
    span = f"95 % interval of the difference {100 * lo:+.0f} to {100 * hi:+.0f} points"
    if lo <= 0 <= hi:
        return (f"{name_a} and {name_b} cannot be told apart: accuracy differs by "
                f"{diff:+.1f} points, but with {n_a} and {n_b} evaluation examples the "
                f"{span} includes 0. Do not pick one over the other on this evaluation alone.")
    better = name_a if diff > 0 else name_b
    return (f"{better} is better: accuracy differs by {diff:+.1f} points ({span}, "
            f"{n_a} and {n_b} evaluation examples).")


# ----------------------------------------------------------------------------- one round


def kept_round(metrics: list[dict]) -> dict | None:
    """The round metrics of the model a finished run kept: the round whose per-example
    evaluation the worker stored (it stores it for the kept round only); None before."""
    return next((m for m in metrics if (m.get("details") or {}).get("eval_predictions")), None)


def report(metric: dict) -> dict:
    """Everything the page shows about one evaluated round (a `runs.round_metrics` row):
    n, accuracy and its interval, macro-F1 and its bootstrap interval (needs the stored
    per-example evaluation), the per-class table rows, reliability bins and ECE, and the
    small-set warning. Missing pieces are None."""
    details = metric.get("details") or {}
    n = details.get("n")
    acc = metric.get("accuracy")
    out = {"round": metric.get("round"), "n": n, "accuracy": acc, "macro_f1": metric.get("macro_f1"),
           "accuracy_interval": None, "macro_f1_interval": None, "bins": None, "ece": None,
           "per_class": per_class_rows(details), "warning": small_set_warning(n)}
    if acc is not None and n:
        out["accuracy_interval"] = wilson_interval(round(acc * n), n)
    preds = details.get("eval_predictions")
    if preds and preds.get("probs"):
        probs = np.asarray(preds["probs"], dtype=float)  # (N, C)
        gold = np.asarray(preds["gold"], dtype=int)
        pred = probs.argmax(1)
        out["macro_f1_interval"] = bootstrap_macro_f1(gold, pred, probs.shape[1])
        out["bins"], out["ece"] = reliability(probs.max(1), pred == gold)
    return out


def per_class_rows(details: dict) -> list[dict]:
    """Per-class precision, recall, F1 and support, in label order."""
    per_class = details.get("per_class") or {}
    order = list(details.get("labels") or per_class)
    return [{"class": name, "precision": per_class[name].get("precision"),
             "recall": per_class[name].get("recall"), "f1": per_class[name].get("f1"),
             "support": per_class[name].get("support")}
            for name in order if name in per_class]


def kept_round_text(metrics: list[dict], list_config: dict) -> str | None:
    """Which round a finished run saved (the model export and predict use), in words."""
    def round_name(r: int) -> str:
        return "the teacher, round 0" if r == 0 else f"round {r}"

    if not metrics:
        return None
    last = metrics[-1]["round"]
    kept = kept_round(metrics)
    policy = "last" if list_config.get("keep_best_round") is False else (
        "macro-F1" if list_config.get("best_round_metric") == "macro_f1" else "accuracy")
    if kept is None:  # no evaluation set, or a run from before the per-example evaluation
        scored = any(m.get("accuracy") is not None for m in metrics)
        if policy == "last" or not scored:
            why = "as chosen" if policy == "last" else "no evaluation set to choose by"
            return f"This model is the last round ({round_name(last)}): {why}."
        return None
    name, n = round_name(kept["round"]), (kept.get("details") or {}).get("n")
    if policy == "last":
        return f"This model is the last round ({name}), as chosen when the run started."
    score = kept.get("accuracy" if policy == "accuracy" else "macro_f1")
    shown = f" ({100 * score:.1f} % on {n} evaluation examples)" if score is not None and n else ""
    if kept["round"] == last:
        key = "accuracy" if policy == "accuracy" else "macro_f1"
        higher = [m for m in metrics if m.get(key) is not None and score is not None
                  and m[key] > score]
        if higher:  # the engine keeps an earlier round only when it is clearly better
            top = max(higher, key=lambda m: m[key])
            return (f"This model is the last round ({name}){shown}. "
                    f"{round_name(top['round']).capitalize()} scored higher "
                    f"({100 * top[key]:.1f} %), but on {n} evaluation examples that difference "
                    "is within the noise of the evaluation, so the run kept its last round.")
        return (f"This model is the last round ({name}), which also scored best by "
                f"{policy}{shown}.")
    return (f"This model is {name}, the best round by {policy}{shown}; the last round "
            f"({round_name(last)}) scored lower. Choose 'The last round' on the Train page to "
            "save the last one instead.")
