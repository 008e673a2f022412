"""Concurrent use of one SQLite database: labellers + a training worker + a predict worker.

    python -m bench.concurrency --seconds 300              # the full probe (default model, MR)
    python -m bench.concurrency --seconds 20 --tiny DIR    # the short form (tests use it)

What happens, all against one real SQLite file in a fresh data folder:
1. A project with an imported corpus, two label classes, 16 labels (8 held out) and a prompt.
2. A first, short training run gives a model to predict with (one real worker process).
3. The load: a second training run (long enough to train the whole time), predict runs over
   the corpus queued one after another, two real workers taking them, and two labeller
   processes that save labels through `app.services.labelling` as fast as a person with a
   fast hand (one action per `--think` seconds; every tenth action is an undo), while this
   process also starts the predict runs through the app's service.
4. Figures: saves tried and failed, latency p50 / p95 / p99 / max of every user action,
   "database is locked" lines in the workers' logs, what became of the runs, and a check
   that every save a labeller saw succeed is in the label history (nothing lost).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("negative", "positive")
UNDO_EVERY = 10


# ---------------------------------------------------------------- the labeller process


def labeller(project_id: int, seconds: float, think: float, seed: int, out: Path) -> None:
    """Save labels for `seconds`; write latencies and failures to `out` (JSON)."""
    from sqlalchemy import select

    from app.services import labelling
    from db.models import Document, LabelClass
    from db.session import get_session

    rng = random.Random(seed)
    with get_session() as s:
        doc_ids = list(s.scalars(select(Document.id).where(Document.project_id == project_id)))
        class_ids = list(s.scalars(select(LabelClass.id).where(LabelClass.project_id == project_id)))
    latencies, failures, events = [], [], 0
    deadline = time.monotonic() + seconds
    action = 0
    while time.monotonic() < deadline:
        action += 1
        t0 = time.perf_counter()
        try:
            with get_session() as s:
                if action % UNDO_EVERY == 0:
                    labelling.undo(s, project_id)  # marks an event undone; adds none
                else:
                    event = labelling.set_label(s, project_id, rng.choice(doc_ids),
                                                rng.choice(class_ids))
                    events += event is not None
        except Exception as exc:  # a failed save is the figure this probe measures
            failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")
        latencies.append(time.perf_counter() - t0)
        time.sleep(think)
    out.write_text(json.dumps({"latencies": latencies, "failures": failures, "events": events}))


# ---------------------------------------------------------------- set-up


def _texts(n: int, tiny: bool) -> list[tuple[str, str]]:
    """(text, gold label) pairs: MR sentences for the full probe, made-up ones for tests."""
    if not tiny:
        from bench.data import load_mr

        examples = list(load_mr().examples)
        random.Random(0).shuffle(examples)  # both classes in any prefix
        pairs = [(e.text, e.label) for e in examples[:n]]
        if len(pairs) >= n:
            return pairs
    rng = random.Random(0)
    good, bad = ["great", "fun", "lovely", "moving"], ["dull", "awful", "boring", "flat"]
    return [(f"review {i}: the film was {rng.choice(good if i % 2 else bad)} and "
             f"{rng.choice(good if i % 2 else bad)}", CLASSES[i % 2]) for i in range(n)]


def make_project(session, n_docs: int, tiny: bool, model: str) -> int:
    import pandas as pd

    from app.services import corpus, labelling, projects, prompts

    project = projects.create_project(session, f"concurrency probe {time.time():.0f}")
    pairs = _texts(n_docs, tiny)
    df = pd.DataFrame({"text": [t for t, _ in pairs], "gold": [g for _, g in pairs]})
    corpus.import_documents(session, project.id, df, text_column="text", label_column="gold")
    names = sorted({g for _, g in pairs})
    classes = {n: labelling.add_label_class(session, project.id, n, verbalizer_word=w)
               for n, w in zip(names, ("bad", "good"), strict=False)}
    from sqlalchemy import select

    from db.models import Document

    rows = session.execute(select(Document.id, Document.gold_label)
                           .where(Document.project_id == project.id).order_by(Document.id)).all()
    chosen: dict[str, list[int]] = {n: [] for n in names}
    for doc_id, gold in rows:
        if len(chosen[gold]) < 8:
            chosen[gold].append(doc_id)
    for name, ids in chosen.items():
        for doc_id in ids:
            labelling.set_label(session, project.id, doc_id, classes[name].id)
        labelling.mark_held_out(session, project.id, ids[4:])
    prompts.save_prompt_config(session, project.id, template="{text} It was {mask}.",
                               verbalizer={n: c.verbalizer_word for n, c in classes.items()},
                               model=model)
    return project.id


def train_config(model: str, *, long: bool, tiny: bool) -> dict:
    if tiny:
        # The long run must outlast the load on a fast, idle machine: it is cancelled at the end.
        steps = dict(teacher_steps=5000 if long else 8, unlabeled_steps=5000 if long else 6,
                     labeled_steps=3, rounds=3 if long else 1, max_length=32)
    else:
        steps = dict(teacher_steps=200 if long else 30, unlabeled_steps=200 if long else 20,
                     labeled_steps=10, rounds=3 if long else 1, max_length=64)
    list_config = {"labeled_batch_size": 4, "unlabeled_batch_size": 8, "meta_batch_size": 4,
                   "unlabeled_sample_size": 300 if tiny else 1000, "eval_batch_size": 32,
                   "seed": 1, "teacher_lr": 1e-3, "student_lr": 1e-3, **steps}
    return {"template": "{text} It was {mask}.", "verbalizer": {"negative": "bad", "positive": "good"},
            "model": model, "mode": "prompt", "list_config": list_config, "eval_source": "auto"}


# ---------------------------------------------------------------- the probe


def _app_action(latencies: list[float], failures: list[str], fn, *args):
    """Time one user action done the way the app's pages do it (a service call)."""
    from db.session import get_session

    t0 = time.perf_counter()
    try:
        with get_session() as s:
            return fn(s, *args)
    except Exception as exc:  # a failed action is a figure of the probe
        failures.append(f"{fn.__name__}: {type(exc).__name__}: {str(exc)[:200]}")
    finally:
        latencies.append(time.perf_counter() - t0)


