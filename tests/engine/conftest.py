"""Fixtures of the engine tests: small classifiers on the tiny session models."""

from __future__ import annotations

import pytest
import torch

from list_engine import Example

TEMPLATE = "{text} It was {mask}."
WORDS = {"neg": "terrible", "pos": "great"}

POS = ["a great fun movie", "good and great", "i love this film", "great story, fun",
       "happy fun great music", "a good film"]
NEG = ["a terrible boring movie", "bad and awful", "i hate this film", "awful story, boring",
       "sad boring bad music", "a bad film"]


@pytest.fixture(scope="session")
def headless_bert(tiny_bert_dir, tmp_path_factory):
    """The tiny BERT without its MLM head weights (like a sentence-transformers checkpoint)."""
    import shutil

    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("headless")
    for f in tiny_bert_dir.iterdir():
        shutil.copy(f, out / f.name)
    state = load_file(str(tiny_bert_dir / "model.safetensors"))
    save_file({k: v for k, v in state.items() if not k.startswith("cls.")},
              str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


@pytest.fixture(autouse=True)
def _few_threads():
    torch.set_num_threads(1)  # the test machine has 2 cores shared by several runs
    yield


@pytest.fixture(autouse=True)
def _head_choice_logged_afresh():
    """The head choice is logged once per model and process: tests that read the log must
    not depend on which test created that model first."""
    from list_engine import modeling

    modeling._LOGGED_HEAD_CHOICE.clear()


@pytest.fixture()
def labeled() -> list[Example]:
    return [Example(t, label="pos") for t in POS[:4]] + [Example(t, label="neg") for t in NEG[:4]]


@pytest.fixture()
def unlabeled() -> list[Example]:
    items = [(t, "pos") for t in POS] + [(t, "neg") for t in NEG]
    return [Example(t + suffix, label=lab, id=f"u{i}-{j}") for j, suffix in
            enumerate(["", " indeed", " really"]) for i, (t, lab) in enumerate(items)]
