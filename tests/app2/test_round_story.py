"""What each round did, in words: the same sentences on Live progress and in the model card,
both from the round metrics the worker stored."""

from __future__ import annotations

import re

from app.services import export as export_service
from app.services import round_story
from app.services import runs as run_service
from tests.app2.conftest import app_test


def _plain(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)  # Markdown escapes of the page


def test_round_lines_from_metrics():
    metrics = [
        {"round": 0, "accuracy": 0.70, "pseudo_label_accuracy": None, "details": {"n": 200}},
        {"round": 1, "accuracy": 0.74, "pseudo_label_accuracy": 0.742, "details": {
            "n": 200, "n_pseudo_labeled": 463, "n_pseudo_kept": 232, "labels_refined": 40,
            "labels_changed": None, "n_gold_in_pool": 38, "teacher_label_accuracy": 0.71}},
        {"round": 2, "accuracy": 0.745, "pseudo_label_accuracy": 0.75, "details": {
            "n": 200, "n_pseudo_labeled": 463, "n_pseudo_kept": 232, "labels_refined": 0,
            "labels_changed": 12, "n_gold_in_pool": 38, "teacher_label_accuracy": 0.73}},
    ]
    teacher, one, two = round_story.round_lines(metrics)
    assert teacher == "Teacher: trained on the labelled documents. Accuracy 70.0 %."
    assert "labelled 463 unlabelled documents; the student learned from 232 of them" in one
    assert "40 labels were changed by the agreement of their nearest neighbours" in one
    assert "pseudo-labels are 74.2 % right (the model's own guesses: 71.0 %)" in one
    assert "+4.0 points against the teacher" in one and "differ from the previous" not in one
    assert "12 labels differ from the previous round's" in two and "neighbours" not in two
    assert "+0.5 points against the previous round" in two
    verdict = round_story.verdict(metrics)
    assert "+4.5 points over the teacher (200 evaluation examples" in verdict
    assert "cannot tell whether the rounds helped" in verdict
    big = [dict(m, details={**m["details"], "n": 5000}) for m in metrics]
    assert "cannot tell" not in round_story.verdict(big)
    no_eval = [dict(m, accuracy=None) for m in metrics]
    assert "Without an evaluation set" in round_story.verdict(no_eval)
    assert round_story.verdict(metrics[:1]) is None


def test_page_and_card_tell_the_same_story(trained, trained_db):
    run = run_service.get_run(trained_db, trained.run_id)
    metrics = run_service.round_metrics(trained_db, run.id)
    lines = round_story.round_lines(metrics)
    assert len(lines) == 3 and lines[1].startswith("Round 1: the model of the teacher labelled")
    assert "with a gold label, the pseudo-labels are" in lines[1]  # the pool has gold
    at = app_test("progress.py", trained.project_id).run()
    assert not at.exception, at.exception
    page = "\n".join(_plain(str(e.value)) for e in list(at.markdown) + list(at.caption))
    card = export_service.model_card(trained_db, run)
    for line in lines + [round_story.verdict(metrics)]:
        assert line in page, line
        assert line in card, line
    # the learning rate the run used (chosen by cross-validation), not the configured one
    chosen = metrics[0]["details"]["selected_lr"]
    assert f"Learning rates used: teacher {chosen:g} (chosen by cross-validation)" in card
