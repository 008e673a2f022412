"""What each self-training round did, in plain words, from a run's stored round metrics.

The Live progress page and the model card both print these lines, so the two cannot
disagree. Pure functions over `runs.round_metrics` rows (no database, no Streamlit).
"""

from __future__ import annotations

from app.services.evaluation import difference_interval


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def round_lines(metrics: list[dict]) -> list[str]:
    """One sentence group per round (round 0 = the teacher)."""
    lines = []
    previous = None
    for m in sorted(metrics, key=lambda m: m["round"]):
        d = m.get("details") or {}
        r = m["round"]
        if r == 0:
            text = "Teacher: trained on the labelled documents."
        else:
            parts = [f"Round {r}: the model of {'the teacher' if r == 1 else f'round {r - 1}'} "
                     f"labelled {d.get('n_pseudo_labeled', 0):,} unlabelled documents"]
            kept = d.get("n_pseudo_kept")
            if kept is not None:
                parts[0] += f"; the student learned from {kept:,} of them."
            if d.get("labels_refined"):
                parts.append(f"{d['labels_refined']:,} labels were changed by the agreement "
                             "of their nearest neighbours.")
            if d.get("labels_changed") is not None:
                parts.append(f"{d['labels_changed']:,} labels differ from the previous round's.")
            gold_acc, own_acc = m.get("pseudo_label_accuracy"), d.get("teacher_label_accuracy")
            if gold_acc is not None and d.get("n_gold_in_pool"):
                compared = (f" (the model's own guesses: {_pct(own_acc)})"
                            if own_acc is not None else "")
                parts.append(f"On the {d['n_gold_in_pool']:,} of them with a gold label, the "
                             f"pseudo-labels are {_pct(gold_acc)} right{compared}.")
            text = " ".join(parts)
        if m.get("accuracy") is not None:
            text += f" Accuracy {_pct(m['accuracy'])}"
            if previous is not None and previous.get("accuracy") is not None:
                delta = 100 * (m["accuracy"] - previous["accuracy"])
                text += f", {delta:+.1f} points against the {'teacher' if r == 1 else 'previous round'}"
            text += "."
        lines.append(text)
        previous = m
    return lines


def verdict(metrics: list[dict]) -> str | None:
    """What self-training added over the teacher, and whether the evaluation can tell."""
    ordered = sorted(metrics, key=lambda m: m["round"])
    if len(ordered) < 2:
        return None
    teacher, last = ordered[0], ordered[-1]
    n = (teacher.get("details") or {}).get("n")
    if teacher.get("accuracy") is None or last.get("accuracy") is None or not n:
        return ("Without an evaluation set nothing tells whether the rounds helped; the "
                "pseudo-label accuracy above (documents with a gold label) is the only "
                "measure." if any(m.get("pseudo_label_accuracy") is not None for m in ordered)
                else "Without an evaluation set nothing tells whether the rounds helped.")
    delta = 100 * (last["accuracy"] - teacher["accuracy"])
    lo, hi = difference_interval(round(last["accuracy"] * n), n,
                                 round(teacher["accuracy"] * n), n)
    head = (f"Self-training changed accuracy by {delta:+.1f} points over the teacher "
            f"({n:,} evaluation examples")
    if lo <= 0 <= hi:
        return (head + f"; 95 % interval {100 * lo:+.0f} to {100 * hi:+.0f} points, which "
                "includes 0: this evaluation cannot tell whether the rounds helped).")
    return head + f"; 95 % interval {100 * lo:+.0f} to {100 * hi:+.0f} points)."
