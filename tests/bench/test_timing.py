"""PhaseTimer attributes the gaps between engine events to the right phase."""

from __future__ import annotations

from types import SimpleNamespace

from bench.timing import PhaseTimer


def test_phase_timer_splits_wall_time():
    timer = PhaseTimer()
    clock = iter(range(100))

    def at(kind, rnd=0, phase=None):
        timer.events.append((float(next(clock)), kind, rnd, phase))

    # round 0: setup 1 s, then 3 teacher steps 1 s apart, eval/checkpoint
    at("train_start"), at("round_start"), at("step", 0, "teacher"), at("step", 0, "teacher")
    at("step", 0, "teacher"), at("evaluate"), at("round_end")
    # round 1: pseudo-labelling gap, 2 kd, 2 meta, 1 labelled
    at("round_start", 1), at("step", 1, "kd"), at("step", 1, "kd"), at("step", 1, "meta")
    at("step", 1, "meta"), at("step", 1, "labeled"), at("pseudo_labels", 1), at("round_end", 1)
    at("train_end", 1)
    s = timer.summary()
    ph = s["phases"]
    assert s["total_s"] == 15.0
    assert ph["teacher"] == {"seconds": 2.0, "steps": 3, "median_step_s": 1.0}
    assert ph["setup"]["seconds"] == 2.0  # train start -> round 0 -> first teacher step
    assert ph["pseudo_label"]["seconds"] == 1.0
    assert ph["kd"]["steps"] == 2 and ph["meta"]["steps"] == 2 and ph["labeled"]["steps"] == 1
    assert ph["meta"]["seconds"] == 2.0  # kd -> meta transition counts as a meta step
    assert ph["eval_checkpoint"]["seconds"] == 2.0
    assert sum(p["seconds"] for p in ph.values()) == s["total_s"]


def test_phase_timer_records_engine_callbacks():
    timer = PhaseTimer()
    timer.on_train_start({})
    timer.on_round_start(0)
    timer.on_step(SimpleNamespace(round=0, phase="teacher"))
    timer.on_evaluate(0, {})
    timer.on_round_end(0, None)
    timer.on_train_end(None)
    assert [e[1] for e in timer.events] == ["train_start", "round_start", "step", "evaluate",
                                            "round_end", "train_end"]
