from __future__ import annotations

import json

import pytest

from list_engine import PRESETS, AdapterConfig, LiSTConfig


def test_presets_and_round_trip():
    paper = LiSTConfig.preset("paper")
    assert (paper.teacher_steps, paper.teacher_lr, paper.rounds, paper.unlabeled_steps,
            paper.labeled_steps, paper.student_lr) == (400, 5e-6, 6, 1000, 400, 1e-4)
    assert paper.kd_steps == 600
    assert (paper.labeled_batch_size, paper.unlabeled_batch_size, paper.meta_batch_size) == (
        4, 16, 4)
    quick = LiSTConfig.preset("quick", seed=3, adapter={"bottleneck": 8})
    assert quick.seed == 3 and quick.adapter == AdapterConfig(bottleneck=8)
    data = json.loads(json.dumps(quick.to_dict()))
    assert LiSTConfig.from_dict(data) == quick
    assert set(PRESETS) == {"quick", "paper"}


@pytest.mark.parametrize("bad", [
    {"mode": "lora"}, {"teacher_lr": 0}, {"rounds": -1}, {"kd_warmup_fraction": 1.5},
    {"confidence_threshold": 1.0}, {"device": "tpu"}, {"labeled_batch_size": 0},
    {"meta_method": "hessian"}, {"adapter": {"bottleneck": 0}},
])
def test_validation_names_the_bad_value(bad):
    key = next(iter(bad))
    with pytest.raises(ValueError, match=key.split("_")[0]):
        LiSTConfig(**bad)


def test_unknown_keys_warn(caplog):
    cfg = LiSTConfig.from_dict({"rounds": 2, "not_a_field": 1})
    assert cfg.rounds == 2 and "not_a_field" in caplog.text
    with pytest.raises(ValueError, match="unknown preset"):
        LiSTConfig.preset("fast")
