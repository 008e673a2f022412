"""Service tests of app/services/training.py (summary, refusals, evaluation set, start)."""

from __future__ import annotations

import pytest

from app.services import ServiceError, training
from db.models import Label, LabelClass, Run, Worker, utcnow
from tests.app2.conftest import TINY_CONFIG


def test_summary_of_a_ready_project(db, labelled_project):
    project, config = labelled_project
    summary = training.training_summary(db, project.id, config.id)
    assert summary.can_start, summary.problems
    assert summary.counts.train_per_class == {"positive": 3, "negative": 3}
    assert summary.counts.unlabelled == 18
    assert summary.counts.gold == 24
    # a share of the gold-labelled unlabelled documents is set aside as the evaluation set
    assert summary.evaluation.source == "unseen_gold" and summary.evaluation.size == 3
    # no worker: a warning that says how to start one
    assert any("python -m worker" in w for w in summary.warnings)


def test_refuses_a_class_without_labels(db, labelled_project):
    project, config = labelled_project
    from app.services import labelling

    labelling.add_label_class(db, project.id, "neutral", "", "okay")
    summary = training.training_summary(db, project.id, config.id)
    assert not summary.can_start
    text = " ".join(summary.problems)
    assert "No training label yet for: neutral" in text
    assert "saved before these labels existed" in text  # the prompt lacks the new class


def test_refuses_fewer_than_two_classes(db):
    from app.services.projects import create_project

    project = create_project(db, "empty")
    summary = training.training_summary(db, project.id, None)
    text = " ".join(summary.problems)
    assert "at least 2" in text and "No prompt selected" in text and "no documents" in text


def test_refuses_an_invalid_prompt(db, labelled_project):
    project, config = labelled_project
    from db.models import PromptConfig

    bad = PromptConfig(project_id=project.id, version=99, template="{text} no mask here",
                       verbalizer={"positive": "great", "negative": "terrible"}, model="default")
    db.add(bad)
    db.commit()
    tok = training_tokenizer()
    summary = training.training_summary(db, project.id, bad.id, tokenizer=tok)
    assert not summary.can_start
    assert any("mask" in p.lower() for p in summary.problems)
    with pytest.raises(ServiceError, match="Cannot start"):
        training.start_training(db, project.id, bad.id, tokenizer=tok)


def training_tokenizer():
    from app.services.prompts import load_tokenizer
    from db.settings import get_settings

    return load_tokenizer(get_settings().model)


def test_refuses_when_no_unlabelled_documents(db, labelled_project):
    project, config = labelled_project
    from app.services import labelling
    from db.models import Document

    pos = db.query(LabelClass).filter_by(project_id=project.id, name="positive").one()
    for doc in db.query(Document).filter_by(project_id=project.id):
        labelling.set_label(db, project.id, doc.id, pos.id)
    summary = training.training_summary(db, project.id, config.id)
    assert any("unlabelled documents" in p for p in summary.problems)


def test_the_card_counts_the_pool_the_train_page_shows(db, labelled_project):
    """The Train page's "Unlabelled pool" (the unlabelled documents less the gold ones set
    aside for evaluation) is what the run records and the model card prints."""
    from app.services.export import _data_lines

    project, config = labelled_project
    summary = training.training_summary(db, project.id, config.id)
    pool = summary.counts.unlabelled - summary.evaluation.reserved
    assert (pool, summary.evaluation.reserved) == (15, 3)
    run = training.start_training(db, project.id, config.id)
    data = run.config["data"]
    assert (data["unlabelled"], data["set_aside"]) == (15, 3)
    card = "\n".join(_data_lines(data, training.data_counts(db, project.id)))
    assert ("Unlabelled documents: 15 (the self-training pool; 3 more with gold labels set "
            "aside for evaluation)") in card


def test_hold_out_and_release(db, labelled_project):
    project, _ = labelled_project
    moved = training.hold_out_labels(db, project.id, per_class=2, keep_train=2)
    assert moved == 2  # 3 per class, 2 must stay: one per class moves
    counts = training.data_counts(db, project.id)
    assert counts.held_out_per_class == {"positive": 1, "negative": 1}
    assert counts.train_per_class == {"positive": 2, "negative": 2}
    evaluation = training.resolve_evaluation(counts, "held_out")
    assert evaluation.source == "held_out" and evaluation.size == 2
    assert training.release_held_out(db, project.id) == 2
    assert db.query(Label).filter_by(held_out=True).count() == 0


def test_no_evaluation_set_says_so(db, labelled_project):
    project, config = labelled_project
    counts = training.data_counts(db, project.id)
    ev = training.resolve_evaluation(counts, "held_out")
    assert ev.source == "none" and "cannot be measured" in ev.message
    summary = training.training_summary(db, project.id, config.id, eval_source="none")
    assert any("cannot be measured" in w for w in summary.warnings)


