"""Builders for worker tests: a labelled project, run configs with a tiny LiST schedule."""

from __future__ import annotations

import random

from tests.db.helpers import make_project

POSITIVE = ["great", "fun", "love", "good", "happy", "wonderful"]
NEGATIVE = ["bad", "awful", "boring", "sad", "terrible", "hate"]


def sentiment_project(session, *, n_unlabelled: int = 24, seed: int = 0):
    """8 labelled + 4 held-out + `n_unlabelled` unlabelled docs, gold labels on all."""
    rng = random.Random(seed)
    docs = []
    for i in range(12 + n_unlabelled):
        label = "positive" if i % 2 else "negative"
        words = rng.sample(POSITIVE if i % 2 else NEGATIVE, 3)
        docs.append((f"doc {i}: the movie was {' '.join(words)}", label))
    labelled = {i: docs[i][1] for i in range(8)}
    held_out = {i: docs[i][1] for i in range(8, 12)}
    return make_project(session, docs=docs, labelled=labelled, held_out=held_out)


def train_config(model: str, **overrides) -> dict:
    list_config = {
        "max_length": 32, "labeled_batch_size": 4, "unlabeled_batch_size": 4,
        "meta_batch_size": 4, "teacher_steps": 6, "rounds": 2, "unlabeled_steps": 6,
        "labeled_steps": 3, "unlabeled_sample_size": None, "eval_batch_size": 16, "seed": 1,
        "teacher_lr": 1e-3, "student_lr": 1e-3,
    }
    list_config.update(overrides)
    return {
        "template": "{text} It was {mask}.",
        "verbalizer": {"negative": "bad", "positive": "good"},
        "model": model,
        "mode": "prompt",
        "list_config": list_config,
        "eval_source": "auto",
    }
