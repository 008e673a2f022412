"""Int8 CPU prediction (list_engine.int8): quantized layers, close predictions, refusals."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from torch import nn
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

from list_engine import LiSTConfig, LiSTTrainer, PromptClassifier
from list_engine.__main__ import main
from list_engine.int8 import is_quantized, quantizable_layers

from .conftest import NEG, POS, TEMPLATE, WORDS

TEXTS = POS + NEG + ["the plot was fine but the ending dragged on and on",
                     "not bad at all, a pleasant surprise"]


def _nontrivial(clf: PromptClassifier) -> PromptClassifier:
    """Trained-looking weights: every trainable tensor perturbed (fixed seed)."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in clf.trainable_parameters().values():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return clf


@pytest.fixture()
def clf(tiny_bert_dir) -> PromptClassifier:
    return _nontrivial(PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS,
                                               device="cpu"))


@pytest.fixture()
def saved(clf, tmp_path):
    return clf.save_pretrained(tmp_path / "model")


def _close_and_agreeing(fp32: np.ndarray, q: np.ndarray) -> None:
    assert q.shape == fp32.shape
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-5)
    diff = np.abs(q - fp32).max()
    assert diff < 0.05, diff
    # Wherever fp32 is clearly decided, int8 picks the same class.
    margin = np.sort(fp32, axis=1)[:, -1] - np.sort(fp32, axis=1)[:, -2]
    clear = margin > 2 * diff
    assert clear.mean() > 0.5  # not vacuous
    assert (q.argmax(1)[clear] == fp32.argmax(1)[clear]).all()


@pytest.mark.parametrize("kind", ["mlm", "similarity", "classic"])
def test_int8_copy_is_quantized_and_close(kind, tiny_bert_dir, headless_bert):
    if kind == "similarity":
        base = PromptClassifier.create(str(headless_bert), TEMPLATE, WORDS, device="cpu")
        assert base.head == "similarity"
    else:
        base = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                       mode="prompt" if kind == "mlm" else "classic")
    base = _nontrivial(base)
    fp32 = base.predict_proba(TEXTS)
    q = base.quantize_int8()
    assert q is not base and q.int8 and not base.int8
    assert not is_quantized(base.module)  # the original stays fp32, trainable
    modules = dict(q.module.named_modules())
    names = quantizable_layers(base.module)
    assert len(names) == 2 * 6  # 2 layers x (q, k, v, attention out, FFN in, FFN out)
    assert all(isinstance(modules[n], DynamicLinear) for n in names)
    # adapters and the head stay fp32
    plain = [n for n, m in q.module.named_modules() if type(m) is nn.Linear]
    assert plain and all(".adapter_" in n or not n.startswith("mlm.bert.") for n in plain)
    _close_and_agreeing(fp32, q.predict_proba(TEXTS))
    np.testing.assert_array_equal(base.predict_proba(TEXTS), fp32)  # original untouched


def test_prediction_runs_the_quantized_layers(clf):
    q = clf.quantize_int8()
    calls = []
    for m in q.module.modules():
        if isinstance(m, DynamicLinear):
            m.register_forward_hook(lambda *_: calls.append(1))
    q.predict_proba(TEXTS[:3])
    assert len(calls) == 12
    # the frozen-layer cache (cache_frozen) goes through them too and gives the same classes
    calls.clear()
    cached = q.predict_encoded(q.cache_frozen(q.encode(TEXTS)))
    assert len(calls) == 12
    _close_and_agreeing(q.predict_proba(TEXTS), cached)


def test_from_pretrained_int8(saved, clf):
    loaded = PromptClassifier.from_pretrained(saved, int8=True)  # "auto": the CPU
    assert loaded.int8 and loaded.device.type == "cpu" and is_quantized(loaded.module)
    same = PromptClassifier.from_pretrained(saved, device="cpu").quantize_int8()
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), same.predict_proba(TEXTS),
                               atol=1e-6)
    _close_and_agreeing(clf.predict_proba(TEXTS), loaded.predict_proba(TEXTS))
    assert loaded.quantize_int8() is loaded  # already int8


def test_int8_refuses_cuda_training_saving_merging(saved, clf, labeled, tmp_path):
    with pytest.raises(ValueError, match="int8 prediction runs on the CPU only"):
        PromptClassifier.from_pretrained(saved, device="cuda", int8=True)
    q = clf.quantize_int8()
    with pytest.raises(ValueError, match="int8 prediction runs on the CPU only"):
        q.to("cuda:0")
    with pytest.raises(ValueError, match="quantized to int8 for prediction and cannot be "
                                         "trained"):
        LiSTTrainer(q, LiSTConfig.preset("quick", self_training=False, device="cpu"),
                    labeled=labeled, unlabeled=[])
    with pytest.raises(RuntimeError, match="save the fp32 classifier"):
        q.save_pretrained(tmp_path / "q")
    with pytest.raises(RuntimeError, match="merge the fp32 classifier"):
        q.merge()
    # the fp32 original is still trainable
    LiSTTrainer(clf, LiSTConfig.preset("quick", self_training=False, device="cpu"),
                labeled=labeled, unlabeled=[])


def _read(path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_cli_predict_int8(saved, tmp_path, capsys):
    data = tmp_path / "in.csv"
    with open(data, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text"])
        writer.writerows([t] for t in TEXTS)
    fp32, int8 = tmp_path / "fp32.csv", tmp_path / "int8.csv"
    common = ["predict", "--model-dir", str(saved), "--input", str(data), "--device", "cpu"]
    assert main([*common, "--output", str(fp32)]) == 0
    assert main([*common, "--output", str(int8), "--int8"]) == 0
    a, b = _read(fp32), _read(int8)
    assert [r["text"] for r in b] == TEXTS
    cols = [f"prob_{label}" for label in WORDS]
    pa = np.array([[float(r[c]) for c in cols] for r in a])
    pb = np.array([[float(r[c]) for c in cols] for r in b])
    _close_and_agreeing(pa, pb)
    assert [r["prediction"] for r in b] == [list(WORDS)[i] for i in pb.argmax(1)]
    capsys.readouterr()
    code = main(["predict", "--model-dir", str(saved), "--input", str(data), "--output",
                 str(tmp_path / "x.csv"), "--device", "cuda", "--int8"])
    assert code == 2
    assert "int8 prediction runs on the CPU only" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
