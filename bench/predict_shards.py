"""Sharded batch prediction throughput: one corpus, split into shards, labelled by 1 and by
2 worker processes against one PostgreSQL (a throwaway cluster, or --url).

    python -m bench.predict_shards --docs 20000 --shards 8          # the real figures
    python -m bench.predict_shards --docs 300 --shards 2 --tiny DIR  # a smoke test

Each setting: enqueue the sharded run (db.jobs.enqueue_sharded_predict), start W workers,
time until the merged CSV exists; prints documents per second per setting and the speed-up.
The model is the packaged default (all-MiniLM-L6-v2, untrained adapters: prediction costs the
same as with trained ones), or --tiny DIR. On N GPU machines each worker is one GPU: the
throughput scales with workers while the shards outnumber them and the database is idle
(each shard writes only its progress, once per batch, and one CSV).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORDS = {"negative": ["bad", "awful", "boring", "sad", "dull"],
         "positive": ["great", "fun", "lovely", "good", "bright"]}


def _setup(url: str, data_dir: Path, docs: int, model: str) -> tuple[int, int, int]:
    """A project with `docs` documents and a succeeded train run holding an (untrained)
    model, and a 4-document project to warm the workers up; returns (project id, source run
    id, warm-up project id)."""
    import hashlib

    from db.migrate import upgrade_to_head
    from db.models import SUCCEEDED, Artifact, Document, Project, Run
    from db.session import get_session, write_transaction
    from list_engine import PromptClassifier

    upgrade_to_head(url)
    rng = random.Random(0)
    clf = PromptClassifier.create(model=model, template="{text} It was {mask}.",
                                  verbalizer={"negative": "bad", "positive": "good"},
                                  max_length=64, device="cpu")
    model_dir = clf.save_pretrained(data_dir / "artifacts" / "bench-model")
    with get_session(url) as s, write_transaction(s):
        project = Project(name=f"shards-{time.time_ns()}", description="")
        s.add(project)
        s.flush()
        for i in range(docs):
            label = "positive" if i % 2 else "negative"
            text = f"review {i}: the film was " + " ".join(rng.choices(WORDS[label], k=12))
            s.add(Document(project_id=project.id, text=text,
                           content_hash=hashlib.sha256(text.encode()).hexdigest()))
        run = Run(project_id=project.id, kind="train", config={}, status=SUCCEEDED)
        s.add(run)
        s.flush()
        s.add(Artifact(run_id=run.id, kind="model", path=str(model_dir), sha256="", bytes=0))
        warm = Project(name=f"warm-{time.time_ns()}", description="")
        s.add(warm)
        s.flush()
        for i in range(4):
            s.add(Document(project_id=warm.id, text=f"warm-up {i}", content_hash=f"w{i}"))
        return project.id, run.id, warm.id


def _label(url: str, project_id: int, source: int, shards: int, timeout: float) -> float:
    """Seconds from enqueueing a sharded predict run until its merged CSV exists."""
    from db import jobs, queries
    from db.session import get_session

    with get_session(url) as s:
        leader = jobs.enqueue_sharded_predict(
            s, project_id, {"source_run_id": source, "input": "corpus"}, shards)[0].id
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            s.rollback()
            if queries.run_artifacts(s, leader, kind="predictions"):
                return time.monotonic() - start
            time.sleep(0.2)
    raise RuntimeError(f"no merged CSV after {timeout} s")


def _measure(url: str, data_dir: Path, project_id: int, source: int, warm: int, shards: int,
             workers: int, timeout: float) -> dict:
    env = dict(os.environ, LIST_DATABASE_URL=url, LIST_DATA_DIR=str(data_dir),
               LIST_DEVICE="cpu", LIST_WORKER_POLL_SECONDS="0.2", PYTHONUNBUFFERED="1",
               OMP_NUM_THREADS=str(max(1, (os.cpu_count() or 2) // workers)))
    procs = [subprocess.Popen([sys.executable, "-m", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for _ in range(workers)]
    try:
        _label(url, warm, source, 2 * workers, timeout)  # workers have loaded torch + the model
        seconds = _label(url, project_id, source, shards, timeout)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
    return {"workers": workers, "shards": shards, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--tiny", default=None, help="a model folder instead of the default")
    parser.add_argument("--url", default=None, help="PostgreSQL URL (default: a throwaway cluster)")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    cluster = None
    if args.url is None:
        from tests.pg import start_cluster

        cluster = start_cluster()
        args.url = cluster.create_database()
    try:
        with tempfile.TemporaryDirectory(prefix="shards-") as tmp:
            data_dir = Path(tmp)
            os.environ.update(LIST_DATA_DIR=str(data_dir), LIST_DATABASE_URL=args.url)
            project_id, source, warm = _setup(args.url, data_dir, args.docs,
                                              args.tiny or "default")
            results = []
            for w in args.workers:
                r = _measure(args.url, data_dir, project_id, source, warm, args.shards, w,
                             args.timeout)
                r["docs_per_second"] = round(args.docs / r["seconds"], 1)
                results.append(r)
                print(json.dumps(r), flush=True)
            base = results[0]["docs_per_second"]
            for r in results[1:]:
                print(f"{r['workers']} workers: {r['docs_per_second'] / base:.2f}x the throughput "
                      f"of {results[0]['workers']}")
    finally:
        if cluster is not None:
            cluster.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
