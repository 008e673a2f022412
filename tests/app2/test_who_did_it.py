"""Who did it (issue 15): a training run, a prediction run and an export record the user who
started them, and a viewer or annotator is refused before anything is queued or written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.services import export as export_service
from app.services import predict as predict_service
from app.services import training, users
from app.services.users import PermissionDenied, act_as
from db.models import Artifact, Run
from tests.app2.conftest import TINY_CONFIG


def test_a_run_records_who_started_it_and_roles_gate_it(db, labelled_project):
    project, config = labelled_project
    owner = users.create_user(db, "olga", "olga-password")
    helper = users.create_user(db, "hal", "hal-password")
    act_as(db, None)
    from db.models import ProjectMember

    db.add(ProjectMember(project_id=project.id, user_id=owner.id, role="owner"))
    db.add(ProjectMember(project_id=project.id, user_id=helper.id, role="annotator"))
    db.commit()
    cfg = training.build_list_config("custom", TINY_CONFIG)
    act_as(db, helper.id)
    with pytest.raises(PermissionDenied, match="annotator.*owner"):
        training.start_training(db, project.id, config.id, list_config=cfg, eval_source="auto")
    assert db.scalar(select(func.count()).select_from(Run)) == 0
    act_as(db, owner.id)
    run = training.start_training(db, project.id, config.id, list_config=cfg, eval_source="auto")
    assert db.get(Run, run.id).user_id == owner.id


def test_export_and_prediction_record_who(trained_db, trained):
    alice = users.create_user(trained_db, "alice", "alice-password", is_admin=True)
    act_as(trained_db, alice.id)
    export_service.build_export(trained_db, trained.run_id)
    art = trained_db.scalar(select(Artifact).where(Artifact.kind == "export"))
    assert art.user_id == alice.id
    run = predict_service.start_predict(trained_db, trained.project_id, trained.run_id)
    assert trained_db.get(Run, run.id).user_id == alice.id
    viewer = users.create_user(trained_db, "vic", "vic-password")
    users.share(trained_db, trained.project_id, "vic", "viewer")
    act_as(trained_db, viewer.id)
    with pytest.raises(PermissionDenied):
        export_service.build_export(trained_db, trained.run_id)
    with pytest.raises(PermissionDenied):
        predict_service.start_predict(trained_db, trained.project_id, trained.run_id)
