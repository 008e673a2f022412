from __future__ import annotations

import json

import numpy as np
import pytest

from list_engine import Callback, LiSTConfig, LiSTTrainer, PromptClassifier

from .conftest import TEMPLATE, WORDS


def tiny_config(**overrides) -> LiSTConfig:
    base = dict(teacher_steps=4, teacher_lr=1e-3, rounds=2, unlabeled_steps=4,
                kd_warmup_fraction=0.5, labeled_steps=2, student_lr=1e-3, labeled_batch_size=4,
                unlabeled_batch_size=6, meta_batch_size=4, max_length=32, seed=7,
                unlabeled_sample_size=24, device="cpu", lr_candidates=None)
    return LiSTConfig.preset("quick", **{**base, **overrides})


def make(tiny_bert_dir, mode="prompt"):
    return PromptClassifier.create(str(tiny_bert_dir), TEMPLATE if mode != "classic" else None,
                                   WORDS, mode=mode, device="cpu")


class Recorder(Callback):
    def __init__(self, stop_at: tuple[int, str] | None = None):
        self.events: list = []
        self.stop_at = stop_at
        self.last = None

    def on_train_start(self, info):
        self.events.append(("start", info))

    def on_round_start(self, round):
        self.events.append(("round_start", round))

    def on_step(self, event):
        self.events.append(("step", event))
        self.last = event

    def on_pseudo_labels(self, event):
        self.events.append(("pseudo", event))

    def on_evaluate(self, round, metrics):
        self.events.append(("evaluate", round, metrics))

    def on_round_end(self, round, checkpoint):
        self.events.append(("round_end", round, checkpoint))

    def on_train_end(self, result):
        self.events.append(("end", result))

    def should_stop(self):
        return self.stop_at is not None and self.last is not None and (
            self.last.round, self.last.phase) == self.stop_at

    def of(self, kind):
        return [e for e in self.events if e[0] == kind]


def test_events_and_metrics(tiny_bert_dir, labeled, unlabeled, tmp_path):
    rec = Recorder()
    cfg = tiny_config()
    result = LiSTTrainer(make(tiny_bert_dir), cfg, labeled, unlabeled, eval=labeled,
                         callbacks=[rec]).train(checkpoint_dir=tmp_path)
    assert result.status == "completed" and result.rounds_completed == 2
    assert [m["round"] for m in result.metrics] == [0, 1, 2]
    assert all("accuracy" in m and "confusion" in m for m in result.metrics)
    info = rec.of("start")[0][1]
    assert info["total_steps"] == cfg.total_steps == 4 + 2 * (4 + 2)
    steps = [e[1] for e in rec.of("step")]
    assert len(steps) == cfg.total_steps
    assert [s.global_step for s in steps] == list(range(1, cfg.total_steps + 1))
    assert [s.phase for s in steps[:10]] == ["teacher"] * 4 + ["kd"] * 2 + ["meta"] * 2 + [
        "labeled"] * 2
    assert steps[-1].progress == 1.0 and all(np.isfinite(s.loss) for s in steps)
    pseudo = [e[1] for e in rec.of("pseudo")]
    assert [p.round for p in pseudo] == [1, 2]
    p = pseudo[0]
    assert p.probs.shape == (24, 2) and len(p.ids) == 24 and len(p.labels) == 24
    assert p.gold_accuracy is not None and 0 <= p.gold_accuracy <= 1
    seen = np.isfinite(p.weights)
    assert seen.any() and (p.weights[seen] >= 0).all()
    assert result.metrics[1]["pseudo_label_accuracy"] == p.gold_accuracy
    ckpts = [e[2] for e in rec.of("round_end")]
    assert [c.name for c in ckpts] == ["round-0", "round-1", "round-2"]
    state = json.loads((ckpts[1] / "trainer_state.json").read_text())
    assert state["round"] == 1 and state["config"]["seed"] == 7
    assert sum(f.stat().st_size for f in ckpts[1].iterdir()) < 2_000_000  # small


