"""Sharded batch prediction: a predict run whose config has `shard` = {index, count, runs}
labels one contiguous slice of the corpus (db.jobs.enqueue_sharded_predict). Its CSV is a
"predictions-part" artifact; the worker that completes the last part merges all parts, in
order, into one CSV: the "predictions" artifact of the group's first run."""

from __future__ import annotations

import logging

import pandas as pd
from sqlalchemy import select

from db import jobs
from db.artifact_store import keep_copy, materialize
from db.models import Artifact
from db.progress import add_artifact
from worker.context import RunContext
from worker.files import describe

log = logging.getLogger(__name__)
PART, MERGED = "predictions-part", "predictions"


def shard_slice(total: int, shard: dict) -> slice:
    """The contiguous slice of `total` examples that shard `index` of `count` labels."""
    i, n = int(shard["index"]), int(shard["count"])
    return slice(total * i // n, total * (i + 1) // n)


def merge_if_complete(ctx: RunContext, shard: dict) -> bool:
    """After this shard's part is recorded: if every part of the group is there, write the
    merged CSV (idempotent: two shards finishing together write the same file)."""
    runs = [int(r) for r in shard["runs"]]
    with ctx.session() as s:
        parts = {a.run_id: a for a in s.scalars(
            select(Artifact).where(Artifact.run_id.in_(runs), Artifact.kind == PART))}
        if len(parts) < len(runs):
            return False
        paths = [materialize(s, parts[r]) for r in runs]  # from other machines via the db
    if any(p is None for p in paths):
        return False
    leader = runs[0]
    out = jobs.run_dir(leader) / "predictions.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in paths]) \
        .to_csv(tmp, index=False)
    tmp.replace(out)
    sha, size = describe(out)
    ctx.db(lambda s: keep_copy(s, add_artifact(s, leader, MERGED, str(out), sha256=sha,
                                               bytes=size)))
    log.info("run %d: merged %d prediction parts into %s", ctx.run_id, len(runs), out)
    return True
