"""Time left of a running training run, from the step times that run itself measured.

The run's steps are not equal: a meta step costs about three KD steps, an unlabelled batch
is larger than a labelled one, and the teacher's pseudo-labelling and each round's
evaluation are forward passes between the steps. So the remaining work is split by phase
and each phase is priced at its own measured seconds per step; a phase the run has not
reached yet is priced from the measured ones through the relative costs below. Before any
phase has been measured for a few seconds there is no ETA (None), rather than a guess.
"""

from __future__ import annotations

from collections.abc import Iterable

MIN_SPAN_S = 3.0  # a phase segment must span this long to give a rate (writes are ~1 s apart)
META_COST = 3.0  # a meta step ~ 3 KD steps (gradient + two perturbed forward passes)
FORWARD_SHARE = 1 / 3  # inference of one example ~ a third of training on it


def schedule(list_config: dict) -> list[tuple[int, str, int]]:
    """(round, phase, steps) in the order the engine runs them, as StepEvent phases name
    them; empty when the config is not readable."""
    from list_engine import LiSTConfig

    try:
        cfg = LiSTConfig.from_dict(list_config)
    except (TypeError, ValueError):
        return []
    out = [(0, "select_lr", cfg.selection_steps), (0, "teacher", cfg.teacher_steps)]
    for r in range(1, cfg.active_rounds + 1):
        out += [(r, "kd", cfg.kd_steps), (r, "meta", cfg.unlabeled_steps - cfg.kd_steps),
                (r, "labeled", cfg.labeled_steps)]
    return [s for s in out if s[2] > 0]


def relative_costs(list_config: dict) -> dict[str, float]:
    """Cost of one step of each phase, in labelled-batch steps."""
    lb = max(1, int(list_config.get("labeled_batch_size") or 4))
    ub = max(1, int(list_config.get("unlabeled_batch_size") or 16))
    kd = ub / lb
    return {"select_lr": 1.0, "teacher": 1.0, "labeled": 1.0, "kd": kd, "meta": META_COST * kd}


def measured_rates(rows: Iterable[tuple[int, str, int, object]]) -> dict[str, float]:
    """Seconds per step of each phase from sampled step rows (round, phase, global_step,
    written_at) in write order: per (round, phase) segment, elapsed time over steps; the
    latest segment of a phase that spans at least MIN_SPAN_S wins."""
    segments: dict[tuple[int, str], list] = {}
    for round_, phase, step, at in rows:
        seg = segments.get((round_, phase))
        if seg is None:
            segments[(round_, phase)] = [at, step, at, step]
        else:
            seg[2], seg[3] = at, step
    rates: dict[str, float] = {}
    for (_, phase), (t0, s0, t1, s1) in segments.items():
        span = (t1 - t0).total_seconds()
        if s1 > s0 and span >= MIN_SPAN_S:
            rates[phase] = span / (s1 - s0)
    return rates


def remaining_seconds(list_config: dict, step: int, current_round: int,
                      rates: dict[str, float], n_pool: int = 0, n_eval: int = 0) -> float | None:
    """Seconds left after global step `step` (None without a measured rate)."""
    if not rates:
        return None
    costs = relative_costs(list_config)
    # seconds per labelled-batch step, from what was measured (mean over measured phases)
    unit = sum(rates[p] / costs[p] for p in rates if p in costs) / max(
        1, sum(1 for p in rates if p in costs))
    if unit <= 0:
        return None
    left, start = 0.0, 0
    for _, phase, steps in schedule(list_config):
        todo = min(steps, max(0, start + steps - step))
        left += todo * rates.get(phase, unit * costs.get(phase, 1.0))
        start += steps
    # forward passes still to come: pseudo-labelling of each later round, evaluation of
    # the current round and every later one
    lb = max(1, int(list_config.get("labeled_batch_size") or 4))
    rounds = int(list_config.get("rounds") or 0) if list_config.get("self_training", True) else 0
    sample = min(int(list_config.get("unlabeled_sample_size") or n_pool), n_pool)
    later = max(0, rounds - current_round)
    examples = later * sample + (later + 1) * n_eval
    left += examples * unit * FORWARD_SHARE / lb
    return left