def test_resume_equals_uninterrupted(tiny_bert_dir, labeled, unlabeled, tmp_path):
    cfg = tiny_config()
    texts = [ex.text for ex in unlabeled[:8]]
    full = make(tiny_bert_dir)
    LiSTTrainer(full, cfg, labeled, unlabeled).train()
    expected = full.predict_proba(texts)

    crashed = make(tiny_bert_dir)
    rec = Recorder(stop_at=(2, "kd"))
    result = LiSTTrainer(crashed, cfg, labeled, unlabeled, callbacks=[rec]).train(
        checkpoint_dir=tmp_path)
    assert result.status == "stopped" and result.rounds_completed == 1
    assert not (tmp_path / "round-2").exists()

    resumed = make(tiny_bert_dir)
    rec2 = Recorder()
    result2 = LiSTTrainer(resumed, cfg, labeled, unlabeled, callbacks=[rec2]).train(
        resume_from=tmp_path / "round-1")
    assert result2.status == "completed" and result2.rounds_completed == 2
    assert [e[1] for e in rec2.of("round_start")] == [2]
    assert rec2.of("step")[0][1].global_step == 4 + 6 + 1
    np.testing.assert_allclose(resumed.predict_proba(texts), expected, atol=1e-6, rtol=0)


def test_stop_restores_last_round(tiny_bert_dir, labeled, unlabeled):
    clf = make(tiny_bert_dir)
    rec = Recorder(stop_at=(1, "meta"))
    result = LiSTTrainer(clf, tiny_config(), labeled, unlabeled, callbacks=[rec]).train()
    assert result.status == "stopped" and [m["round"] for m in result.metrics] == [0]
    teacher_only = make(tiny_bert_dir)
    LiSTTrainer(teacher_only, tiny_config(self_training=False), labeled, unlabeled).train()
    texts = ["good", "bad movie"]
    np.testing.assert_allclose(clf.predict_proba(texts), teacher_only.predict_proba(texts),
                               atol=1e-6)


def test_resume_refuses_other_settings(tiny_bert_dir, labeled, unlabeled, tmp_path):
    LiSTTrainer(make(tiny_bert_dir), tiny_config(rounds=0), labeled, unlabeled).train(
        checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match="student_lr"):
        LiSTTrainer(make(tiny_bert_dir), tiny_config(student_lr=0.5), labeled,
                    unlabeled).train(resume_from=tmp_path / "round-0")
    with pytest.raises(ValueError, match="different data"):
        LiSTTrainer(make(tiny_bert_dir), tiny_config(), labeled, unlabeled[:-1]).train(
            resume_from=tmp_path / "round-0")


def test_threshold_and_classic_mode(tiny_bert_dir, labeled, unlabeled):
    rec = Recorder()
    cfg = tiny_config(rounds=1, confidence_threshold=0.999, mode="classic")
    result = LiSTTrainer(make(tiny_bert_dir, "classic"), cfg, labeled, unlabeled,
                         callbacks=[rec]).train()
    assert result.status == "completed"
    pseudo = rec.of("pseudo")[0][1]
    assert pseudo.kept is not None and pseudo.kept.dtype == bool
    assert result.metrics[1]["n_pseudo_kept"] == int(pseudo.kept.sum())


def test_trainer_validates_inputs(tiny_bert_dir, labeled, unlabeled):
    clf = make(tiny_bert_dir)
    with pytest.raises(ValueError, match="mode"):
        LiSTTrainer(clf, tiny_config(mode="classic"), labeled, unlabeled)
    with pytest.raises(ValueError, match="unknown label"):
        bad = [labeled[0].__class__("x", label="maybe")]
        LiSTTrainer(clf, tiny_config(), bad, unlabeled)
    with pytest.raises(ValueError, match="unlabelled"):
        LiSTTrainer(clf, tiny_config(), labeled, [])


def test_bpe_and_full_mode_round_trip(tiny_roberta_dir, tiny_bert_dir, labeled, unlabeled,
                                      tmp_path):
    words = {"neg": " terrible", "pos": " great"}  # BPE: the leading-space forms
    rob = PromptClassifier.create(str(tiny_roberta_dir), TEMPLATE, words, device="cpu")
    assert rob.model_type == "roberta" and len(rob.trainable_names) > 0
    LiSTTrainer(rob, tiny_config(rounds=1), labeled, unlabeled).train()
    full = make(tiny_bert_dir, "full")
    LiSTTrainer(full, tiny_config(rounds=0, mode="full"), labeled, unlabeled).train()
    texts = ["good", "bad movie"]
    for clf, name in ((rob, "rob"), (full, "full")):
        clf.save_pretrained(tmp_path / name)
        again = PromptClassifier.from_pretrained(tmp_path / name, device="cpu")
        np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))