def _start_predict(session, project_id: int, source_run_id: int) -> int:
    from app.services.predict import start_predict

    return start_predict(session, project_id, source_run_id).id


def _import_more(session, project_id: int, n: int, tiny: bool) -> None:
    import pandas as pd

    from app.services import corpus

    texts = [f"{t} (second batch {i})" for i, (t, _) in enumerate(_texts(n, tiny))]
    report = corpus.import_documents(session, project_id, pd.DataFrame({"text": texts}),
                                     text_column="text", filename="more.csv")
    if report.imported != n:
        raise AssertionError(f"imported {report.imported} of {n}")


def _save_prompt(session, project_id: int, model: str) -> None:
    from app.services import prompts

    prompts.save_prompt_config(session, project_id, template="{text} All in all, it was {mask}.",
                               verbalizer={"negative": "bad", "positive": "good"}, model=model)


def _start_worker(env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "worker", "--poll", "0.2"], cwd=ROOT, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(values) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 1),
            "p95_ms": round(float(np.percentile(a, 95)), 1),
            "p99_ms": round(float(np.percentile(a, 99)), 1),
            "max_ms": round(float(a.max()), 1)}


def probe(*, seconds: float, data_dir: Path, model: str, tiny: bool, n_docs: int,
          labellers: int = 2, think: float = 0.05, setup_timeout: float = 900) -> dict:
    """Run the probe in `data_dir` (a fresh folder); returns the figures."""
    from sqlalchemy import func, select

    os.environ.update(LIST_DATA_DIR=str(data_dir), LIST_MODEL=model, LIST_DEVICE="cpu",
                      LIST_HEARTBEAT_SECONDS="1", LIST_STALE_SECONDS="60")
    os.environ.pop("LIST_DATABASE_URL", None)
    from db import jobs
    from db.health import open_database
    from db.models import SUCCEEDED, LabelEvent, Run
    from db.session import get_session
    from db.settings import get_settings

    get_settings.cache_clear()
    open_database(get_settings().database_url)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1",
               TOKENIZERS_PARALLELISM="false", PYTHONPATH=str(ROOT))
    logs = [data_dir / "worker-0.log", data_dir / "worker-1.log"]
    workers: list[subprocess.Popen] = []

    def status(run_id: int) -> str:
        with get_session() as s:
            return s.get(Run, run_id).status

    try:
        with get_session() as s:
            project_id = make_project(s, n_docs, tiny, model)
            source = jobs.enqueue(s, project_id, train_config(model, long=False, tiny=tiny))
        workers.append(_start_worker(env, logs[0]))
        _wait(lambda: status(source.id) in (SUCCEEDED, "failed"), setup_timeout, "the first run")
        if status(source.id) != SUCCEEDED:
            raise RuntimeError(f"the first run failed:\n{logs[0].read_text()[-3000:]}")

        with get_session() as s:
            events_before = s.scalar(select(func.count()).select_from(LabelEvent)
                                     .where(LabelEvent.project_id == project_id))
            long_run = jobs.enqueue(s, project_id, train_config(model, long=True, tiny=tiny))
        workers.append(_start_worker(env, logs[1]))
        _wait(lambda: status(long_run.id) == "running", setup_timeout, "the long run to start")

        outs = [data_dir / f"labeller-{i}.json" for i in range(labellers)]
        procs = [subprocess.Popen(
            [sys.executable, "-m", "bench.concurrency", "--labeller", str(project_id),
             "--seconds", str(seconds), "--think", str(think), "--seed", str(i),
             "--out", str(out)], cwd=ROOT, env=env) for i, out in enumerate(outs)]
        app_actions: dict[str, list[float]] = {"start_predict": [], "import_3000": [],
                                               "save_prompt": []}
        app_failures: list[str] = []
        predict_runs, started, imported = [], time.monotonic(), False
        while any(p.poll() is None for p in procs):
            elapsed = time.monotonic() - started
            if elapsed < seconds and (
                    not predict_runs or status(predict_runs[-1]) in (SUCCEEDED, "failed")):
                run_id = _app_action(app_actions["start_predict"], app_failures,
                                     _start_predict, project_id, source.id)
                if run_id:
                    predict_runs.append(run_id)
            if not imported and elapsed > seconds / 3:  # a new batch of documents mid-load
                imported = True
                _app_action(app_actions["import_3000"], app_failures, _import_more,
                            project_id, 3000, tiny)
            if elapsed < seconds:
                _app_action(app_actions["save_prompt"], app_failures, _save_prompt, project_id,
                            model)
            time.sleep(1.0)
        long_status = status(long_run.id)
        if predict_runs:  # let the last predict run finish: its outcome is part of the figures
            _wait(lambda: status(predict_runs[-1]) in (SUCCEEDED, "failed"), setup_timeout,
                  "the last predict run")
        with get_session() as s:
            if long_status == "running":
                jobs.request_cancel(s, long_run.id)
            events_after = s.scalar(select(func.count()).select_from(LabelEvent)
                                    .where(LabelEvent.project_id == project_id))
            predict_status = [s.get(Run, r).status for r in predict_runs]
            errors = [s.get(Run, r).error for r in [long_run.id, *predict_runs]
                      if s.get(Run, r).error]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=120)
            except subprocess.TimeoutExpired:
                w.kill()

    results = [json.loads(o.read_text()) for o in outs]
    latencies = [x for r in results for x in r["latencies"]]
    failures = [f for r in results for f in r["failures"]]
    worker_log = "\n".join(p.read_text() for p in logs if p.exists())
    return {
        "seconds": seconds, "labellers": labellers, "think_s": think, "model": model,
        "documents": n_docs,
        "saves": len(latencies), "failed_saves": len(failures), "failures": failures[:20],
        "save_latency": _percentiles(latencies),
        "events_reported": sum(r["events"] for r in results),
        "events_stored": events_after - events_before,
        "long_run_status_at_end": long_status,
        "predict_runs": len(predict_runs), "predict_succeeded": predict_status.count(SUCCEEDED),
        "predict_status": predict_status,
        "app_actions": {name: {"n": len(v), **_percentiles(v)} for name, v in app_actions.items()},
        "app_failures": app_failures,
        "run_errors": errors,
        "worker_lock_errors": worker_log.lower().count("database is locked"),
        "worker_tracebacks": worker_log.count("Traceback"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.concurrency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--think", type=float, default=0.05, help="pause between a labeller's actions")
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--tiny", metavar="MODEL_DIR", help="a tiny model dir (the short form)")
    parser.add_argument("--out", type=Path, help="write the figures (JSON) here")
    parser.add_argument("--labeller", type=int, metavar="PROJECT_ID", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.labeller is not None:
        labeller(args.labeller, args.seconds, args.think, args.seed, args.out)
        return 0

    from bench.runner import command_line, machine_info, utc_now

    with tempfile.TemporaryDirectory(prefix="list-concurrency-") as tmp:
        figures = probe(seconds=args.seconds, data_dir=Path(tmp), tiny=bool(args.tiny),
                        model=args.tiny or "default", n_docs=args.docs, think=args.think)
    figures.update(when=utc_now(), machine=machine_info(), command=command_line(
        "bench.concurrency", argv), load_avg_1m=os.getloadavg()[0])
    text = json.dumps(figures, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0 if figures["failed_saves"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
