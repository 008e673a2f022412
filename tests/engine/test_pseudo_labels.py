"""The round's ingredients: pure pseudo-label functions, and what each does inside a run."""

from __future__ import annotations

import numpy as np
import torch

from list_engine import AdapterConfig, Callback, LiSTTrainer, PromptClassifier
from list_engine.pseudo_labels import (
    class_balanced_keep,
    drop_tokens,
    nearest_neighbours,
    neighbour_smooth,
    sharpen,
)

from .conftest import TEMPLATE, WORDS
from .test_self_training import Recorder, tiny_config


def test_sharpen():
    probs = np.array([[0.6, 0.4], [0.5, 0.5], [0.1, 0.9]], dtype=np.float32)
    assert sharpen(probs, 1.0) is probs
    sharp = sharpen(probs, 0.5)
    np.testing.assert_allclose(sharp.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(sharp[0], [0.36 / 0.52, 0.16 / 0.52], atol=1e-6)
    np.testing.assert_allclose(sharp[1], [0.5, 0.5])  # a tie stays a tie
    assert sharp[2, 1] > probs[2, 1]


def test_neighbours_outvote_an_isolated_error():
    # two tight groups on a circle; document 2 sits in group A but the teacher says B
    angles = np.array([0.0, 0.05, 0.1, 0.15, 3.0, 3.05, 3.1, 3.15])
    emb = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    neighbours = nearest_neighbours(emb, 3)
    assert neighbours.shape == (8, 3)
    assert all(i not in row for i, row in enumerate(neighbours))  # never its own neighbour
    assert set(neighbours[0]) == {1, 2, 3} and set(neighbours[7]) == {4, 5, 6}
    probs = np.array([[0.9, 0.1]] * 4 + [[0.1, 0.9]] * 4, dtype=np.float32)
    probs[2] = [0.3, 0.7]
    smoothed = neighbour_smooth(probs, neighbours, 0.5)
    assert smoothed[2].argmax() == 0  # outvoted by its neighbours
    assert (smoothed.argmax(1) == [0, 0, 0, 0, 1, 1, 1, 1]).all()
    np.testing.assert_allclose(smoothed.sum(1), 1.0, atol=1e-6)
    assert neighbour_smooth(probs, neighbours, 0.0) is probs


def test_class_balanced_keep_gives_every_class_the_same_budget():
    # 6 predicted A (confidences 0.9 .. 0.65), 2 predicted B
    conf_a = [0.9, 0.85, 0.8, 0.75, 0.7, 0.65]
    probs = np.array([[c, 1 - c] for c in conf_a] + [[0.2, 0.8], [0.4, 0.6]])
    keep = class_balanced_keep(probs, 0.5)  # budget ceil(0.5 * 8 / 2) = 2 per class
    assert keep.tolist() == [True, True, False, False, False, False, True, True]
    keep = class_balanced_keep(probs, 1.0)  # budget 4: B keeps both of its own
    assert keep.tolist() == [True] * 4 + [False, False] + [True, True]
    assert class_balanced_keep(probs, None).all()


def test_drop_tokens_keeps_the_first_token_and_the_mask():
    mask = torch.ones((64, 20), dtype=torch.long)
    mask[:, 15:] = 0
    pos = torch.full((64,), 7)
    batch = {"attention_mask": mask, "mask_pos": pos, "input_ids": torch.zeros_like(mask)}
    out = drop_tokens(batch, 0.3, torch.Generator().manual_seed(0))
    assert out["input_ids"] is batch["input_ids"] and batch["attention_mask"] is mask
    kept = out["attention_mask"]
    assert (kept[:, 0] == 1).all() and (kept[:, 7] == 1).all() and (kept[:, 15:] == 0).all()
    dropped = 1 - kept[:, 1:15].float().mean().item()
    assert 0.2 < dropped < 0.4
    again = drop_tokens(batch, 0.3, torch.Generator().manual_seed(0))["attention_mask"]
    assert torch.equal(again, kept)  # from the generator only: a resumed round is the same
    assert drop_tokens(batch, 0.0, torch.Generator()) is batch


def make(tiny_bert_dir):
    return PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                   adapter=AdapterConfig(layers=1))


