"""The LiST adapter (peft-style): wrap an existing dense layer, add a linear bottleneck.

    y = base_layer(x);  y <- y + W_up(W_down(y))        # no bias, no nonlinearity

Placed after the attention-output dense and the FFN-output dense of every layer (before
dropout, residual and LayerNorm), found through a per-architecture target map. Because the
adapter is linear it folds into the dense layer: W' = (I + U D) W, b' = (I + U D) b.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import torch
from torch import nn

from .config import AdapterConfig


@dataclass(frozen=True)
class ArchSpec:
    """Where things are in one transformers masked-LM family."""

    adapter_targets: str  # regex over named_modules() names (full match)
    head_modules: tuple[str, ...]  # applied in order to the mask hidden state -> vocab logits
    decoder: str  # the vocab-size Linear to replace by the label-word rows
    hidden_attr: str = "hidden_size"  # config attribute with the hidden size


_BERT_LIKE = r"(?:.+\.)?encoder\.layer\.\d+\.(?:attention\.output\.dense|output\.dense)"
ARCHITECTURES: dict[str, ArchSpec] = {
    "bert": ArchSpec(_BERT_LIKE, ("cls",), "cls.predictions.decoder"),
    "roberta": ArchSpec(_BERT_LIKE, ("lm_head",), "lm_head.decoder"),
    "xlm-roberta": ArchSpec(_BERT_LIKE, ("lm_head",), "lm_head.decoder"),
    "camembert": ArchSpec(_BERT_LIKE, ("lm_head",), "lm_head.decoder"),
    "electra": ArchSpec(_BERT_LIKE, ("generator_predictions", "generator_lm_head"),
                        "generator_lm_head"),
    "mpnet": ArchSpec(r"(?:.+\.)?encoder\.layer\.\d+\.(?:attention\.attn\.o|output\.dense)",
                      ("lm_head",), "lm_head.decoder"),
    "distilbert": ArchSpec(
        r"(?:.+\.)?transformer\.layer\.\d+\.(?:attention\.out_lin|ffn\.lin2)",
        ("vocab_transform", "activation", "vocab_layer_norm", "vocab_projector"),
        "vocab_projector", hidden_attr="dim"),
}


class UnsupportedArchitectureError(ValueError):
    pass


def arch_spec(model_type: str) -> ArchSpec:
    if model_type not in ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"architecture {model_type!r} is not supported by list_engine adapters; supported: "
            f"{', '.join(sorted(ARCHITECTURES))}. Add an entry to "
            "list_engine.adapters.ARCHITECTURES (module names of the attention-output and "
            "FFN-output dense layers and of the MLM head).")
    return ARCHITECTURES[model_type]


class AdapterLinear(nn.Module):
    """Wraps `base_layer` (an nn.Linear) and adds h <- h + up(down(h)) to its output."""

    def __init__(self, base_layer: nn.Linear, bottleneck: int, init_std: float):
        super().__init__()
        self.base_layer = base_layer
        width = base_layer.out_features
        factory = {"device": base_layer.weight.device, "dtype": base_layer.weight.dtype}
        self.adapter_down = nn.Linear(width, bottleneck, bias=False, **factory)
        self.adapter_up = nn.Linear(bottleneck, width, bias=False, **factory)
        self.init_std = init_std
        self.enabled = True  # False: the plain base layer (the frozen encoder's own output)
        self.reset_adapter()

    @torch.no_grad()
    def reset_adapter(self, generator: torch.Generator | None = None) -> None:
        for lin in (self.adapter_down, self.adapter_up):
            noise = torch.randn(lin.weight.shape, generator=generator, dtype=torch.float32)
            lin.weight.copy_(noise.to(lin.weight) * self.init_std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base_layer(x)  # (..., H)
        if not self.enabled:
            return h
        return h + self.adapter_up(self.adapter_down(h))

    @torch.no_grad()
    def merged_linear(self) -> nn.Linear:
        """A plain Linear equal to this module: W' = (I + U D) W, b' = (I + U D) b."""
        base = self.base_layer
        w = base.weight.double()  # (H_out, H_in)
        ud = self.adapter_up.weight.double() @ self.adapter_down.weight.double()  # (H, H)
        eye = torch.eye(ud.shape[0], dtype=torch.float64, device=ud.device)
        merged = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                           device=base.weight.device, dtype=base.weight.dtype)
        merged.weight.copy_(((eye + ud) @ w).to(base.weight.dtype))
        if base.bias is not None:
            merged.bias.copy_(((eye + ud) @ base.bias.double()).to(base.bias.dtype))
        merged.weight.requires_grad_(base.weight.requires_grad)
        if base.bias is not None:
            merged.bias.requires_grad_(base.bias.requires_grad)
        return merged


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


_LAYER_INDEX = re.compile(r"\.layer\.(\d+)\.")


def layer_index(name: str) -> int:
    """The transformer layer a module name belongs to ("...layer.3.output.dense" -> 3)."""
    found = _LAYER_INDEX.search(name)
    if found is None:
        raise ValueError(f"{name!r} is not inside a numbered transformer layer")
    return int(found.group(1))


def inject_adapters(model: nn.Module, model_type: str, config: AdapterConfig,
                    hidden_size: int) -> list[str]:
    """Wrap the target dense layers of `model` (in place): those of every transformer layer,
    or of the top `config.layers` ones. Returns the wrapped names."""
    spec = arch_spec(model_type)
    pattern = re.compile(spec.adapter_targets)
    bottleneck = config.resolved_bottleneck(hidden_size)
    targets = [name for name, mod in model.named_modules()
               if pattern.fullmatch(name) and isinstance(mod, nn.Linear)]
    if not targets:
        raise UnsupportedArchitectureError(
            f"no adapter target found in this {model_type!r} model (pattern "
            f"{spec.adapter_targets!r}); the transformers version may have renamed modules")
    if config.layers is not None:
        n_layers = max(layer_index(t) for t in targets) + 1
        first = max(0, n_layers - config.layers)
        targets = [t for t in targets if layer_index(t) >= first]
    for name in targets:
        _set_submodule(model, name, AdapterLinear(model.get_submodule(name), bottleneck,
                                                  config.init_std))
    return targets


def adapter_modules(model: nn.Module) -> list[tuple[str, AdapterLinear]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, AdapterLinear)]


def reset_adapters(model: nn.Module, generator: torch.Generator | None = None) -> None:
    for _, module in adapter_modules(model):
        module.reset_adapter(generator)


def first_adapted_layer(model: nn.Module) -> int:
    """Index of the lowest transformer layer with an adapter (0 when there are none)."""
    indices = [layer_index(name) for name, _ in adapter_modules(model)]
    return min(indices) if indices else 0


@contextlib.contextmanager
def adapters_disabled(model: nn.Module):
    """Run `model` as the plain frozen encoder (every adapter bypassed) inside the block."""
    modules = [m for _, m in adapter_modules(model)]
    for m in modules:
        m.enabled = False
    try:
        yield
    finally:
        for m in modules:
            m.enabled = True


def is_adapter_param(name: str) -> bool:
    return ".adapter_down." in name or ".adapter_up." in name


@torch.no_grad()
def merge_adapters(model: nn.Module) -> int:
    """Fold every adapter into its dense layer, in place. Returns how many were merged."""
    wrapped = adapter_modules(model)
    for name, module in wrapped:
        _set_submodule(model, name, module.merged_linear())
    return len(wrapped)
