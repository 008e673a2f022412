"""The paired seed-by-seed comparison behind the accuracy aims."""

from __future__ import annotations

import pytest

from bench.report import _aims_fewshot, paired_difference


def test_paired_difference_uses_common_seeds_only():
    p = paired_difference({0: 0.60, 1: 0.70, 2: 0.65, 3: 0.5}, {0: 0.55, 1: 0.72, 2: 0.65})
    assert p["seeds"] == [0, 1, 2]
    assert p["mean"] == pytest.approx((0.05 - 0.02 + 0.0) / 3)
    assert (p["wins"], p["ties"]) == (1, 1)
    assert paired_difference({0: 0.5}, {1: 0.5}) is None


def test_aims_report_mean_and_paired_difference():
    def stats(by_seed):
        mean = sum(by_seed.values()) / len(by_seed)
        return {"accuracy": (mean, 0.0), "seeds": sorted(by_seed), "by_seed": by_seed}

    m = {"list_quick": stats({0: 0.70, 1: 0.60}), "prompt_adapters": stats({0: 0.60, 1: 0.58}),
         "setfit": stats({0: 0.75, 1: 0.70}), "list_no_meta": stats({0: 0.70, 1: 0.61})}
    text = "\n".join(_aims_fewshot("mr", m))
    assert "list_quick > prompt_adapters on `mr`: met (65.0 vs 59.0" in text
    assert "+6.0 ± 5.7 points, ahead on 2 of 2" in text
    assert "list_quick > setfit on `mr`: NOT met" in text and "ahead on 0 of 2" in text
    assert "meta re-weighting adds (list_quick − list_no_meta): paired over seeds 0,1: -0.5" in text
    assert "KD warm-up" not in text  # list_no_kd was not run


def test_one_seed_shows_a_bare_mean_not_a_zero_spread():
    from bench.report import _mean_std, _paired_md, _pct

    assert _pct(_mean_std([0.79])) == "79.0"
    assert _pct(_mean_std([0.79, 0.81])) == "80.0 ± 1.4"
    one = paired_difference({0: 0.79}, {0: 0.75})
    assert _paired_md(one) == "paired over seeds 0: +4.0 points, ahead on 1 of 1"


def test_methods_without_a_common_seed_do_not_break_the_report():
    m = {"list_quick": {"accuracy": (0.6, 0.0), "seeds": [4], "by_seed": {4: 0.6}},
         "setfit": {"accuracy": (0.7, 0.0), "seeds": [0], "by_seed": {0: 0.7}}}
    text = "\n".join(_aims_fewshot("mr", m))
    assert "list_quick > setfit on `mr`: NOT met" in text and "no seed in common" in text


def test_the_strategy_benchmark_gets_its_own_section(tmp_path):
    import json

    from bench.report import write_markdown

    runs = [{"data": "mr", "strategy": s, "seed": seed, "accuracy": acc}
            for s, accs in (("random", (0.60, 0.70)), ("uncertain_regions", (0.63, 0.71)))
            for seed, acc in enumerate(accs)]
    runs.append({"data": "bbc", "strategy": "uncertain_regions", "seed": 0, "accuracy": 0.9})
    runs.append({"data": "bbc", "strategy": "random", "seed": 0, "accuracy": 0.85})
    (tmp_path / "active").mkdir()
    (tmp_path / "active" / "2026-01-01-vm.json").write_text(json.dumps(
        {"command": "python -m bench.active", "started": "2026-01-01T00:00:00Z",
         "machine": {"name": "vm", "cpus_usable": 2, "loadavg_at_start": [0.5, 0.5, 0.5]},
         "model": "default", "max_length": 128, "runs": runs}))
    text = write_markdown(tmp_path, tmp_path / "RESULTS.md").read_text()
    assert "## Which 30 to label (bench.active)" in text and "max length 128" in text
    assert "random             accuracy  65.0 ±  7.1 (2 seeds)" in text
    assert "uncertain_regions - random: +2.0 ± 1.4 points, ahead on 2 of 2 seeds" in text
    assert "uncertain_regions - random: +5.0 points, ahead on 1 of 1 seeds" in text  # bbc
    assert "random             accuracy  85.0 (one seed: no spread) (1 seeds)" in text


def test_a_runs_own_teacher_and_the_train_time_target():
    from bench.report import TEACHER_SUFFIX, summarize_fewshot

    def run(method, seed, acc, train_s, rounds=None):
        r = {"data": "mr", "model": "default", "n_labeled": 30, "max_length": 256,
             "method": method, "seed": seed, "accuracy": acc, "macro_f1": acc,
             "train_s": train_s, "peak_rss_mb": 900}
        return {**r, "round_accuracy": rounds} if rounds else r

    runs = [run("list_quick", 0, 0.74, 30.0, [0.70, 0.72, 0.74]),
            run("list_quick", 1, 0.71, 32.0, [0.70, 0.70, 0.71]),
            run("setfit", 0, 0.60, 25.0), run("setfit", 1, 0.66, 40.0)]
    m = next(iter(summarize_fewshot(runs).values()))
    assert m["list_quick" + TEACHER_SUFFIX]["by_seed"] == {0: 0.70, 1: 0.70}
    text = "\n".join(_aims_fewshot("mr", m))
    assert "list_quick > list_quick@teacher on `mr`: met (72.5 vs 70.0" in text
    assert "target list_quick >= list_quick@teacher + 3 points on `mr`: NOT met (paired mean +2.5)" in text
    assert "target list_quick >= setfit + 3 points on `mr`: met (paired mean +9.5)" in text
    assert ("train time of list_quick <= setfit's (same machine, same runs) on `mr`: NOT met "
            "(list_quick / setfit per seed: 1.20, 0.80") in text
