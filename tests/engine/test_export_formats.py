"""Model folders of earlier versions (format 1: LiST's schema under PEFT's file names) still
load, give the same probabilities, and are re-saved in format 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from list_engine import PromptClassifier
from list_engine.format import ExportError, read_model_dir

from .conftest import TEMPLATE, WORDS

TEXTS = ["a great movie", "boring and bad", "x " * 100, "fine"]


def write_format_1(clf: PromptClassifier, directory: Path, *, with_head: bool = True) -> Path:
    """What save_pretrained wrote up to commit 1c17310."""
    directory.mkdir(parents=True)
    state = {n: t.detach().cpu().contiguous() for n, t in clf.trainable_state().items()}
    save_file(state, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "format_version": 1, "library": "list_engine", "library_version": "0.1.0",
        "base_model": "/machine/of/training/gone", "base_model_path": clf.model_path,
        "base_model_sha256": None, "model_type": clf.model_type, "mode": clf.mode,
        "head": clf.head, "adapter": {"bottleneck": None, "init_std": 2e-4},
        "template": clf.template.pattern if clf.template else None, "verbalizer": dict(clf.verbalizer.mapping),
        "labels": clf.labels, "max_length": clf.max_length,
        "mlm_head_pretrained": clf.mlm_head_pretrained, "trainable_parameters": 1,
        "total_parameters": 2, "metrics": {"accuracy": 0.75},
    }
    if not with_head:
        del config["head"]  # written before the similarity head existed
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def noisy(model_dir, **kwargs) -> PromptClassifier:
    clf = PromptClassifier.create(str(model_dir), TEMPLATE, {"pos": "great", "neg": "terrible"},
                                  device="cpu", **kwargs)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return clf


@pytest.mark.parametrize("head", ["mlm", "similarity"])
def test_format_1_folder_loads_and_resaves_as_format_2(headless_bert, tmp_path, head):
    clf = noisy(headless_bert, head=head)
    expected = clf.predict_proba(TEXTS)
    old = write_format_1(clf, tmp_path / "old")
    assert read_model_dir(old).format_version == 1
    loaded = PromptClassifier.from_pretrained(old, device="cpu")
    assert loaded.head == head and loaded.labels == ["pos", "neg"]
    assert loaded.metrics == {"accuracy": 0.75} and loaded.environment == {}
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), expected)
    new = loaded.save_pretrained(tmp_path / "new")
    assert read_model_dir(new).format_version == 2
    assert json.loads((new / "adapter_config.json").read_text())["peft_type"] == "LORA"
    np.testing.assert_array_equal(
        PromptClassifier.from_pretrained(new, device="cpu").predict_proba(TEXTS), expected)


def test_format_1_without_a_head_key_loads_with_the_mlm_head(headless_bert, tmp_path):
    clf = noisy(headless_bert, head="mlm")
    old = write_format_1(clf, tmp_path / "old", with_head=False)
    loaded = PromptClassifier.from_pretrained(old, device="cpu")
    assert loaded.head == "mlm"
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))


def test_saving_over_a_format_1_folder_leaves_no_stale_files(tiny_bert_dir, tmp_path):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, mode="full", device="cpu")
    folder = write_format_1(clf, tmp_path / "m")
    clf.save_pretrained(folder)  # full mode has no PEFT view: the old files must go
    assert sorted(p.name for p in folder.iterdir()) == ["list_prompt.json",
                                                        "list_weights.safetensors"]
    assert PromptClassifier.from_pretrained(folder, device="cpu").mode == "full"


def test_a_plain_peft_adapter_is_refused_with_advice(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(ExportError, match="PeftModel.from_pretrained"):
        PromptClassifier.from_pretrained(tmp_path, device="cpu")


def test_base_model_is_stored_as_given(tiny_bert_dir, tmp_path, monkeypatch):
    """A relative path stays relative (no absolute path of the training machine) and is
    found again from another working directory, next to the model folder."""
    monkeypatch.chdir(tiny_bert_dir.parent)
    clf = PromptClassifier.create(tiny_bert_dir.name, TEMPLATE, WORDS, device="cpu")
    out = clf.save_pretrained(tiny_bert_dir.parent / "runs" / "m")
    saved = json.loads((out / "list_prompt.json").read_text())
    assert saved["base_model"] == tiny_bert_dir.name and "base_model_path" not in saved
    assert json.loads((out / "adapter_config.json").read_text())[
        "base_model_name_or_path"] == tiny_bert_dir.name
    assert saved["environment"]["torch"] == torch.__version__
    monkeypatch.chdir(tmp_path)
    (out / tiny_bert_dir.name).symlink_to(tiny_bert_dir)
    loaded = PromptClassifier.from_pretrained(out, device="cpu")
    assert loaded.model_name == tiny_bert_dir.name
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS), clf.predict_proba(TEXTS))
