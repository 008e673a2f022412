"""LiSTTrainer: teacher prompt-tuning, then rounds of meta re-weighted self-training.

train() is a fixed sequence of named steps per round:
    round 0   : fresh adapters/head -> teacher phase (labels)            -> eval -> checkpoint
    round r>0 : pseudo-label a sample (current model = teacher, one batched pass)
                -> fresh student (same frozen backbone, new adapters/head)
                -> KD warm-up (uniform weights) -> meta re-weighted steps -> labelled steps
                -> eval -> checkpoint
The teacher and the student share ONE backbone: the teacher's trainable tensors are a state
dict kept in memory. Every round draws its randomness from (seed, round) only, so a run
resumed from `round-{r}` continues exactly like an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .callbacks import Callback, CallbackList, PseudoLabelEvent, StepEvent, TrainResult
from .config import MAX_LR, LiSTConfig
from .int8 import TRAINING_MESSAGE
from .label_prior import check_label_prior
from .lengths import choose_max_length
from .modeling import Encoded, PromptClassifier, resolve_device
from .prompts import Example
from .pseudo_labels import (
    class_balanced_keep,
    drop_tokens,
    nearest_neighbours,
    neighbour_smooth,
    sharpen,
)
from .reweighting import directional_derivative, labeled_gradient, normalize_weights
from .round_choice import clearly_better
from .training import (
    BatchStream,
    NonFiniteLossError,
    Stepper,
    ce_loss,
    kd_loss_per_example,
    make_optimizer,
)

logger = logging.getLogger(__name__)

STATE_NAME = "state.safetensors"
TRAINER_STATE_NAME = "trainer_state.json"


class _Stopped(Exception):
    pass


def round_seed(seed: int, round_index: int) -> int:
    """The seed of one round, a pure function of (seed, round)."""
    return int(np.random.SeedSequence([int(seed), int(round_index)]).generate_state(1)[0])


def _fingerprint(examples: list[Example]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(json.dumps([ex.text, ex.text_b, ex.label]).encode())
    return digest.hexdigest()


class LiSTTrainer:
    def __init__(self, classifier: PromptClassifier, config: LiSTConfig,
                 labeled: list[Example], unlabeled: list[Example],
                 eval: list[Example] | None = None, callbacks: list[Callback] | tuple = ()):
        if not isinstance(config, LiSTConfig):
            raise TypeError("config must be a LiSTConfig (LiSTConfig.preset('quick') ...)")
        if classifier.mode != config.mode:
            raise ValueError(f"config.mode={config.mode!r} but the classifier was created with "
                             f"mode={classifier.mode!r}")
        if classifier.merged:
            raise ValueError("cannot train a classifier whose adapters were merged")
        if classifier.int8:
            raise ValueError(TRAINING_MESSAGE)
        if not labeled:
            raise ValueError("no labelled examples")
        labels = set(classifier.labels)
        bad = sorted({str(ex.label) for ex in labeled if ex.label not in labels})
        if bad:
            raise ValueError(f"labelled examples with unknown label(s) {bad}; the verbalizer "
                             f"defines {classifier.labels}")
        if config.self_training and config.rounds > 0 and not unlabeled:
            raise ValueError("self-training needs unlabelled examples (or self_training=False)")
        self.classifier = classifier
        self.config = config
        self.labeled = list(labeled)
        self.unlabeled = list(unlabeled or [])
        self.eval_examples = list(eval) if eval else None
        self.callbacks = CallbackList(callbacks)
        if config.device != "auto" or classifier.device != resolve_device(config.device):
            classifier.to(resolve_device(config.device))
        classifier.bf16 = config.bf16
        classifier.max_length = config.max_length or self._auto_max_length()
        # Tokenise everything once (the reference re-tokenised at every sampling), and run the
        # frozen layers below the adapters once per document (modeling.cache_frozen).
        batch = config.eval_batch_size
        self._lab_enc = classifier.cache_frozen(classifier.encode(self.labeled), batch)
        self._lab_y = torch.tensor([classifier.labels.index(ex.label) for ex in self.labeled])
        self.label_prior = self._check_label_prior() if config.label_init == "auto" else None
        # The unlabelled documents this run uses: one sample of the pool, the same in every
        # round (so a round's labels can be compared with the previous round's).
        self._pool = self._pool_sample() if config.active_rounds else np.zeros(0, dtype=int)
        self._unl_enc = classifier.cache_frozen(
            classifier.encode([self.unlabeled[i] for i in self._pool]), batch)
        self._eval_enc = (classifier.cache_frozen(classifier.encode(self.eval_examples), batch)
                          if self.eval_examples else [])
        self._neighbours: np.ndarray | None = None  # in the frozen encoder's geometry
        self._last_labels: dict[int, int] = {}  # pool index -> the previous round's label
        self._params = classifier.trainable_parameters()
        self.global_step = 0
        self.meta_stats: list[dict] = []
        self.selected_lr: float | None = None  # chosen by cross-validation (lr_candidates)

    def _check_label_prior(self) -> dict | None:
        """Similarity head: start the classes from the labelled examples' class means when
        those classify the labelled examples better than the label words do (a fresh model,
        before any training: the same decision on a resume)."""
        clf = self.classifier
        if clf.head != "similarity":
            return None
        key = next(k for k in clf._init_state if k.endswith("label_embeddings"))
        embeddings = clf.frozen_embeddings(self._lab_enc, self.config.eval_batch_size)
        check = check_label_prior(clf._init_state[key].float().cpu().numpy(), embeddings,
                                  self._lab_y.numpy())
        means = check.pop("class_means")
        if check["use_examples"]:
            init = clf._init_state[key]
            clf._init_state[key] = torch.as_tensor(means, dtype=init.dtype)
            with torch.no_grad():
                clf.trainable_parameters()[key].copy_(clf._init_state[key])
        logger.info("label prior: words %.3f, labelled examples' means %.3f (leave-one-out) on "
                    "the labelled examples: the classes start from the %s", check["words_accuracy"],
                    check["examples_accuracy"],
                    "means" if check["use_examples"] else "label words")
        return check

    def _pool_sample(self) -> np.ndarray:
        """Sorted indices of the unlabelled examples used (all, or unlabeled_sample_size of
        them drawn from the seed alone)."""
        pool, size = len(self.unlabeled), self.config.unlabeled_sample_size
        if size is None or size >= pool:
            return np.arange(pool)
        rng = np.random.default_rng(np.random.SeedSequence([int(self.config.seed), 0, 2]))
        return np.sort(rng.choice(pool, size=size, replace=False))

    def _auto_max_length(self) -> int:
        """max_length from the documents (config.max_length None): see list_engine.lengths."""
        clf = self.classifier
        texts = [" ".join(t for t in (ex.text, ex.text_b) if t)
                 for ex in self.labeled + self.unlabeled]
        extra = 0
        if clf.head == "mlm" and clf.template is not None:  # the cloze words take room too
            literal = "".join(v for k, v in clf.template.segments if k == "lit")
            extra = len(clf.tokenizer(literal, add_special_tokens=False)["input_ids"]) + 1
        length = choose_max_length(texts, clf.tokenizer, clf.model_max_length, extra,
                                   seed=self.config.seed)
        logger.info("max_length %d tokens (95th percentile of the documents, model limit %d)",
                    length, clf.model_max_length)
        return length

    def add_callback(self, callback: Callback) -> None:
        self.callbacks.add(callback)

    # -- the run ----------------------------------------------------------------------------
    def train(self, checkpoint_dir: str | Path | None = None,
              resume_from: str | Path | None = None) -> TrainResult:
        cfg = self.config
        metrics: list[dict] = []
        start = 0
        if resume_from is not None:
            start, metrics = self._load_checkpoint(Path(resume_from))
            start += 1
            self.selected_lr = metrics[0].get("selected_lr") if metrics else None
        per_round = cfg.unlabeled_steps + cfg.labeled_steps
        self.global_step = 0 if start == 0 else (cfg.selection_steps + cfg.teacher_steps
                                                 + (start - 1) * per_round)
        trainable, total = self.classifier.parameter_counts()
        self.callbacks.trigger("on_train_start", {
            "total_steps": cfg.total_steps, "start_step": self.global_step,
            "rounds": cfg.active_rounds, "start_round": start,
            "n_labeled": len(self.labeled), "n_unlabeled": len(self.unlabeled),
            "trainable_parameters": trainable, "total_parameters": total,
            "mlm_head_pretrained": self.classifier.mlm_head_pretrained,
            "mode": cfg.mode, "head": self.classifier.head,
            "max_length": self.classifier.max_length, "config": cfg.to_dict(),
        })
        last_state = self.classifier.trainable_state() if start > 0 else None
        # The best round so far on the evaluation (held in memory: adapters are small).
        key = cfg.best_round_metric
        best: tuple[float, int, dict] | None = None
        status, completed = "completed", start - 1
        try:
            for r in range(start, cfg.active_rounds + 1):
                self.callbacks.trigger("on_round_start", r)
                round_metrics = self._run_round(r)
                round_metrics.update(self._evaluate())
                round_metrics["round"] = r
                metrics.append(round_metrics)
                self.callbacks.trigger("on_evaluate", r, round_metrics)
                last_state = self.classifier.trainable_state()
                if round_metrics.get(key) is not None and (
                        best is None or round_metrics[key] >= best[0]):
                    best = (round_metrics[key], r, last_state)
                completed = r
                ckpt = None
                if checkpoint_dir is not None:
                    ckpt = self._save_checkpoint(Path(checkpoint_dir), r, metrics)
                self.callbacks.trigger("on_round_end", r, ckpt)
        except _Stopped:
            status = "stopped"
            if last_state is not None:  # back to the last finished round
                self.classifier.load_trainable_state(last_state)
            else:  # stopped inside the teacher phase: nothing finished, back to the start
                self.classifier.reset_trainable(
                    torch.Generator().manual_seed(round_seed(cfg.seed, 0)))
            logger.info("training stopped by a callback after round %s", completed)
        states = {best[1]: best[2]} if best else {}
        selected = self._keep_best_round(metrics, states, checkpoint_dir) if metrics else None
        self.classifier.module.eval()
        self.classifier.metrics = {"rounds": metrics, "selected_round": selected}
        result = TrainResult(status=status, metrics=metrics,
                             rounds_completed=max(0, completed), classifier=self.classifier,
                             meta_stats=self.meta_stats, selected_round=selected)
        self.callbacks.trigger("on_train_end", result)
        return result

    def _keep_best_round(self, metrics: list[dict], states: dict[int, dict],
                         checkpoint_dir) -> int:
        """With an evaluation set, a round that made things worse is not what the user gets:
        load the round with the best evaluation score (config.best_round_metric; ties: the
        later one) when it beats the last round beyond the evaluation's noise. Otherwise,
        and without an evaluation set, the last round."""
        key = self.config.best_round_metric
        last = metrics[-1]["round"]
        scored = [m for m in metrics if m.get(key) is not None]
        if not (self.config.keep_best_round and scored):
            return last
        best = max(scored, key=lambda m: (m[key], m["round"]))["round"]
        if best == last:
            return last
        if not self._clearly_better(next(m for m in scored if m["round"] == best),
                                    metrics[-1]):
            logger.info("round %d scored best by %s but not beyond the noise of %d evaluation "
                        "examples; keeping the last round %d", best, key,
                        len(self.eval_examples), last)
            return last
        # Rounds finished before a resume are not in memory: read their checkpoint.
        state = states.get(best) or self._checkpoint_state(checkpoint_dir, best)
        if state is None:
            logger.warning("round %d scored best but its weights are gone; keeping round %d",
                           best, last)
            return last
        self.classifier.load_trainable_state(state)
        logger.info("keeping round %d (evaluation %s %.4f) instead of the last round %d "
                    "(%.4f)", best, key, next(m[key] for m in scored if m["round"] == best),
                    last, metrics[-1].get(key) or float("nan"))
        return best

    def _clearly_better(self, earlier: dict, last: dict) -> bool:
        """Whether `earlier` beats the last round beyond the evaluation set's noise (their
        per-example predictions compared, list_engine.round_choice); False without them."""
        a, b = earlier.get("eval_pred"), last.get("eval_pred")
        if a is None or b is None:
            return False
        labels = self.classifier.labels
        gold = [labels.index(ex.label) for ex in self.eval_examples]
        return clearly_better(gold, a, b, len(labels), self.config.best_round_metric)

    @staticmethod
    def _checkpoint_state(checkpoint_dir, r: int) -> dict | None:
        if checkpoint_dir is None or not (Path(checkpoint_dir) / f"round-{r}" / STATE_NAME).is_file():
            return None
        from safetensors.torch import load_file

        state = load_file(str(Path(checkpoint_dir) / f"round-{r}" / STATE_NAME))
        return {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}

    def _run_round(self, r: int) -> dict:
        cfg = self.config
        seed = round_seed(cfg.seed, r)
        torch.manual_seed(seed)  # dropout (and CUDA) randomness of this round
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        if r == 0:
            out = self._select_lr() if cfg.lr_candidates else {}
            out.update(head=self.classifier.head, max_length=self.classifier.max_length)
            if self.label_prior is not None:
                out["label_prior"] = dict(self.label_prior)
            self.classifier.reset_trainable(gen)
            stepper = self._stepper(self.teacher_lr, cfg.teacher_steps)
            lab = BatchStream(len(self._lab_enc), cfg.labeled_batch_size, rng)
            self._labeled_phase(r, "teacher", cfg.teacher_steps, lab, stepper)
            return out
        # (b) pseudo-labels from the current model (the teacher), one batched pass
        sample = self._pool  # indices into self.unlabeled; row j of _unl_enc is sample[j]
        n = len(sample)
        teacher_probs = self.classifier.predict_encoded(self._unl_enc, cfg.eval_batch_size)
        probs = self._refine(teacher_probs)
        kept = (probs.max(1) >= cfg.confidence_threshold if cfg.confidence_threshold
                else np.ones(n, dtype=bool))
        kept &= class_balanced_keep(probs, cfg.balanced_fraction)
        label_stats = self._label_stats(sample, teacher_probs, probs)
        gold_acc = label_stats["pseudo_label_accuracy"]
        ids = [self.unlabeled[i].id if self.unlabeled[i].id is not None else int(i)
               for i in sample]
        labels = [self.classifier.labels[j] for j in probs.argmax(1)]
        self.callbacks.trigger("on_pseudo_labels_made", PseudoLabelEvent(
            round=r, ids=ids, probs=probs, labels=labels, weights=np.full(n, np.nan),
            gold_accuracy=gold_acc, kept=kept))
        # (a) the student, on the same backbone: fresh, or continuing from its teacher
        if cfg.student_init == "fresh":
            self.classifier.reset_trainable(gen)
        stepper = self._stepper(self.student_lr, cfg.unlabeled_steps + cfg.labeled_steps)
        weight_sum = np.zeros(n)
        weight_cnt = np.zeros(n)
        stats = {"round": r, "meta_steps": 0, "skipped": 0, "uniform": 0, "kd_time": 0.0,
                 "meta_time": 0.0, "kd_steps": 0}
        kept_idx = np.flatnonzero(kept)
        if len(kept_idx) == 0:
            logger.warning("round %d: no pseudo-label passes the confidence threshold %s; "
                           "skipping the unlabelled phase", r, cfg.confidence_threshold)
            self._advance_skipped(r, stepper)
        else:
            self._unlabeled_phase(r, sample, kept_idx, probs, stepper, rng, weight_sum,
                                  weight_cnt, stats, ids, gen)
        lab = BatchStream(len(self._lab_enc), cfg.labeled_batch_size, rng)
        self._labeled_phase(r, "labeled", cfg.labeled_steps, lab, stepper)
        with np.errstate(invalid="ignore", divide="ignore"):
            weights = np.where(weight_cnt > 0, weight_sum / np.maximum(weight_cnt, 1), np.nan)
        self.callbacks.trigger("on_pseudo_labels", PseudoLabelEvent(
            round=r, ids=ids, probs=probs, labels=labels, weights=weights,
            gold_accuracy=gold_acc, kept=kept))
        self.meta_stats.append(stats)
        out = {**label_stats, "n_pseudo_labeled": int(n),
               "n_pseudo_kept": int(kept.sum()), "meta_zero_batches": stats["skipped"]
               + stats["uniform"]}
        if stats["kd_steps"] and stats["meta_steps"]:
            out["meta_step_overhead"] = (stats["meta_time"] / stats["meta_steps"]) / (
                stats["kd_time"] / stats["kd_steps"])
        return out

    # -- pseudo-labels ----------------------------------------------------------------------
    def _refine(self, teacher_probs: np.ndarray) -> np.ndarray:
        """The student's targets: the teacher's soft labels, smoothed over neighbours in the
        frozen embedding space, then sharpened (list_engine.pseudo_labels)."""
        cfg = self.config
        probs = teacher_probs
        if cfg.neighbour_weight > 0:
            if self._neighbours is None:  # the frozen encoder's: the same in every round
                embeddings = self.classifier.frozen_embeddings(self._unl_enc,
                                                               cfg.eval_batch_size)
                self._neighbours = nearest_neighbours(embeddings, cfg.neighbours)
            probs = neighbour_smooth(probs, self._neighbours, cfg.neighbour_weight)
        return sharpen(probs, cfg.pseudo_label_temperature)

    def _label_stats(self, sample: np.ndarray, teacher_probs: np.ndarray,
                     probs: np.ndarray) -> dict:
        """What this round's pseudo-labels are worth: accuracy on the pool documents that have
        a gold label (never trained on) against the teacher's own guesses, how many labels
        the refinement changed, and how many changed since the previous round."""
        labels = self.classifier.labels
        pred, raw = probs.argmax(1), teacher_probs.argmax(1)
        gold = [(j, labels.index(self.unlabeled[i].label)) for j, i in enumerate(sample)
                if self.unlabeled[i].label in labels]
        out: dict = {"pseudo_label_accuracy": None, "teacher_label_accuracy": None,
                     "n_gold_in_pool": len(gold), "labels_refined": int((pred != raw).sum())}
        if gold:
            rows, y = (np.array(v) for v in zip(*gold, strict=True))
            out["pseudo_label_accuracy"] = float((pred[rows] == y).mean())
            out["teacher_label_accuracy"] = float((raw[rows] == y).mean())
        before = [(self._last_labels[int(i)], int(p)) for i, p in zip(sample, pred, strict=True)
                  if int(i) in self._last_labels]
        out["labels_changed"] = sum(a != b for a, b in before) if before else None
        self._last_labels = {int(i): int(p) for i, p in zip(sample, pred, strict=True)}
        return out

    # -- learning rate ----------------------------------------------------------------------
    @property
    def teacher_lr(self) -> float:
        return self.selected_lr or self.config.teacher_lr

    @property
    def student_lr(self) -> float:
        return min(MAX_LR, (self.selected_lr or self.config.student_lr)
                   * self.config.student_lr_scale)

    def _select_lr(self) -> dict:
        """Choose among config.lr_candidates by 2-fold cross-validation on the labelled
        examples (stratified halves; each candidate trains a teacher on one half and predicts
        the other). How far to move from the zero-shot start is what the labels must decide:
        with a strong prior and noisy labels a small step wins, with informative labels a
        large one. Ties go to the smaller learning rate."""
        cfg = self.config
        candidates = list(cfg.lr_candidates)
        if len(candidates) == 1:
            self.selected_lr = candidates[0]
            return {"selected_lr": self.selected_lr}
        rng = np.random.default_rng(np.random.SeedSequence([int(cfg.seed), 0, 1]))
        y = self._lab_y.numpy()
        folds = np.zeros(len(y), dtype=int)
        for c in np.unique(y):
            members = rng.permutation(np.flatnonzero(y == c))
            folds[members[1::2]] = 1
        scores: dict[float, float] = {}
        for lr in candidates:
            correct = 0
            for fold in (0, 1):
                train = np.flatnonzero(folds != fold).tolist()
                held = np.flatnonzero(folds == fold).tolist()
                seed = round_seed(cfg.seed, 0)
                torch.manual_seed(seed)
                self.classifier.reset_trainable(torch.Generator().manual_seed(seed))
                stream = BatchStream(len(train), cfg.labeled_batch_size,
                                     np.random.default_rng(seed + fold))
                try:
                    self._labeled_phase(0, "select_lr", cfg.fold_steps, stream,
                                        self._stepper(lr, cfg.fold_steps), subset=train)
                except NonFiniteLossError:  # this rate diverges here: it cannot win
                    logger.warning("learning rate %g diverged in cross-validation", lr)
                    correct = -1
                    break
                probs = self.classifier.predict_encoded([self._lab_enc[i] for i in held],
                                                        cfg.eval_batch_size)
                correct += int((probs.argmax(1) == y[held]).sum())
            scores[lr] = correct / len(y) if correct >= 0 else -1.0  # -1: diverged
        best = max(scores.values())
        self.selected_lr = min(lr for lr, s in scores.items() if s == best)
        logger.info("learning rate %g chosen by 2-fold cross-validation on the labels (%s)",
                    self.selected_lr, ", ".join(f"{lr:g}: {s:.3f}" for lr, s in scores.items()))
        return {"selected_lr": self.selected_lr,
                "lr_cv_accuracy": {f"{lr:g}": s for lr, s in scores.items()}}

    # -- phases -----------------------------------------------------------------------------
    def _stepper(self, lr: float, steps: int) -> Stepper:
        params = list(self._params.values())
        optimizer, scheduler = make_optimizer(params, lr, steps, self.config)
        return Stepper(optimizer, scheduler, params, self.config.grad_clip)

    def _emit(self, r: int, phase: str, step: int, phase_steps: int, loss: float, lr: float,
              **extra) -> None:
        self.global_step += 1
        total = max(1, self.config.total_steps)
        self.callbacks.trigger("on_step", StepEvent(
            round=r, phase=phase, step=step, phase_steps=phase_steps,
            global_step=self.global_step, total_steps=total, loss=float(loss), lr=lr,
            progress=min(1.0, self.global_step / total), extra=extra))
        if self.callbacks.should_stop():
            raise _Stopped

    def _batch(self, encoded: list[Encoded], idx) -> dict[str, torch.Tensor]:
        return self.classifier.collate([encoded[i] for i in idx])

    def _labeled_phase(self, r: int, phase: str, steps: int, stream: BatchStream,
                       stepper: Stepper, subset: list[int] | None = None) -> None:
        module = self.classifier.module
        for step in range(1, steps + 1):
            module.train()
            idx = stream.next()
            if subset is not None:  # stream positions -> labelled indices
                idx = [subset[i] for i in idx]
            logits = self.classifier.logits(self._batch(self._lab_enc, idx))
            loss = ce_loss(logits, self._lab_y[idx].to(logits.device))
            lr = stepper.step(loss)
            self._emit(r, phase, step, steps, loss.item(), lr)

    def _advance_skipped(self, r: int, stepper: Stepper) -> None:
        for step in range(1, self.config.unlabeled_steps + 1):
            lr = stepper.step(None)
            self._emit(r, "kd", step, self.config.unlabeled_steps, 0.0, lr, skipped=True)

    def _unlabeled_phase(self, r, sample, kept_idx, probs, stepper, rng, weight_sum,
                         weight_cnt, stats, ids, noise: torch.Generator) -> None:
        cfg = self.config
        clf = self.classifier
        module = clf.module
        enc = [self._unl_enc[i] for i in kept_idx]  # positions into `kept_idx`
        targets = torch.from_numpy(probs[kept_idx]).float().to(clf.device)
        unl = BatchStream(len(enc), cfg.unlabeled_batch_size, rng,
                          lengths=[len(e.input_ids) for e in enc])
        meta = BatchStream(len(self._lab_enc), cfg.meta_batch_size, rng)
        kd_steps = cfg.kd_steps
        steps = cfg.unlabeled_steps
        for step in range(1, steps + 1):
            t0 = time.perf_counter()
            idx = unl.next()
            batch = drop_tokens(self._batch(enc, idx), cfg.token_drop, noise)
            target = targets[idx]
            phase = "kd" if step <= kd_steps else "meta"
            extra: dict = {}
            if phase == "kd":
                weights = torch.full((len(idx),), 1.0 / len(idx), device=clf.device)
                status = "ok"
            else:
                weights, status, sims = self._meta_weights(batch, target, meta.next())
                if status != "ok":
                    stats[status] += 1
                extra = {"status": status, "n_positive": int((sims > 0).sum())}
                w = weights.detach().cpu().numpy()
                pos = kept_idx[idx]
                np.add.at(weight_sum, pos, w)
                np.add.at(weight_cnt, pos, 1)
                self.callbacks.trigger("on_meta_weights", r, [ids[i] for i in pos],
                                       weight_sum[pos] / weight_cnt[pos])
            module.train()
            if status == "skipped":  # every weight clamped to 0: no update from this batch
                lr = stepper.step(None)
                loss_value = 0.0
            else:
                per_example = kd_loss_per_example(clf.logits(batch), target, cfg.kd_temperature)
                loss = (weights * per_example).sum()
                lr = stepper.step(loss)
                loss_value = loss.item()
            elapsed = time.perf_counter() - t0
            if phase == "kd":
                stats["kd_steps"] += 1
                stats["kd_time"] += elapsed
            else:
                stats["meta_steps"] += 1
                stats["meta_time"] += elapsed
            self._emit(r, phase, step if phase == "kd" else step - kd_steps,
                       kd_steps if phase == "kd" else steps - kd_steps, loss_value, lr, **extra)

    def _meta_weights(self, batch, target, meta_idx):
        """Weights of one pseudo-labelled batch from <grad L_lab, grad l_i> (eval mode: the
        directional derivative is taken without dropout noise)."""
        cfg = self.config
        clf = self.classifier
        module = clf.module
        module.eval()
        params = self._params
        lab_batch = self._batch(self._lab_enc, meta_idx)
        lab_y = self._lab_y[meta_idx].to(clf.device)
        g = labeled_gradient(lambda: ce_loss(clf.logits(lab_batch), lab_y), params)

        def per_example(p):  # fp32 even with bf16 on: a difference quotient needs precision
            logits = torch.func.functional_call(module, p, kwargs=batch)
            return kd_loss_per_example(logits, target, cfg.kd_temperature)

        base = {k: v.detach() for k, v in params.items()}
        sims, _ = directional_derivative(per_example, base, g, cfg.meta_method, cfg.meta_fd_eps)
        weights, status = normalize_weights(sims, cfg.zero_weight_policy)
        return weights, status, sims

    def _evaluate(self) -> dict:
        if not self.eval_examples:
            return {}
        out = self.classifier.evaluate(self.eval_examples, self.config.eval_batch_size,
                                       encoded=self._eval_enc, with_predictions=True)
        out["eval_pred"] = out.pop("predictions")  # what _keep_best_round compares rounds by
        return out

    # -- checkpoints ------------------------------------------------------------------------
    def _save_checkpoint(self, root: Path, r: int, metrics: list[dict]) -> Path:
        from safetensors.torch import save_file

        from . import __version__

        final = root / f"round-{r}"
        tmp = root / f".round-{r}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        state = {f"model.{k}": v.detach().cpu().contiguous()
                 for k, v in self.classifier.trainable_state().items()}
        state["rng.torch"] = torch.get_rng_state()
        save_file(state, str(tmp / STATE_NAME), metadata={"format": "pt"})
        info = {
            "round": r, "global_step": self.global_step, "config": self.config.to_dict(),
            "metrics": metrics, "meta_stats": self.meta_stats, "library_version": __version__,
            "labeled_sha256": _fingerprint(self.labeled),
            "unlabeled_sha256": _fingerprint(self.unlabeled),
            "classifier": self.classifier.config_dict(metrics={}),
            "rng_numpy_seed": round_seed(self.config.seed, r + 1),
            "last_pseudo_labels": self._last_labels,
        }
        (tmp / TRAINER_STATE_NAME).write_text(json.dumps(_json_safe(info), indent=2,
                                                         sort_keys=True))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        return final

    def _load_checkpoint(self, path: Path) -> tuple[int, list[dict]]:
        from safetensors.torch import load_file

        info_file = path / TRAINER_STATE_NAME
        if not info_file.is_file():
            raise FileNotFoundError(f"{info_file} not found: not a LiST round checkpoint")
        info = json.loads(info_file.read_text())
        saved = LiSTConfig.from_dict(info["config"])
        ignore = {"device", "bf16", "eval_batch_size", "rounds"}
        diff = sorted(k for k, v in saved.to_dict().items()
                      if k not in ignore and self.config.to_dict().get(k) != v)
        if diff:
            raise ValueError(f"checkpoint {path} was made with a different config ({diff}); "
                             "resume needs the same settings")
        if info.get("labeled_sha256") != _fingerprint(self.labeled) or info.get(
                "unlabeled_sha256") != _fingerprint(self.unlabeled):
            raise ValueError(f"checkpoint {path} was made on different data; resume needs the "
                             "same labelled and unlabelled examples")
        try:
            state = load_file(str(path / STATE_NAME))
        except FileNotFoundError:
            raise
        except Exception as exc:  # safetensors' own error for a cut-short or scribbled file
            raise ValueError(f"checkpoint {path} is damaged ({exc})") from exc
        self.classifier.load_trainable_state(
            {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")})
        if "rng.torch" in state:
            torch.set_rng_state(state["rng.torch"])
        self.meta_stats = list(info.get("meta_stats", []))
        self._last_labels = {int(k): int(v) for k, v in info.get("last_pseudo_labels", {}).items()}
        return int(info["round"]), list(info.get("metrics", []))


def _json_safe(obj):
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
