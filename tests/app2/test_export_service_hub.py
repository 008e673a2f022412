"""The export service on a run trained by a real worker: the model card's Hub metadata
parses, the zip is PEFT-readable (also for format-1 folders), and a push fails
clearly offline without touching the local export (service and page)."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import yaml

from app.services import ServiceError
from app.services import export as export_service
from db.models import Artifact, Run
from tests.app2.conftest import app_test

TEXTS = ["great film, loved it", "boring and awful", "a joy"]


def _front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    return yaml.safe_load(card.split("---\n")[1])


def test_card_metadata_parses_and_records_the_environment(trained, trained_db):
    from huggingface_hub import ModelCard

    result = export_service.build_export(trained_db, trained.run_id)
    with zipfile.ZipFile(result.path) as zf:
        card = zf.read(f"run-{trained.run_id}/README.md").decode()
        adapter = json.loads(zf.read(f"run-{trained.run_id}/adapter_config.json"))
    meta = _front_matter(card)
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-classification"
    assert {"list_engine", "lora"} <= set(meta["tags"])
    assert meta["metrics"] == ["accuracy", "f1"]  # the run had an evaluation set
    assert ModelCard(card).data.pipeline_tag == "text-classification"
    assert adapter["peft_type"] == "LORA" and adapter["lora_bias"] is True
    for needle in ("Environment: list_engine", "torch ", "transformers ", "- Device: cpu",
                   "PeftModel.from_pretrained"):
        assert needle in card, needle


def test_a_list_engine_0_1_model_folder_exports_in_the_peft_format(db, labelled_project,
                                                                      tmp_path):
    """A run trained before this format: its folder has LiST's schema under PEFT's names."""
    from peft import PeftConfig
    from safetensors.torch import save_file

    from db.settings import get_settings
    from list_engine import PromptClassifier

    project, config = labelled_project
    clf = PromptClassifier.create(model=get_settings().model, template=config.template,
                                  verbalizer=dict(config.verbalizer), device="cpu")
    old = tmp_path / "old-model"
    old.mkdir()
    save_file({n: t.contiguous() for n, t in clf.trainable_state().items()},
              str(old / "adapter_model.safetensors"), metadata={"format": "pt"})
    legacy = {"format_version": 1, "library": "list_engine", "base_model": str(clf.model_path),
              "base_model_path": clf.model_path, "mode": "prompt", "head": clf.head,
              "adapter": {"bottleneck": None, "init_std": 2e-4}, "template": config.template,
              "verbalizer": dict(sorted(config.verbalizer.items())), "labels": clf.labels,
              "max_length": clf.max_length, "mlm_head_pretrained": clf.mlm_head_pretrained,
              "metrics": {}}
    (old / "adapter_config.json").write_text(json.dumps(legacy, sort_keys=True))
    run = Run(project_id=project.id, kind="train", status="succeeded", config={
        "template": config.template, "verbalizer": dict(config.verbalizer), "model": "tiny"})
    db.add(run)
    db.flush()
    db.add(Artifact(run_id=run.id, kind="model", path=str(old), sha256="x", bytes=1))
    db.commit()
    result = export_service.build_export(db, run.id)
    folder = export_service.unpack(result.path, tmp_path / "unzipped")
    assert PeftConfig.from_pretrained(folder).peft_type == "LORA"
    assert json.loads((folder / "list_prompt.json").read_text())["format_version"] == 2
    assert "Environment: not recorded" in (folder / "README.md").read_text()
    reloaded = PromptClassifier.from_pretrained(folder, device="cpu")
    assert reloaded.labels == clf.labels
    np.testing.assert_array_equal(reloaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))


def test_push_offline_is_a_clear_error_and_keeps_the_zip(trained, trained_db, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = export_service.build_export(trained_db, trained.run_id)
    before = result.path.read_bytes()
    try:
        export_service.push_export(result.path, "someone/reviews")
    except ServiceError as exc:
        assert "cannot be reached" in str(exc) and "export itself is saved" in str(exc)
    else:
        raise AssertionError("push succeeded offline")
    assert result.path.read_bytes() == before


def test_export_page_push_offline_shows_the_error_and_keeps_the_download(trained, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = app_test("export.py", trained.project_id).run()
    at.button(key="export_build").click().run()
    assert not at.exception, at.exception
    at.text_input(key="export_push_repo").set_value("someone/reviews")
    at.button(key="export_push").click().run()
    assert not at.exception, at.exception
    assert any("cannot be reached" in e.value for e in at.error)
    assert at.get("download_button")  # the local download is still offered
