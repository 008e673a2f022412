"""The columns of a predictions table: one scheme for the command line and the app's
background predictions. `prediction` is the most probable label; `prob_<label>` is each
label's probability (in label order, rounded to 6 decimals)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PREDICTION = "prediction"


def prob_column(label: str) -> str:
    return f"prob_{label}"


def prediction_columns(labels: Sequence[str], probs) -> dict[str, list]:
    """{column: values} for N examples from their (N, C) probabilities."""
    probs = np.asarray(probs, dtype=float).reshape(-1, len(labels))
    out: dict[str, list] = {PREDICTION: [labels[int(i)] for i in probs.argmax(axis=1)]
                            if len(probs) else []}
    for j, label in enumerate(labels):
        out[prob_column(label)] = [round(float(p), 6) for p in probs[:, j]]
    return out
