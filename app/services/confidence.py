"""What a model's stated confidence has meant on its own evaluation set, in words, for the
pages that show a probability: prompt models are often over-confident (0.999 at 65 %
accuracy), so a probability is shown with how often such probabilities were right."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.services import evaluation
from app.services.runs import round_metrics


def confidence_note(session: Session, run_id: int, confidence: float) -> str | None:
    """For a prediction of the model saved by `run_id` with top probability `confidence`:
    how often that model was right at such confidence on its evaluation set (None when the
    run stored no per-example evaluation)."""
    metric = evaluation.kept_round(round_metrics(session, run_id))
    if metric is None:
        return None
    rep = evaluation.report(metric)
    hit = next((b for b in rep["bins"] or [] if b["count"] and b["lo"] <= confidence <= b["hi"]),
               None)
    if hit is None:
        return (f"This model's evaluation ({rep['n']} examples) had no prediction this "
                "confident: how often such probabilities are right is not known.")
    note = (f"On its evaluation set, this model's predictions with a probability of "
            f"{100 * hit['lo']:.0f}–{100 * hit['hi']:.0f} % were right "
            f"{100 * hit['accuracy']:.0f} % of the time ({hit['count']} of {rep['n']} examples).")
    if rep["ece"] is not None and rep["ece"] >= 0.05:
        note += (f" Its probabilities are off by {100 * rep['ece']:.0f} points on average "
                 "(expected calibration error): read them as a ranking more than as odds.")
    return note
