"""The short form of the concurrency probe (bench/concurrency.py): two labeller processes,
a training worker and a predict worker on one SQLite file. No save may fail and every save
a labeller saw succeed must be in the label history."""

from __future__ import annotations

import pytest

from bench.concurrency import probe


@pytest.mark.slow
def test_labelling_during_training_and_prediction_never_fails(tmp_path, tiny_bert_dir, monkeypatch):
    for name in ("LIST_DATA_DIR", "LIST_MODEL", "LIST_DEVICE", "LIST_DATABASE_URL",
                 "LIST_HEARTBEAT_SECONDS", "LIST_STALE_SECONDS"):
        monkeypatch.setenv(name, "")  # probe() sets them; monkeypatch restores them after
    figures = probe(seconds=25, data_dir=tmp_path / "data", model=str(tiny_bert_dir), tiny=True,
                    n_docs=300, think=0.02, setup_timeout=600)
    from db.settings import get_settings

    get_settings.cache_clear()
    print(figures)
    assert figures["saves"] > 50, figures  # the labellers really worked
    assert figures["failed_saves"] == 0, figures["failures"]
    assert figures["events_stored"] == figures["events_reported"], figures
    assert figures["long_run_status_at_end"] == "running", figures  # training overlapped
    assert figures["predict_succeeded"] >= 1, figures
    assert not figures["app_failures"], figures["app_failures"]  # import, prompt, predict
    assert figures["app_actions"]["import_3000"]["n"] == 1, figures
    assert figures["worker_lock_errors"] == 0, figures
    assert not figures["run_errors"], figures
