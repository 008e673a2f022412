from __future__ import annotations

import pytest
import torch

from list_engine import AdapterConfig, Example, PromptClassifier
from list_engine.reweighting import (
    bruteforce_similarities,
    directional_derivative,
    labeled_gradient,
    normalize_weights,
)
from list_engine.training import ce_loss, kd_loss_per_example

from .conftest import NEG, POS, TEMPLATE, WORDS


@pytest.fixture(scope="module")
def setup(tiny_bert_dir):
    clf = PromptClassifier.create(str(tiny_bert_dir), TEMPLATE, WORDS, device="cpu",
                                  adapter=AdapterConfig(init_std=0.1))
    clf.module.double().eval()  # float64: finite differences can be checked tightly
    params = clf.trainable_parameters()
    lab = clf.collate(clf.encode([Example(POS[0]), Example(NEG[0]), Example(POS[1])]))
    lab_y = torch.tensor([1, 0, 1])
    unl = clf.collate(clf.encode(POS[2:5] + NEG[2:5]))
    gen = torch.Generator().manual_seed(0)
    target = torch.softmax(torch.randn(6, 2, generator=gen, dtype=torch.float64), -1)
    g = labeled_gradient(lambda: ce_loss(clf.module(**lab).double(), lab_y), params)

    def per_example(p):
        logits = torch.func.functional_call(clf.module, p, kwargs=unl)
        return kd_loss_per_example(logits, target)

    brute = bruteforce_similarities(lambda: per_example(dict(params)), params, g)
    return clf, params, g, per_example, brute


@pytest.mark.parametrize(("method", "rtol"), [("central", 1e-6), ("forward", 1e-3),
                                              ("jvp", 1e-9)])
def test_directional_derivative_matches_bruteforce(setup, method, rtol):
    clf, params, g, per_example, brute = setup
    base = {k: v.detach() for k, v in params.items()}
    eps = 1e-4 if method == "central" else 1e-6
    sims, value = directional_derivative(per_example, base, g, method, eps)
    scale = brute.abs().max()
    assert scale > 0
    torch.testing.assert_close(sims.double(), brute, rtol=0, atol=rtol * float(scale) + 1e-12)
    with torch.no_grad():
        torch.testing.assert_close(value, per_example(base), rtol=1e-3, atol=1e-8)
    w, status = normalize_weights(sims)
    wb, _ = normalize_weights(brute)
    assert status == "ok"
    torch.testing.assert_close(w.double(), wb, rtol=0, atol=max(10 * rtol, 1e-8))


def test_float32_central_difference_is_close(setup):
    clf, params, g, per_example, brute = setup
    base = {k: v.detach().float() for k, v in params.items()}
    clf.module.float()
    try:
        def f32(p):
            return per_example(p).double()

        sims, _ = directional_derivative(f32, base, {k: v.float() for k, v in g.items()},
                                         "central", 1e-2)
    finally:
        clf.module.double()
    w32, _ = normalize_weights(sims.double())
    wb, _ = normalize_weights(brute)
    assert (w32 - wb).abs().max() < 0.02


def test_normalize_weights_explicit():
    w, status = normalize_weights(torch.tensor([2.0, -1.0, 0.0, 2.0]))
    assert status == "ok" and torch.allclose(w, torch.tensor([0.5, 0.0, 0.0, 0.5]))
    assert float(w.sum()) == pytest.approx(1.0)
    w, status = normalize_weights(torch.tensor([-1.0, -2.0]), "skip")
    assert status == "skipped" and torch.equal(w, torch.zeros(2))
    w, status = normalize_weights(torch.tensor([-1.0, 0.0]), "uniform")
    assert status == "uniform" and torch.allclose(w, torch.full((2,), 0.5))
    with pytest.raises(ValueError):
        normalize_weights(torch.tensor([-1.0]), "nope")
