"""Engine callbacks -> database. Progress and sampled losses are buffered and written at most
about once a second, each write one short transaction; per-round results (pseudo-labels,
metrics, checkpoints) are written when they happen (a few times per round): the teacher's
pseudo-labels as soon as it made them, so the inspector fills while the student trains; the
student's running meta weights at most every WEIGHT_FLUSH_SECONDS."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from db.artifact_store import keep_copy
from db.progress import (
    add_artifact,
    record_meta_weights,
    record_metrics,
    record_pseudo_labels,
    update_progress,
)
from list_engine import Callback
from worker.context import RunContext
from worker.files import describe

log = logging.getLogger(__name__)

MAX_LOSS_ROWS = 2000  # sampled losses kept per run
WEIGHT_FLUSH_SECONDS = 5.0  # running meta weights: a live view, not a log


class DBReporter(Callback):
    def __init__(self, ctx: RunContext, flush_seconds: float = 1.0):
        self.ctx = ctx
        self.flush_seconds = flush_seconds
        self._fields: dict = {}
        self._steps: list[dict] = []
        self._every = 1
        self._last_flush = 0.0
        self._gold_accuracy: dict[int, float | None] = {}
        self._weights: dict[int, float] = {}  # document id -> running mean meta weight
        self._weights_round: int | None = None
        self._last_weight_flush = 0.0
        self.started = False  # on_train_start seen

    # -- buffering ---------------------------------------------------------------------------
    def flush(self, **fields) -> None:
        self._fields.update(fields)
        status = self.ctx.db(lambda s: update_progress(
            s, self.ctx.run_id, self.ctx.worker_id, steps=self._steps, **self._fields))
        self._fields, self._steps = {}, []
        self._last_flush = time.monotonic()
        self.ctx.observe_status(status)

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    # -- events ------------------------------------------------------------------------------
    def on_train_start(self, info: dict) -> None:
        self.started = True
        total = int(info.get("total_steps") or 0)
        self._every = max(1, math.ceil(total / MAX_LOSS_ROWS))
        log.info("run %d: training %s", self.ctx.run_id,
                 {k: v for k, v in info.items() if not isinstance(v, dict | list)})
        start = int(info.get("start_step") or 0)
        self.flush(total_steps=total, total_rounds=info.get("rounds"), phase="training",
                   step=start, progress=start / total if total else 0.0,
                   current_round=info.get("start_round", 0))

    def on_round_start(self, round: int) -> None:
        log.info("run %d: round %d starts", self.ctx.run_id, round)
        self.flush(current_round=round, phase="teacher" if round == 0 else "student")

    def on_step(self, event) -> None:
        self._fields.update(current_round=event.round, phase=event.phase,
                            step=event.global_step, total_steps=event.total_steps,
                            progress=float(min(max(event.progress, 0.0), 1.0)))
        if event.global_step % self._every == 0 or event.step == event.phase_steps:
            loss = float(event.loss)
            self._steps.append({
                "round": event.round, "phase": event.phase, "step": event.step,
                "global_step": event.global_step, "loss": loss if math.isfinite(loss) else None,
                "lr": float(event.lr) if event.lr is not None else None,
            })
            if self._steps[-1]["loss"] is None:
                self._steps.pop()
        self._maybe_flush()

    def on_pseudo_labels_made(self, event) -> None:
        self._gold_accuracy[event.round] = event.gold_accuracy
        n = self.ctx.db(lambda s: record_pseudo_labels(
            s, self.ctx.run_id, event.round, list(event.ids), np.asarray(event.probs).tolist(),
            list(event.labels)))
        self._weights, self._weights_round = {}, event.round
        self._last_weight_flush = time.monotonic()
        log.info("run %d: round %d: the teacher made %d pseudo-labels", self.ctx.run_id,
                 event.round, n)

    def on_meta_weights(self, round: int, ids: list, weights) -> None:
        if round != self._weights_round:
            return  # pseudo-labels of this round not recorded (nothing to update)
        self._weights.update(zip((int(i) for i in ids), (float(w) for w in weights),
                                 strict=True))
        if time.monotonic() - self._last_weight_flush >= WEIGHT_FLUSH_SECONDS:
            self._flush_weights()

    def _flush_weights(self) -> None:
        if self._weights and self._weights_round is not None:
            self.ctx.db(lambda s: record_meta_weights(s, self.ctx.run_id, self._weights_round,
                                                      self._weights))
        self._weights = {}
        self._last_weight_flush = time.monotonic()

    def on_pseudo_labels(self, event) -> None:
        self._weights, self._weights_round = {}, None  # the final weights follow
        self._gold_accuracy[event.round] = event.gold_accuracy
        weights = np.asarray(event.weights, dtype=float) if event.weights is not None else None
        n = self.ctx.db(lambda s: record_pseudo_labels(
            s, self.ctx.run_id, event.round, list(event.ids), np.asarray(event.probs).tolist(),
            list(event.labels), None if weights is None else weights.tolist(),
        ))
        log.info("run %d: round %d: %d pseudo-labels (gold accuracy %s)", self.ctx.run_id,
                 event.round, n, event.gold_accuracy)

    def on_evaluate(self, round: int, metrics: dict) -> None:
        metrics = dict(metrics)
        if metrics.get("pseudo_label_accuracy") is None and self._gold_accuracy.get(round) is not None:
            metrics["pseudo_label_accuracy"] = self._gold_accuracy[round]
        self.ctx.db(lambda s: record_metrics(s, self.ctx.run_id, round, metrics))
        log.info("run %d: round %d: accuracy %s macro-F1 %s", self.ctx.run_id, round,
                 metrics.get("accuracy"), metrics.get("macro_f1"))

    def on_round_end(self, round: int, checkpoint: Path | None) -> None:
        if checkpoint is not None:
            sha, size = describe(Path(checkpoint))
            self.ctx.db(lambda s: keep_copy(s, add_artifact(  # a copy for other machines
                s, self.ctx.run_id, "checkpoint", str(checkpoint), sha256=sha, bytes=size,
                round=round)))
        self.flush()

    def on_train_end(self, result) -> None:
        self.flush()

    def should_stop(self) -> bool:
        return self.ctx.should_stop()
