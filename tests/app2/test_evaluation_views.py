"""The evaluation a person can trust, on a run a real worker trained: intervals, per-class
table, reliability diagram, the small-set warning, and the comparison verdict."""

from __future__ import annotations

from app.services import training
from db.models import RoundMetric, Run, utcnow
from tests.app2.conftest import TINY_CONFIG, app_test


def _texts(at) -> str:
    kinds = ("markdown", "error", "warning", "info", "success", "caption", "text")
    return "\n".join(str(e.value) for kind in kinds for e in getattr(at, kind))


def test_worker_stores_the_kept_rounds_predictions(trained_db, trained):
    rows = trained_db.query(RoundMetric).filter_by(run_id=trained.run_id).all()
    kept = [r for r in rows if r.details.get("eval_predictions")]
    assert len(kept) == 1  # the kept round only
    preds = kept[0].details["eval_predictions"]
    assert len(preds["gold"]) == kept[0].details["n"] == len(preds["probs"])
    assert all(abs(sum(p) - 1) < 1e-3 for p in preds["probs"])
    # The stored probabilities are the model's: their argmax reproduces the round's accuracy.
    hits = sum(max(range(2), key=p.__getitem__) == g
               for p, g in zip(preds["probs"], preds["gold"], strict=True))
    assert hits / len(preds["gold"]) == kept[0].accuracy


def test_progress_page_shows_intervals_per_class_and_reliability(trained):
    at = app_test("progress.py", trained.project_id).run()
    assert not at.exception, at.exception
    text = _texts(at)
    assert "95 % interval" in text and "Wilson" in text and "bootstrap" in text
    assert "the round the saved model is" in text
    assert any("evaluation examples: the true accuracy could be" in w.value for w in at.warning)
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Reliability (calibration): ECE" in t for t in titles)
    per_class = [d.value for d in at.dataframe]
    assert any(list(df.columns) == ["class", "precision", "recall", "f1", "support"]
               and set(df["class"]) == {"positive", "negative"} for df in per_class)


def test_compare_says_when_runs_cannot_be_told_apart(trained, trained_db):
    cfg = training.build_list_config("custom", TINY_CONFIG)
    other = training.start_training(trained_db, trained.project_id, trained.prompt_config_id,
                                    list_config=cfg)
    row = trained_db.get(Run, other.id)
    row.status, row.started_at, row.finished_at = "succeeded", utcnow(), utcnow()
    n = trained_db.query(RoundMetric).filter_by(run_id=trained.run_id).first().details["n"]
    trained_db.add(RoundMetric(run_id=other.id, round=0, accuracy=0.5, macro_f1=0.5,
                               details={"n": n}))
    trained_db.commit()
    at = app_test("progress.py", trained.project_id).run()
    assert not at.exception, at.exception
    assert any("cannot be told apart" in w.value for w in at.warning)


def test_train_form_has_every_switch_and_the_kept_round(db, labelled_project):
    project, _ = labelled_project
    at = app_test("train.py", project.id).run()
    assert not at.exception, at.exception
    # Every preset offers the choice of the saved round.
    assert at.radio(key="train_keep_round").value == "best_accuracy"
    at.radio(key="train_preset").set_value("custom").run()
    widgets = {w.key: w for kind in ("checkbox", "number_input") for w in at.get(kind)}
    for key in ("k_kd", "k_meta", "k_threshold", "k_max_length", "k_rounds", "k_adapter_layers",
                "k_student_init", "k_neighbours", "k_temperature", "k_balanced", "k_token_drop",
                "k_label_init"):
        assert "benchmark" in widgets[key].help.lower(), key  # what it does and what was found
    at.checkbox(key="k_kd").uncheck()
    at.checkbox(key="k_meta").uncheck()
    at.number_input(key="k_threshold").set_value(0.8)
    at.number_input(key="k_max_length").set_value(64)
    at.number_input(key="k_adapter_layers").set_value(0)
    at.checkbox(key="k_student_init").uncheck()
    at.number_input(key="k_neighbours").set_value(0.0)
    at.number_input(key="k_temperature").set_value(1.0)
    at.number_input(key="k_balanced").set_value(0.0)
    at.number_input(key="k_token_drop").set_value(0.2)
    label_init_default = at.checkbox(key="k_label_init").value
    at.checkbox(key="k_label_init").set_value(not label_init_default)
    at.radio(key="train_keep_round").set_value("last").run()
    assert not at.exception, at.exception
    at.button(key="start_training").click().run()
    assert not at.exception, at.exception
    lc = db.query(Run).filter_by(project_id=project.id).one().config["list_config"]
    assert (lc["kd_warmup"], lc["meta_reweighting"], lc["confidence_threshold"],
            lc["max_length"], lc["keep_best_round"]) == (False, False, 0.8, 64, False)
    # the self-training switches, as typed (0 = off / every layer)
    assert (lc["adapter"]["layers"], lc["student_init"], lc["neighbour_weight"],
            lc["pseudo_label_temperature"], lc["balanced_fraction"], lc["token_drop"]) == (
        None, "fresh", 0.0, 1.0, None, 0.2)
    assert lc["label_init"] == ("words" if label_init_default else "auto")