class States(Callback):
    def __init__(self, clf):
        self.clf, self.states = clf, {}

    def on_round_end(self, round, checkpoint):  # noqa: A002
        self.states[round] = self.clf.trainable_state()


def test_student_init_teacher_continues_from_the_teacher(tiny_bert_dir, labeled, unlabeled):
    ends = {}
    for init in ("teacher", "fresh"):
        clf = make(tiny_bert_dir)
        rec = States(clf)
        cfg = tiny_config(rounds=1, unlabeled_steps=0, labeled_steps=0, student_init=init,
                          adapter={"layers": 1})
        LiSTTrainer(clf, cfg, labeled, unlabeled, callbacks=[rec]).train()
        ends[init] = rec.states
    teacher, after = ends["teacher"][0], ends["teacher"][1]
    assert all(torch.equal(teacher[k], after[k]) for k in teacher)  # no student step: same
    fresh = ends["fresh"][1]
    assert not all(torch.equal(teacher[k], fresh[k]) for k in teacher)


def test_refinement_changes_the_pseudo_labels_and_is_reported(tiny_bert_dir, labeled,
                                                                unlabeled):
    runs = {}
    plain_settings = {"neighbour_weight": 0.0, "pseudo_label_temperature": 1.0,
                      "balanced_fraction": None}
    for name, extra in {"plain": plain_settings, "refined": {"neighbour_weight": 0.9, "neighbours": 5,
                                                 "pseudo_label_temperature": 0.3,
                                                 "balanced_fraction": 0.5}}.items():
        clf = make(tiny_bert_dir)
        rec = Recorder()
        cfg = tiny_config(adapter={"layers": 1}, unlabeled_sample_size=None, **extra)
        result = LiSTTrainer(clf, cfg, labeled, unlabeled, callbacks=[rec]).train()
        runs[name] = (rec.of("pseudo")[0][1], result.metrics)
    plain, refined = runs["plain"][0], runs["refined"][0]
    assert plain.ids == refined.ids  # the same round-1 teacher and documents
    assert not np.allclose(plain.probs, refined.probs)
    # sharper targets: the mean confidence goes up
    assert refined.probs.max(1).mean() > plain.probs.max(1).mean()
    assert plain.kept.all() and refined.kept.sum() <= len(refined.ids) // 2 + 2
    metrics = runs["refined"][1]
    m1, m2 = metrics[1], metrics[2]
    assert m1["n_gold_in_pool"] == len(unlabeled)
    assert 0 <= m1["teacher_label_accuracy"] <= 1 and 0 <= m1["pseudo_label_accuracy"] <= 1
    assert 0 <= m1["labels_refined"] <= len(unlabeled)
    assert m1["labels_changed"] is None  # nothing before round 1
    assert isinstance(m2["labels_changed"], int) and 0 <= m2["labels_changed"] <= len(unlabeled)
    assert runs["plain"][1][1]["labels_refined"] == 0  # no refinement: nothing changed


def test_resume_with_every_ingredient_equals_uninterrupted(tiny_bert_dir, labeled, unlabeled,
                                                           tmp_path):
    cfg = tiny_config(adapter={"layers": 1}, student_init="teacher", neighbour_weight=0.5,
                      neighbours=3, pseudo_label_temperature=0.5, balanced_fraction=0.8,
                      token_drop=0.2, rounds=3)
    texts = [ex.text for ex in unlabeled[:8]]
    full = make(tiny_bert_dir)
    expected_metrics = LiSTTrainer(full, cfg, labeled, unlabeled).train().metrics
    expected = full.predict_proba(texts)

    crashed = make(tiny_bert_dir)
    result = LiSTTrainer(crashed, cfg, labeled, unlabeled,
                         callbacks=[Recorder(stop_at=(3, "kd"))]).train(checkpoint_dir=tmp_path)
    assert result.status == "stopped" and result.rounds_completed == 2
    resumed = make(tiny_bert_dir)
    result2 = LiSTTrainer(resumed, cfg, labeled, unlabeled).train(
        resume_from=tmp_path / "round-2")
    np.testing.assert_allclose(resumed.predict_proba(texts), expected, atol=1e-6, rtol=0)
    assert result2.metrics[3]["labels_changed"] == expected_metrics[3]["labels_changed"]
