"""A ``Callback`` that timestamps the engine's events and splits a run's wall time by phase."""

from __future__ import annotations

import statistics
import time
from typing import Any

from list_engine import Callback

STEP_PHASES = ("teacher", "kd", "meta", "labeled")


class PhaseTimer(Callback):
    """Wall time per phase from event timestamps.

    The gap between two consecutive ``on_step`` events of the same round and phase is one step
    of that phase (forward + backward + optimizer + the callback itself). Other gaps are named
    by where they sit: ``setup`` (before the teacher's first step), ``pseudo_label`` (from a
    student round's start to its first step: teacher inference on the unlabelled sample and the
    student's fresh adapters), ``eval_checkpoint`` (after a round's last step: evaluation and
    the round checkpoint), ``other`` (the rest, e.g. emitting the pseudo-label report).
    """

    def __init__(self) -> None:
        self.events: list[tuple[float, str, int | None, str | None]] = []
        self._round = 0

    def _add(self, kind: str, phase: str | None = None) -> None:
        self.events.append((time.perf_counter(), kind, self._round, phase))

    def on_train_start(self, info: dict) -> None:
        self._add("train_start")

    def on_round_start(self, round: int) -> None:  # noqa: A002 - the engine's argument name
        self._round = round
        self._add("round_start")

    def on_step(self, event) -> None:
        self._round = event.round
        self._add("step", event.phase)

    def on_pseudo_labels(self, event) -> None:
        self._add("pseudo_labels")

    def on_evaluate(self, round: int, metrics: dict) -> None:  # noqa: A002
        self._add("evaluate")

    def on_round_end(self, round: int, checkpoint) -> None:  # noqa: A002
        self._add("round_end")

    def on_train_end(self, result) -> None:
        self._add("train_end")

    def summary(self) -> dict[str, Any]:
        seconds: dict[str, float] = {}
        step_times: dict[str, list[float]] = {p: [] for p in STEP_PHASES}
        steps: dict[str, int] = dict.fromkeys(STEP_PHASES, 0)
        for prev, cur in zip(self.events, self.events[1:], strict=False):
            dt = cur[0] - prev[0]
            _, kind, rnd, phase = cur
            if kind == "step":
                steps[phase] = steps.get(phase, 0) + 1
                if prev[1] == "step" and prev[2] == rnd:
                    name = phase
                    if prev[3] == phase:
                        step_times.setdefault(phase, []).append(dt)
                else:
                    name = "setup" if rnd == 0 else "pseudo_label"
            elif kind in ("evaluate", "round_end") and prev[1] in ("step", "evaluate"):
                name = "eval_checkpoint"
            elif kind == "round_start" and prev[1] == "train_start":
                name = "setup"
            else:
                name = "other"
            seconds[name] = seconds.get(name, 0.0) + dt
        total = self.events[-1][0] - self.events[0][0] if len(self.events) > 1 else 0.0
        phases = {}
        for name, secs in seconds.items():
            entry: dict[str, Any] = {"seconds": round(secs, 3)}
            if name in steps:
                entry["steps"] = steps[name]
                times = step_times.get(name) or []
                entry["median_step_s"] = round(statistics.median(times), 5) if times else None
            phases[name] = entry
        return {"total_s": round(total, 3), "phases": phases}
