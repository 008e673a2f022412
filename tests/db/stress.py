"""Double-claim stress of the queue: N runs held by a dead worker, P processes each looping
"re-queue stale runs, claim one" until nothing is left to take.

Every run must end claimed exactly once (a second claim means a stale writer erased a
fresh claim) and held by the process that claimed it (else the run is lost). Claims are
fresh for the whole trial (stale after 120 s), so any second claim is a bug.

The suite runs a short form (tests/db/test_queue_stress.py); the full one:
    python -m tests.db.stress --url postgresql+psycopg://.../scratch --runs 100 --procs 6 --trials 8
(on a scratch database: it adds runs and a project to it).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

STALE_SECONDS = 120.0


def _child(url: str, out: str, start_at: float, deadline_s: float) -> None:
    from sqlalchemy import func, or_, select

    from db import jobs
    from db.models import QUEUED, RUNNING, Run, utcnow
    from db.session import get_session

    claims = []
    with get_session(url) as s:
        worker = jobs.register_worker(s, device="cpu").id
        time.sleep(max(0.0, start_at - time.time()))  # all processes race from the same moment
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            jobs.requeue_stale(s, stale_seconds=STALE_SECONDS)
            run = jobs.claim(s, worker)
            if run is not None:
                claims.append([run.id, worker, run.attempts])
                continue
            cutoff = utcnow() - timedelta(seconds=STALE_SECONDS)
            s.rollback()
            left = s.scalar(select(func.count()).select_from(Run).where(or_(
                Run.status == QUEUED,
                (Run.status == RUNNING) & (Run.heartbeat_at < cutoff))))
            s.rollback()
            if not left:
                break
    Path(out).write_text(json.dumps({"worker": worker, "claims": claims}))


def setup_runs(url: str, n_runs: int) -> list[int]:
    """A project with `n_runs` runs, all held by a worker that died an hour ago."""
    from sqlalchemy import update

    from db import jobs
    from db.models import Project, Run, utcnow
    from db.session import get_session, write_transaction

    with get_session(url) as s:
        with write_transaction(s):
            project = Project(name=f"stress-{time.time_ns()}", description="")
            s.add(project)
        ids = [jobs.enqueue(s, project.id, {}, max_attempts=1000).id for _ in range(n_runs)]
        dead = jobs.register_worker(s, device="cpu").id
        while jobs.claim(s, dead) is not None:
            pass
        with write_transaction(s):
            s.execute(update(Run).where(Run.id.in_(ids))
                      .values(heartbeat_at=utcnow() - timedelta(hours=1)))
    return ids


def trial(url: str, workdir: Path, *, n_runs: int = 100, n_procs: int = 6,
          deadline_s: float = 120.0) -> dict:
    """One trial; returns {"runs", "claims", "double_claims", "lost_runs", "seconds"}."""
    from db.models import RUNNING, SUCCEEDED, Run
    from db.session import get_session

    ids = setup_runs(url, n_runs)
    ctx = mp.get_context("spawn")
    start_at = time.time() + 3.0  # time for every process to start and connect
    outs = [workdir / f"claims-{time.time_ns()}-{i}.json" for i in range(n_procs)]
    # Staggered by 20 ms: late starters claim while early ones are still re-queueing, the
    # interleaving in which a stale writer could erase a fresh claim.
    procs = [ctx.Process(target=_child, args=(url, str(o), start_at + 0.02 * i, deadline_s))
             for i, o in enumerate(outs)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(deadline_s + 60)
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"stress processes failed: exit codes {failed}")
    seconds = time.time() - start_at
    claimed_by: dict[int, list[str]] = {}
    for o in outs:
        data = json.loads(o.read_text())
        for run_id, worker, _attempts in data["claims"]:
            claimed_by.setdefault(run_id, []).append(worker)
    with get_session(url) as s:
        final = {r.id: (r.status, r.worker_id) for r in s.query(Run).filter(Run.id.in_(ids))}
        # Done with them: finished, so that a next trial's processes leave them alone.
        s.query(Run).filter(Run.id.in_(ids)).update({Run.status: SUCCEEDED})
        s.commit()
    counts = Counter(len(claimed_by.get(i, [])) for i in ids)
    double = sum(1 for i in ids if len(claimed_by.get(i, [])) > 1)
    lost = sum(1 for i in ids
               if final[i] != (RUNNING, (claimed_by.get(i) or [None])[-1]))
    return {"runs": n_runs, "procs": n_procs, "claims": sum(len(claimed_by.get(i, [])) for i in ids),
            "claims_per_run": dict(sorted(counts.items())), "double_claims": double,
            "lost_runs": lost, "seconds": round(seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="database URL (schema brought to head)")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--procs", type=int, default=6)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args(argv)
    import tempfile

    from db.migrate import upgrade_to_head

    upgrade_to_head(args.url)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for t in range(args.trials):
            result = trial(args.url, Path(tmp), n_runs=args.runs, n_procs=args.procs)
            bad += result["double_claims"] + result["lost_runs"]
            print(f"trial {t + 1}: {json.dumps(result)}", flush=True)
    print(f"{args.trials} trials: {'OK' if bad == 0 else 'FAILED'}")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