def test_stop_inside_teacher(tiny_bert_dir, labeled, unlabeled, tmp_path):
    clf = make(tiny_bert_dir)
    rec = Recorder(stop_at=(0, "teacher"))
    result = LiSTTrainer(clf, tiny_config(), labeled, unlabeled, callbacks=[rec]).train(
        checkpoint_dir=tmp_path)
    assert result.status == "stopped" and result.metrics == [] and result.rounds_completed == 0
    assert len(rec.of("step")) == 1 and not any(tmp_path.iterdir())
    assert rec.of("end")[0][1] is result


def test_best_round_is_kept_not_blindly_the_last(tiny_bert_dir, labeled, unlabeled):
    clf = make(tiny_bert_dir)
    trainer = LiSTTrainer(clf, tiny_config(rounds=1), labeled, unlabeled, eval=labeled)
    result = trainer.train()
    accs = [m["accuracy"] for m in result.metrics]
    best = max(range(len(accs)), key=lambda r: (accs[r], r))
    clear = trainer._clearly_better(result.metrics[best], result.metrics[-1])
    kept = best if clear else len(accs) - 1
    assert result.selected_round == kept == clf.metrics["selected_round"]
    assert clf.evaluate(labeled)["accuracy"] == accs[kept]
    assert all(len(m["eval_pred"]) == len(labeled) for m in result.metrics)
    # The policy itself, on two known states and known per-example predictions (the
    # evaluation set is `labeled`): round 0 right on every example, round 1 on half.
    gold = [clf.labels.index(ex.label) for ex in labeled]
    n = len(gold)
    right = list(gold)
    half = [g if i % 2 else 1 - g for i, g in enumerate(gold)]
    s0 = clf.trainable_state()
    s1 = {k: v + 0.1 for k, v in s0.items()}
    clf.load_trainable_state(s1)
    picked = trainer._keep_best_round([{"round": 0, "accuracy": 1.0, "eval_pred": right},
                                       {"round": 1, "accuracy": 0.5, "eval_pred": half}],
                                      {0: s0, 1: s1}, None)
    assert picked == 0
    assert all(np.array_equal(v, s0[k]) for k, v in clf.trainable_state().items())
    # Better by one example is noise: the last round stays (so do scores without
    # per-example predictions, which cannot be compared).
    one_off = list(right)
    one_off[0] = 1 - one_off[0]
    assert trainer._keep_best_round([{"round": 0, "accuracy": 1.0, "eval_pred": right},
                                     {"round": 1, "accuracy": 1 - 1 / n, "eval_pred": one_off}],
                                    {0: s0, 1: s1}, None) == 1
    assert trainer._keep_best_round([{"round": 0, "accuracy": 0.9},
                                     {"round": 1, "accuracy": 0.5}], {0: s0, 1: s1}, None) == 1
    # A tie goes to the later round; without evaluation the last round stays.
    assert trainer._keep_best_round([{"round": 0, "accuracy": 0.5},
                                     {"round": 1, "accuracy": 0.5}], {0: s0, 1: s1}, None) == 1
    assert trainer._keep_best_round([{"round": 0}, {"round": 1}], {0: s0, 1: s1}, None) == 1
    off = LiSTTrainer(clf, tiny_config(rounds=1, keep_best_round=False), labeled, unlabeled,
                      eval=labeled)
    assert off._keep_best_round([{"round": 0, "accuracy": 1.0, "eval_pred": right},
                                 {"round": 1, "accuracy": 0.5, "eval_pred": half}],
                                {0: s0, 1: s1}, None) == 1
    # By macro-F1 when asked: round 1 predicts one class for everything (accuracy 1/2 of a
    # balanced set, macro-F1 1/3); round 0 gets each class right (macro-F1 1).
    by_f1 = LiSTTrainer(clf, tiny_config(rounds=1, best_round_metric="macro_f1"), labeled,
                        unlabeled, eval=labeled)
    assert by_f1._keep_best_round([{"round": 0, "accuracy": 1.0, "macro_f1": 1.0,
                                    "eval_pred": right},
                                   {"round": 1, "accuracy": 0.5, "macro_f1": 0.33,
                                    "eval_pred": [0] * n}],
                                  {0: s0, 1: s1}, None) == 0
    with pytest.raises(ValueError, match="best_round_metric must be one of"):
        tiny_config(best_round_metric="loss")
