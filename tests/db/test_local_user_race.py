"""App processes that start at the same moment on a new database all ask for the local
user; exactly one creates it and every one gets it (on PostgreSQL the others' inserts hit
the unique username)."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

N_PROCS = 6


def _ask_for_local_user(url: str, out: str, start_at: float) -> None:
    from app.services import users
    from db.session import get_session

    with get_session(url) as s:
        s.connection()  # connect before the start line, so the inserts really race
        s.rollback()
        time.sleep(max(0.0, start_at - time.time()))
        Path(out).write_text(json.dumps(users.local_user(s).id))


def test_processes_starting_together_share_one_local_user(session, db_settings, tmp_path):
    from sqlalchemy import func, select

    from app.services.users import LOCAL_USERNAME
    from db.models import User

    ctx = mp.get_context("spawn")
    start_at = time.time() + 3.0  # time for every process to start and connect
    outs = [tmp_path / f"user-{i}.json" for i in range(N_PROCS)]
    procs = [ctx.Process(target=_ask_for_local_user,
                         args=(db_settings.database_url, str(o), start_at)) for o in outs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * N_PROCS
    ids = {json.loads(o.read_text()) for o in outs}
    assert len(ids) == 1
    session.rollback()
    count = session.scalar(select(func.count()).select_from(User)
                           .where(User.username == LOCAL_USERNAME))
    assert count == 1
