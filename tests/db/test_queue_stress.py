"""The double-claim stress in short form: 100 runs held by a dead worker, 6 processes each
looping "re-queue stale runs, claim one" (tests/db/stress.py has the full form)."""

from __future__ import annotations

import pytest

from tests.db.stress import trial

pytestmark = pytest.mark.slow


def test_no_double_claims_and_no_lost_runs(session, db_settings, tmp_path):
    result = trial(db_settings.database_url, tmp_path, n_runs=100, n_procs=6)
    assert (result["double_claims"], result["lost_runs"]) == (0, 0), result
    assert result["claims"] == 100, result
