"""Int8 prediction on the CPU: PyTorch dynamic quantization of the encoder's dense layers.

    clf = PromptClassifier.from_pretrained("model", device="cpu", int8=True)
    fast = clf.quantize_int8()          # or: a quantized copy of an fp32 classifier

What is quantized: every ``nn.Linear`` of the pretrained encoder (query, key, value, attention
output, FFN in and out, in every layer), including the dense layer that an adapter wraps,
with int8 weights (per output channel) and activations quantized on the fly, batch by batch
(``torch.ao.quantization.quantize_dynamic``). These layers are nearly all of the compute of
a prediction. What stays fp32: the embeddings, LayerNorms, the adapters' bottleneck layers
(``adapter_down`` / ``adapter_up``) and the prompt head (label-word rows, similarity head,
classic head, MLM transform). Those are the trained part of the model, a few MB, and a
negligible share of the compute; keeping them exact keeps what training learnt out of the
rounding.

Prediction only, CPU only: quantized layers have no CUDA kernels and no gradients, so an
int8 classifier refuses CUDA, training, saving and merging (with the messages below). Train
and save the fp32 model; quantize a copy (or load with ``int8=True``) to predict. Whether
int8 holds accuracy on a task is measured by ``python -m bench.int8``.
"""

from __future__ import annotations

import copy
import warnings
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .modeling import PromptClassifier

ADAPTER_LAYERS = ("adapter_down", "adapter_up")

DEVICE_MESSAGE = ("int8 prediction runs on the CPU only (PyTorch dynamic quantization has no "
                  "CUDA kernels): use device 'cpu' (command line: --device cpu), or drop int8 "
                  "to predict on {device}")
TRAINING_MESSAGE = ("this classifier is quantized to int8 for prediction and cannot be "
                    "trained: train the fp32 model (loaded without int8) and quantize a copy "
                    "(clf.quantize_int8()) to predict")
SAVE_MESSAGE = ("this classifier is quantized to int8 for prediction; save the fp32 "
                "classifier it was made from (an int8 copy is made again at load time with "
                "from_pretrained(..., int8=True))")
MERGE_MESSAGE = "adapters cannot be merged into int8 layers: merge the fp32 classifier"


def check_device(device: torch.device | str) -> None:
    """Raise ValueError (DEVICE_MESSAGE) unless `device` is the CPU ("auto": the CPU only
    where no GPU is visible)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.device(device).type != "cpu":
        raise ValueError(DEVICE_MESSAGE.format(device=device))


def quantizable_layers(module: nn.Module) -> list[str]:
    """Names (in `module`, a PromptModule) of the encoder's nn.Linear layers that int8
    quantizes: everything under the encoder (``mlm.base_model``) except the adapters' own
    bottleneck layers; the head is outside the encoder and stays fp32."""
    encoder = module.mlm.base_model
    prefix = next(name for name, m in module.named_modules() if m is encoder)
    return [f"{prefix}.{name}" for name, m in encoder.named_modules()
            if isinstance(m, nn.Linear) and name.rpartition(".")[2] not in ADAPTER_LAYERS]


def quantize_module(module: nn.Module) -> list[str]:
    """Replace the encoder's dense layers of `module` by dynamically quantized int8 ones, in
    place. Returns their names."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    names = quantizable_layers(module)
    if not names:
        raise ValueError("no dense layer to quantize in this model")
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; it still works (torch 2.13).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_(tensor|channel).*")
        quantize_dynamic(module, {name: per_channel_dynamic_qconfig for name in names},
                         dtype=torch.qint8, inplace=True)
    return names


def quantize_int8(clf: PromptClassifier, inplace: bool = False) -> PromptClassifier:
    """An int8 classifier for CPU prediction: `clf` itself (``inplace``) or a copy (the
    original stays fp32, trainable and savable). Same labels, tokenizer and predict API."""
    if getattr(clf, "int8", False):
        return clf
    check_device(clf.device)
    if clf.merged:
        raise ValueError("quantize the classifier before merging its adapters, or load it "
                         "again: a merged classifier is not supported by int8")
    out = clf
    if not inplace:
        out = copy.copy(clf)
        out.module = copy.deepcopy(clf.module)
        out.metrics = copy.deepcopy(clf.metrics)
    out.module.eval()
    out.int8_layers = quantize_module(out.module)
    out.int8 = True
    return out


def is_quantized(module: nn.Module) -> bool:
    """Whether `module` holds dynamically quantized int8 layers."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in module.modules())
