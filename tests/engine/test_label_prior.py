"""A wrong prior: when the label words describe the classes worse than the labelled examples
do, the similarity head's classes start from the examples' class means (label_init="auto")."""

from __future__ import annotations

import numpy as np

from list_engine import LiSTConfig, LiSTTrainer, PromptClassifier
from list_engine.label_prior import check_label_prior

from .conftest import TEMPLATE, WORDS


def _two_clusters(n=10, seed=0):
    rng = np.random.default_rng(seed)
    a, b = np.eye(8)[0], np.eye(8)[1]
    emb = np.vstack([a + 0.3 * rng.standard_normal((n, 8)), b + 0.3 * rng.standard_normal((n, 8))])
    return emb, np.array([0] * n + [1] * n), a, b


def test_only_words_no_better_than_chance_give_way():
    # words right on 10 of 20 (chance for 2 classes) but the means on all: replaced;
    # words right on 14 of 20 (a weak but real prior): kept, however good the means are
    emb, gold, a, b = _two_clusters()
    mixed = np.vstack([a + b, a + b])  # the same description for both: ties go to class 0
    assert check_label_prior(mixed, emb, gold)["use_examples"]
    weak = np.vstack([a + 0.2 * b, b + 2.0 * a])
    check = check_label_prior(weak, emb, gold)
    assert 0.5 < check["words_accuracy"] < 1.0 and check["examples_accuracy"] == 1.0
    assert not check["use_examples"]


def test_right_words_are_kept_and_swapped_words_give_way_to_the_examples():
    emb, gold, a, b = _two_clusters()
    right = check_label_prior(np.vstack([a, b]), emb, gold)
    assert right["words_accuracy"] == 1.0 and not right["use_examples"]
    swapped = check_label_prior(np.vstack([b, a]), emb, gold)
    assert swapped["words_accuracy"] == 0.0 and swapped["examples_accuracy"] == 1.0
    assert swapped["use_examples"]
    means = swapped["class_means"]
    assert (means @ a)[0] > (means @ a)[1]  # class 0's mean lies near cluster a


def test_leave_one_out_does_not_score_an_example_against_itself():
    # one example per class: without it, its class has no mean, so it cannot be right
    emb, gold = np.eye(2), np.array([0, 1])
    check = check_label_prior(np.eye(2)[::-1], emb, gold)
    assert check["examples_accuracy"] == 0.0 and not check["use_examples"]


def test_auto_starts_a_swapped_verbalizer_from_the_examples(headless_bert, labeled, unlabeled):
    swapped = dict(zip(WORDS, list(WORDS.values())[::-1], strict=True))
    clf = PromptClassifier.create(str(headless_bert), TEMPLATE, swapped, device="cpu")
    assert clf.head == "similarity"
    before = {k: v.clone() for k, v in clf.trainable_state().items()}
    config = LiSTConfig.preset("quick", teacher_steps=2, rounds=0, max_length=32,
                               lr_candidates=None, device="cpu", label_init="auto")
    trainer = LiSTTrainer(clf, config, labeled, unlabeled)
    check = trainer.label_prior
    assert set(check) == {"words_accuracy", "examples_accuracy", "use_examples"}
    key = next(k for k in before if k.endswith("label_embeddings"))
    moved = not np.allclose(clf.trainable_state()[key], before[key])
    assert moved == check["use_examples"]
    result = trainer.train()
    assert result.metrics[0]["label_prior"] == check
    # "words" (the paper preset's, and the field's default) leaves the head as created
    assert LiSTConfig().label_init == LiSTConfig.preset("paper").label_init == "words"
    assert LiSTConfig.preset("quick").label_init == "auto"
    clf2 = PromptClassifier.create(str(headless_bert), TEMPLATE, swapped, device="cpu")
    trainer2 = LiSTTrainer(clf2, LiSTConfig.preset("quick", teacher_steps=2, rounds=0,
                                                   max_length=32, lr_candidates=None,
                                                   device="cpu", label_init="words"),
                           labeled, unlabeled)
    assert trainer2.label_prior is None
    assert np.allclose(clf2.trainable_state()[key], before[key])
