"""`python -m list_engine export`: the folder, its model card (Hub metadata that parses, usage
snippets that run) and the push that fails clearly offline without losing the export."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch
import yaml

from list_engine import PromptClassifier
from list_engine.__main__ import main
from list_engine.hub import HubError, card_data, peft_snippet, push_to_hub

from .conftest import TEMPLATE, WORDS

TEXT = "some text to classify"


def trained_like(model_dir, words=WORDS, **kwargs) -> PromptClassifier:
    clf = PromptClassifier.create(str(model_dir), TEMPLATE, words, device="cpu", **kwargs)
    gen = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    return clf


def front_matter(readme: str) -> dict:
    assert readme.startswith("---\n")
    return yaml.safe_load(readme.split("---\n")[1])


@pytest.mark.parametrize("model,mode,head", [
    ("tiny_bert_dir", "prompt", "mlm"), ("tiny_roberta_dir", "prompt", "mlm"),
    ("headless_bert", "prompt", "similarity"), ("tiny_roberta_dir", "classic", "auto")])
def test_card_peft_snippet_gives_the_classifier_probabilities(model, mode, head, request,
                                                              tmp_path):
    """The snippet is what a peft user copies: run it as written (only the paths swapped)."""
    base = request.getfixturevalue(model)
    words = {"neg": " terrible", "pos": " great"} if model == "tiny_roberta_dir" else WORDS
    clf = trained_like(base, words, mode=mode, head=head)
    folder = clf.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "list_prompt.json").read_text())
    scope: dict = {}
    exec(peft_snippet(config, folder=str(folder), base=str(base)), scope)  # noqa: S102
    got = np.array([scope["probs"][label] for label in clf.labels])
    np.testing.assert_allclose(got, clf.predict_proba([TEXT])[0], atol=1e-5)


def test_cli_export_writes_card_and_merged_and_push_fails_clearly_offline(
        tiny_bert_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clf = trained_like(tiny_bert_dir, head="mlm")
    model = clf.save_pretrained(tmp_path / "model", metrics={"rounds": [
        {"round": 0, "accuracy": 0.5, "macro_f1": 0.4}]})
    out = tmp_path / "export"
    start = time.monotonic()
    code = main(["export", "--model-dir", str(model), "--out", str(out), "--merged",
                 "--push-to", "someone/reviews"])
    assert code == 3 and time.monotonic() - start < 120
    err = capsys.readouterr().err
    assert "cannot be reached" in err and "export itself is saved" in err
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"README.md", "list_prompt.json", "list_weights.safetensors", "adapter_config.json",
            "adapter_model.safetensors", "merged/config.json", "merged/model.safetensors",
            "merged/list_prompt.json"} <= names
    readme = (out / "README.md").read_text()
    meta = front_matter(readme)
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-classification"
    assert {"list_engine", "peft", "lora"} <= set(meta["tags"]) and meta["metrics"] == ["accuracy", "f1"]
    assert "base_model" not in meta  # a local folder is no Hub id
    for needle in ("PeftModel.from_pretrained", "PromptClassifier.from_pretrained",
                   "Merged model", f"torch {torch.__version__}", "| 0 | 50.0 % | 40.0 % |"):
        assert needle in readme, needle
    np.testing.assert_array_equal(
        PromptClassifier.from_pretrained(out, device="cpu").predict_proba([TEXT]),
        clf.predict_proba([TEXT]))
    with pytest.raises(SystemExit, match="not an empty folder"):
        main(["export", "--model-dir", str(model), "--out", str(out)])


def test_card_metadata_of_the_default_model_names_its_hub_id():
    from huggingface_hub import ModelCard

    from list_engine.hub import render_card

    data = card_data({"base_model": "default", "head": "similarity",
                      "peft_base_class": "AutoModel", "metrics": {}}, datasets=["imdb"])
    card = ModelCard(render_card(data, "# x\n"))
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert card.data.datasets == ["imdb"] and card.data.metrics is None
    assert "head:similarity" in card.data.tags


def test_push_refuses_a_bad_repository_id_and_an_unreachable_hub(tmp_path, monkeypatch):
    with pytest.raises(HubError, match="user-or-org/name"):
        push_to_hub(tmp_path, "not a repo id")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens there
    with pytest.raises(HubError, match="cannot be reached"):
        push_to_hub(tmp_path, "someone/reviews")