def test_train_form_too_short_max_length_says_what_to_fix(db, labelled_project):
    project, _ = labelled_project
    at = app_test("train.py", project.id).run()
    at.radio(key="train_preset").set_value("custom").run()
    at.number_input(key="k_max_length").set_value(4).run()
    assert any("must be an int" in e.value and "got 4" in e.value for e in at.error), \
        [e.value for e in at.error]


def test_export_and_predict_say_which_round_the_model_is(trained):
    for page in ("export.py", "predict.py"):
        at = app_test(page, trained.project_id).run()
        assert not at.exception, at.exception
        assert "This model is " in _texts(at), page


def _second_finished_run(db, trained, accuracy: float, **settings):
    """A second succeeded run of the trained project with its own settings and one
    evaluated round (rows as the worker writes them)."""
    cfg = training.build_list_config("custom", {**TINY_CONFIG, **settings})
    other = training.start_training(db, trained.project_id, trained.prompt_config_id,
                                    list_config=cfg, preset="custom")
    row = db.get(Run, other.id)
    row.status, row.started_at, row.finished_at, row.device = "succeeded", utcnow(), utcnow(), "cpu"
    n = db.query(RoundMetric).filter_by(run_id=trained.run_id).first().details["n"]
    db.add(RoundMetric(run_id=other.id, round=0, accuracy=accuracy, macro_f1=accuracy,
                       details={"n": n, "head": "similarity"}))
    db.commit()
    return other


def test_runs_table_lists_every_run_with_differing_settings(trained, trained_db):
    from app.services.run_table import training_runs_table

    other = _second_finished_run(trained_db, trained, 0.5, rounds=1, kd_warmup=False)
    table = training_runs_table(trained_db, trained.project_id)
    assert list(table["id"]) == [other.id, trained.run_id]  # newest first
    assert {"setting: rounds", "setting: kd_warmup"} <= set(table.columns)
    assert "setting: seed" not in table.columns  # the same in both runs
    first = table.set_index("run").loc[trained.run_id]
    assert first["95 % interval"].endswith("%") and first["n eval"] > 0
    assert first["device"] == "cpu" and first["time (s)"] > 0


def test_runs_page_table_and_pick_two(trained, trained_db):
    other = _second_finished_run(trained_db, trained, 0.5, rounds=1)
    at = app_test("runs.py", trained.project_id).run()
    assert not at.exception, at.exception
    tables = [d.value for d in at.dataframe]
    assert any("95 % interval" in t.columns and len(t) == 2 for t in tables)
    at.multiselect(key="runs_pick").select(trained.run_id).select(other.id).run()
    assert not at.exception, at.exception
    assert any("cannot be told apart" in w.value for w in at.warning)
    at.button(key="runs_compare").click().run()
    assert not at.exception, at.exception
    # The Live progress page opens with the picked pair in its comparison.
    at = app_test("progress.py", trained.project_id)
    at.session_state["compare_pair"] = (trained.run_id, other.id)
    at.run()
    assert not at.exception, at.exception
    assert (at.selectbox(key="cmp_a").value, at.selectbox(key="cmp_b").value) == \
        (trained.run_id, other.id)