def test_build_list_config_presets_and_custom():
    quick = training.build_list_config("quick")
    paper = training.build_list_config("paper")
    assert quick["rounds"] == 2 and paper["rounds"] == 6
    custom = training.build_list_config("custom", {"rounds": 3, "seed": 5}, bottleneck=8)
    assert custom["rounds"] == 3 and custom["seed"] == 5 and custom["adapter"]["bottleneck"] == 8
    assert quick["lr_candidates"] == [1e-4, 3e-4, 1e-3] and quick["max_length"] is None
    assert custom["lr_candidates"] == quick["lr_candidates"]
    typed = training.build_list_config("custom", {"auto_lr": False, "teacher_lr": 2e-4})
    assert typed["lr_candidates"] is None and typed["teacher_lr"] == 2e-4
    assert training.preset_defaults("custom")["auto_lr"] is True
    assert training.preset_defaults("paper")["auto_lr"] is False
    with pytest.raises(ServiceError, match="Invalid training settings"):
        training.build_list_config("custom", {"rounds": -1})
    with pytest.raises(ServiceError):
        training.build_list_config("huge")


def test_time_estimate_is_a_range_and_scales():
    counts = training.DataCounts(["a", "b"], {"a": 15, "b": 15}, {}, 2000, 0, 0, 2030)
    quick = training.build_list_config("quick")
    paper = training.build_list_config("paper")
    e_quick = training.estimate_time(quick, counts, 0, 23_000_000, "cpu")
    e_paper = training.estimate_time(paper, counts, 0, 23_000_000, "cpu")
    e_gpu = training.estimate_time(paper, counts, 0, 23_000_000, "cuda")
    assert e_quick.low_s < e_quick.high_s
    assert e_paper.low_s > e_quick.low_s and e_gpu.high_s < e_paper.high_s
    measured = training.estimate_time(quick, counts, 0, None, "cpu", measured_s_per_unit=0.01)
    assert "measured" in measured.basis
    assert training.format_duration(3725) == "1 h 02 min"
    assert training.TimeEstimate(30, 120, "").short == "1–2 min"
    assert training.TimeEstimate(10, 40, "").short == "10–40 s"


def test_parameter_counts_of_the_tiny_model(data_env):
    facts = training.parameter_counts(data_env.model, "{text} It was {mask}.",
                                      {"positive": "great", "negative": "terrible"}, "prompt")
    assert 0 < facts.trainable < facts.total
    assert facts.head == "mlm" and facts.mlm_head_pretrained and facts.model_max_length >= 32
    default = training.parameter_counts("default", "{text} It was {mask}.",
                                        {"positive": "great", "negative": "terrible"}, "prompt")
    assert default.head == "similarity" and default.model_max_length == 256


def test_length_choice_follows_the_documents(db, labelled_project):
    from list_engine import load_tokenizer, resolve_model_path

    project, _ = labelled_project
    tok = load_tokenizer(resolve_model_path("default"))
    auto = training.length_choice(db, project.id, tok, 256, None)
    assert auto.chosen and 16 <= auto.max_length <= 256 and auto.model_limit == 256
    assert 0.0 <= auto.truncated_share <= 0.1
    fixed = training.length_choice(db, project.id, tok, 256, 16)
    assert not fixed.chosen and fixed.max_length == 16 and fixed.truncated_share >= 0.0


def test_model_choices_in_words():
    from app.services.runs import model_choices

    assert model_choices([]) is None
    text = model_choices([{"round": 0, "details": {
        "head": "similarity", "max_length": 64, "selected_lr": 1e-4,
        "lr_cv_accuracy": {"0.0001": 0.8, "0.001": 0.6}}}])
    assert "similarity head" in text and "64 tokens" in text and "0.0001" in text
    assert "80 %" in text


def test_fresh_worker_removes_the_warning(db, labelled_project):
    project, config = labelled_project
    db.add(Worker(id="w1", host="box", pid=1, device="cpu", heartbeat_at=utcnow()))
    db.commit()
    summary = training.training_summary(db, project.id, config.id)
    assert [w.device for w in summary.workers] == ["cpu"]
    assert not any("python -m worker" in w for w in summary.warnings)


def test_start_training_enqueues_a_run(db, labelled_project):
    project, config = labelled_project
    cfg = training.build_list_config("custom", TINY_CONFIG)
    run = training.start_training(db, project.id, config.id, mode="prompt", list_config=cfg,
                                  eval_source="auto", tokenizer=training_tokenizer(),
                                  preset="custom")
    stored = db.get(Run, run.id)
    assert stored.status == "queued" and stored.kind == "train"
    c = stored.config
    assert c["template"] == config.template and c["verbalizer"] == config.verbalizer
    assert c["mode"] == "prompt" and c["eval_source"] == "auto"
    assert c["list_config"]["rounds"] == 2 and c["model"]  # "default" resolved to LIST_MODEL
    from list_engine import LiSTConfig

    LiSTConfig.from_dict(c["list_config"])  # the worker can read it back


def test_hostile_custom_settings_are_clear_errors():
    for knobs, bottleneck in (({}, 0), ({"teacher_lr": float("inf")}, None),
                              ({"seed": -1}, None), ({"teacher_steps": 10**9}, None)):
        with pytest.raises(ServiceError, match="Invalid training settings"):
            training.build_list_config("custom", knobs, bottleneck=bottleneck)
