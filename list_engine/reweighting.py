"""Meta re-weighting of pseudo-labelled examples (LIST_REFERENCE.md section 4).

The one-step look-ahead weight of example i is, up to the positive factor alpha,
    s_i = <grad L_lab(theta), grad l_i(theta)>        (over the trainable parameters)
which is the directional derivative of the per-example loss vector l(theta) = [l_1..l_B]
along g = grad L_lab. It is computed with ONE forward-mode JVP, or a central / forward
finite difference of l along g: no per-example gradients, no second-order graph.
Weights: w = max(0, s) / sum(max(0, s)); a batch where every s_i <= 0 is handled explicitly
by `policy` ("skip": no update from this batch, "uniform": w_i = 1/B).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Params = dict[str, torch.Tensor]


def normalize_weights(similarities: torch.Tensor, policy: str = "skip"
                      ) -> tuple[torch.Tensor, str]:
    """(weights (B,), status) with status "ok" | "skipped" | "uniform"."""
    clamped = similarities.clamp(min=0)
    total = clamped.sum()
    if torch.isfinite(total) and total > 0:
        return clamped / total, "ok"
    n = similarities.numel()
    if policy == "uniform":
        return torch.full_like(similarities, 1.0 / n), "uniform"
    if policy == "skip":
        return torch.zeros_like(similarities), "skipped"
    raise ValueError(f"unknown zero-weight policy {policy!r}")


def _norm(tensors: Params) -> torch.Tensor:
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors.values()))


def directional_derivative(fn: Callable[[Params], torch.Tensor], params: Params,
                           direction: Params, method: str = "central", eps: float = 1e-2
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    """(d/dh fn(params + h * direction) at h = 0, fn(params) or an O(h^2) estimate of it).

    `fn` maps a dict of parameter tensors to a loss vector (B,). `eps` is the length of the
    finite-difference step in parameter space (h = eps / ||direction||)."""
    if method == "jvp":
        primals = {k: v.detach() for k, v in params.items()}
        tangents = {k: direction[k].detach().to(v.dtype) for k, v in primals.items()}
        # the fused CPU/GPU attention kernels have no forward-mode AD: use the math backend
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            value, derivative = torch.func.jvp(fn, (primals,), (tangents,))
        return derivative.detach(), value.detach()
    norm = float(_norm(direction))
    if norm == 0.0 or not torch.isfinite(torch.tensor(norm)):
        with torch.no_grad():
            value = fn(params)
        return torch.zeros_like(value), value
    h = eps / norm
    with torch.no_grad():
        plus = fn({k: v + h * direction[k] for k, v in params.items()})
        if method == "central":
            minus = fn({k: v - h * direction[k] for k, v in params.items()})
            return (plus - minus) / (2 * h), (plus + minus) / 2
        if method == "forward":
            value = fn(params)
            return (plus - value) / h, value
    raise ValueError(f"unknown method {method!r}: central, forward or jvp")


def labeled_gradient(loss_fn: Callable[[], torch.Tensor], params: Params) -> Params:
    """grad of a (scalar) labelled-batch loss w.r.t. `params` (first order only)."""
    loss = loss_fn()
    grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
    return {k: (g.detach() if g is not None else torch.zeros_like(p))
            for (k, p), g in zip(params.items(), grads, strict=True)}


def bruteforce_similarities(per_example_loss: Callable[[], torch.Tensor], params: Params,
                            direction: Params) -> torch.Tensor:
    """<direction, grad l_i> from B separate backward passes (reference for tests only)."""
    losses = per_example_loss()
    out = []
    for i in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[i], list(params.values()), retain_graph=True,
                                    allow_unused=True)
        dot = sum((g.double() * direction[k].double()).sum()
                  for k, g in zip(params, grads, strict=True) if g is not None)
        out.append(dot)
    return torch.stack(out)
