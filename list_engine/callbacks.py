"""The events a run emits. Subclass `Callback` and override what you need (all no-ops)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .modeling import PromptClassifier


@dataclass(frozen=True)
class StepEvent:
    round: int  # 0 = teacher
    phase: str  # "teacher" | "kd" | "meta" | "labeled"
    step: int  # 1-based within the phase
    phase_steps: int
    global_step: int  # 1-based over the whole run
    total_steps: int
    loss: float
    lr: float
    progress: float  # global_step / total_steps, 0..1
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. meta: n_positive weights


@dataclass(frozen=True)
class PseudoLabelEvent:
    round: int
    ids: list  # example ids (position in the pool when an example has no id)
    probs: np.ndarray  # (N, C) teacher probabilities
    labels: list[str]  # argmax label names
    weights: np.ndarray  # (N,) mean meta weight per example; nan = never in a meta batch
    gold_accuracy: float | None  # vs gold labels of the pool, if it has them (never trained on)
    kept: np.ndarray | None = None  # (N,) bool: passed the confidence threshold


@dataclass
class TrainResult:
    status: str  # "completed" | "stopped"
    metrics: list[dict]  # one per evaluated round, each with "round"
    rounds_completed: int  # rounds finished after the teacher (teacher = round 0)
    classifier: PromptClassifier
    meta_stats: list[dict] = field(default_factory=list)  # per round: zero batches, ...
    selected_round: int | None = None  # the round the classifier holds (best on eval)


class Callback:
    def on_train_start(self, info: dict) -> None: ...

    def on_round_start(self, round: int) -> None: ...

    def on_step(self, event: StepEvent) -> None: ...

    def on_pseudo_labels_made(self, event: PseudoLabelEvent) -> None:
        """The teacher's pseudo-labels of a round, as soon as it made them (before the
        student trains on them: `weights` are all nan)."""

    def on_meta_weights(self, round: int, ids: list, weights: np.ndarray) -> None:
        """During the meta phase: the running mean meta weight of the pseudo-labels of the
        latest meta batch (`ids` as in PseudoLabelEvent)."""

    def on_pseudo_labels(self, event: PseudoLabelEvent) -> None:
        """At the end of a round: its pseudo-labels with their final mean meta weights."""

    def on_evaluate(self, round: int, metrics: dict) -> None: ...

    def on_round_end(self, round: int, checkpoint: Path | None) -> None: ...

    def on_train_end(self, result: TrainResult) -> None: ...

    def should_stop(self) -> bool:
        return False


class CallbackList:
    """Fans events out to several callbacks (minGPT-style trigger)."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)

    def add(self, callback: Callback) -> None:
        self.callbacks.append(callback)

    def trigger(self, event: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, event)(*args)

    def should_stop(self) -> bool:
        return any(cb.should_stop() for cb in self.callbacks)


class TqdmCallback(Callback):
    """Progress bars for the command line: one over all steps, one per phase."""

    def __init__(self, position: int = 0):
        self.bar = None

    def on_train_start(self, info: dict) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=info["total_steps"], desc="LiST", unit="step", dynamic_ncols=True)
        self.bar.update(info.get("start_step", 0))

    def on_step(self, event: StepEvent) -> None:
        if self.bar is not None:
            self.bar.set_description(f"round {event.round} {event.phase}")
            self.bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.2e}")
            self.bar.update(1)

    def on_evaluate(self, round: int, metrics: dict) -> None:
        if self.bar is not None:
            self.bar.write(f"round {round}: accuracy {metrics.get('accuracy', float('nan')):.4f}"
                           f" macro-F1 {metrics.get('macro_f1', float('nan')):.4f}")

    def on_train_end(self, result: TrainResult) -> None:
        if self.bar is not None:
            self.bar.close()
