"""Every training run of a project in one table: the settings that differ between runs, the
prompt head, rounds, accuracy with its interval, time and device."""

from __future__ import annotations

import json

import pandas as pd
from sqlalchemy.orm import Session

from app.services import evaluation
from app.services import runs as run_service
from db import queries

# Settings never worth a column: the same machinery, or shown elsewhere in the row.
_IGNORED = {"device", "eval_batch_size", "adapter", "adam_betas", "adam_eps", "grad_clip",
            "weight_decay", "meta_method", "meta_fd_eps", "zero_weight_policy", "bf16"}


def _settings(run) -> dict:
    """The settings of one run that may differ from another's: the engine config, plus the
    model, mode, preset, prompt and evaluation source the app chose."""
    cfg = run.config or {}
    lc = cfg.get("list_config") or {}
    out = {k: v for k, v in lc.items() if k not in _IGNORED}
    if isinstance(lc.get("adapter"), dict):
        out["adapter size"] = lc["adapter"].get("bottleneck")
    out.update({"model": cfg.get("model"), "mode": cfg.get("mode"), "preset": cfg.get("preset"),
                "prompt": cfg.get("template"), "evaluation": cfg.get("eval_source")})
    return {k: _cell(v) for k, v in out.items()}


def _cell(value):
    """A value a table cell can hold and compare (lists and dicts as JSON)."""
    return json.dumps(value) if isinstance(value, list | tuple | dict) else value


def differing(settings: list[dict]) -> list[str]:
    """The setting names whose values are not the same for every run, in first-seen order."""
    names = list(dict.fromkeys(k for s in settings for k in s))
    return [k for k in names if len({json.dumps(s.get(k), default=str) for s in settings}) > 1]


def training_runs_table(session: Session, project_id: int) -> pd.DataFrame:
    """One row per training run, newest first. Accuracy and macro-F1 are those of the round
    the model kept (the latest evaluated one while a run is going); `n eval` is the number
    of evaluation examples behind them."""
    runs = queries.list_runs(session, project_id, kind="train", limit=1000)
    settings = [_settings(r) for r in runs]
    changed = differing(settings) if len(runs) > 1 else []
    rows = []
    for run, s in zip(runs, settings, strict=True):
        metrics = run_service.round_metrics(session, run.id)
        shown = evaluation.kept_round(metrics) or next(
            (m for m in reversed(metrics) if m["accuracy"] is not None), None)
        rep = evaluation.report(shown) if shown else None
        first = next((m["details"] for m in metrics if m["round"] == 0), {}) or {}
        interval = rep["accuracy_interval"] if rep else None
        rows.append({
            "id": run.id,  # the key (hidden on the page)
            "run": run.number if run.number is not None else run.id,  # what people see
            "status": f"{run_service.STATUS_ICONS.get(run.status, '')} {run.status}",
            "head": first.get("head") or "",
            "rounds": (s.get("rounds") if run.total_rounds is None else run.total_rounds),
            "accuracy": shown["accuracy"] if shown else None,
            "95 % interval": (f"{100 * interval[0]:.0f}–{100 * interval[1]:.0f} %"
                              if interval else ""),
            "n eval": rep["n"] if rep else None,
            "macro-F1": shown["macro_f1"] if shown else None,
            "kept round": shown["round"] if shown else None,
            "time (s)": run_service.duration_s(run),
            "device": run.device or "",
            "started (UTC)": run.created_at,
            **{f"setting: {k}": s.get(k) for k in changed},
        })
    return pd.DataFrame(rows)
