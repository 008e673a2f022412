"""PromptClassifier: a frozen encoder + LiST adapters + a prompt head.

Prompt mode has two heads, chosen from the checkpoint (``head="auto"``):
- ``mlm`` (a masked LM with a pretrained MLM head): class logits = MLM-head scores of the C
  label words at the mask,
      logits = transform(h_mask) @ W_C^T + b_C        # (B, C)
  where W_C, b_C are the decoder rows of the label words (a small trainable copy: the
  vocab-size decoder is never projected nor trained).
- ``similarity`` (an encoder without a pretrained MLM head, e.g. a sentence-transformers
  model): the prompt becomes the encoder's own geometry. Each class is described by the
  template with its label word in the mask slot ("It was great."); class logits are
      logits = s * cos(meanpool(h), e_c) + b_c        # (B, C)
  with e_c initialised to the embedding of that description, s = 20, b = 0, so the untrained
  model is the zero-shot similarity rule; e, s, b train with the adapters.
Classic mode: a classification head on the first ([CLS]/<s>) vector. Full mode: prompt head,
every parameter trains (no adapters).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import frozen
from . import int8 as _int8
from .adapters import (
    AdapterConfig,
    adapters_disabled,
    arch_spec,
    first_adapted_layer,
    inject_adapters,
    is_adapter_param,
    merge_adapters,
    reset_adapters,
)
from .environment import environment
from .format import (
    FORMAT_VERSION,
    HEAD_NAME,
    PEFT_CONFIG_NAME,
    PEFT_WEIGHTS_NAME,
    PROMPT_NAME,
    WEIGHTS_NAME,
    read_model_dir,
)
from .heads import ClassicHead, LabelWordDecoder, SimilarityHead, class_means, mean_pool
from .lengths import model_max_length
from .loading import (
    hub_id,
    load_masked_lm,
    load_pretrained,
    load_tokenizer,
    resolve_model_path,
)
from .peft_export import save_merged, save_peft
from .prompts import (
    Example,
    PromptError,
    Template,
    Verbalizer,
    label_descriptions,
    prompt_format,
    render_prompt,
)

logger = logging.getLogger(__name__)

HEAD_INIT_SEED = 1234  # fixed: a re-created untrained head is identical in every process
HEADS = ("auto", "mlm", "similarity")


# ---------------------------------------------------------------------------------------------
# Device and base-model identity (finding and loading a model: list_engine.loading)
# ---------------------------------------------------------------------------------------------
def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available")
    return torch.device(device)


_LOGGED_HEAD_CHOICE: set[tuple[str, str]] = set()  # say it once per model, not at every load
_HASH_CACHE: dict[tuple[str, float, int], str] = {}


def weights_sha256(path: str) -> str | None:
    """sha256 of the model's weights file (model.safetensors or pytorch_model.bin)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        file = Path(path) / name
        if file.is_file():
            stat = file.stat()
            key = (str(file), stat.st_mtime, stat.st_size)
            if key not in _HASH_CACHE:
                digest = hashlib.sha256()
                with open(file, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                _HASH_CACHE[key] = digest.hexdigest()
            return _HASH_CACHE[key]
    return None


# ---------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------
class PromptModule(nn.Module):
    """Backbone + head as one nn.Module (so torch.func.functional_call works on it)."""

    def __init__(self, mlm: nn.Module, mode: str, head_paths: tuple[str, ...],
                 classifier: nn.Module | None, head: str = "mlm"):
        super().__init__()
        self.mlm = mlm
        self.mode = mode
        self.head = head
        self.head_paths = head_paths
        self.classifier = classifier
        # Layers below this one are frozen and may be cached (0: nothing is cached).
        self.cache_start = 0

    def last_hidden(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                    hidden: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, H) last states of the encoder, from token ids or from the cached states."""
        if hidden is None:
            return self.mlm.base_model(input_ids=input_ids, attention_mask=attention_mask)[0]
        return frozen.run_top_layers(self.mlm, hidden, attention_mask, self.cache_start)

    def forward(self, input_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, mask_pos: torch.Tensor | None = None,
                hidden: torch.Tensor | None = None) -> torch.Tensor:
        """From token ids, or from `hidden`, the cached states entering layer `cache_start`."""
        hidden = self.last_hidden(input_ids, attention_mask, hidden)
        if self.mode == "classic":  # (B, T, H) -> (B, H) first token
            return self.classifier(hidden[:, 0])
        if self.head == "similarity":
            return self.classifier(mean_pool(hidden, attention_mask))
        h = hidden[torch.arange(hidden.shape[0], device=hidden.device), mask_pos]  # (B, H)
        for path in self.head_paths:
            h = self.mlm.get_submodule(path)(h)
        return h  # (B, C)


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    mask_pos: int
    # (T, H) states entering layer `PromptModule.cache_start`, when cached (see frozen.py)
    hidden: torch.Tensor | None = field(default=None, compare=False, repr=False)


# ---------------------------------------------------------------------------------------------
# PromptClassifier
# ---------------------------------------------------------------------------------------------
class PromptClassifier:
    def __init__(self, *, module: PromptModule, tokenizer, template: Template | None,
                 verbalizer: Verbalizer, mode: str, model_name: str, model_path: str,
                 model_type: str, adapter: AdapterConfig, max_length: int, device: torch.device,
                 mlm_head_pretrained: bool, trainable_names: list[str], bf16: bool = False,
                 head: str = "mlm", model_max_length: int | None = None):
        self.module = module
        self.tokenizer = tokenizer
        self.template = template
        self.verbalizer = verbalizer
        self.mode = mode
        self.model_name = model_name
        self.model_path = model_path
        self.model_type = model_type
        self.adapter_config = adapter
        self.max_length = max_length
        self.device = device
        self.mlm_head_pretrained = mlm_head_pretrained
        self.head = head  # mlm | similarity | classic
        self.trainable_names = trainable_names
        self.bf16 = bf16
        self.merged = False
        self.int8 = False  # dense layers quantized for CPU prediction (list_engine.int8)
        self.model_max_length = model_max_length or max_length  # the model's own limit
        self.metrics: dict[str, Any] = {}
        self.environment: dict[str, Any] | None = None  # of training; None: this process
        self.label_word_base: tuple[torch.Tensor, torch.Tensor] | None = None
        self._init_state = self.trainable_state()  # what a fresh student starts from

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def create(cls, model: str = "default", template: str | Template | None = None,
               verbalizer: dict[str, str] | Verbalizer | None = None, mode: str = "prompt",
               adapter: AdapterConfig | None = None, max_length: int | None = 128,
               device: str = "auto", bf16: bool = False, head: str = "auto") -> PromptClassifier:
        """`max_length` None: the model's own limit (the trainer may choose a shorter one from
        the documents). `head`: "mlm" (label-word scores of the MLM head), "similarity" (cosine to label
        descriptions) or "auto": mlm when the checkpoint has a pretrained MLM head, else
        similarity. Ignored in classic mode."""
        if mode not in ("prompt", "classic", "full"):
            raise ValueError(f"mode must be prompt, classic or full, got {mode!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if verbalizer is None:
            raise PromptError("a verbalizer (label -> word) is needed; in classic mode only "
                              "its labels are used")
        verbalizer = Verbalizer(verbalizer)
        if mode != "classic" and template is None:
            raise PromptError(f"mode {mode!r} needs a template, e.g. '{{text}} It was {{mask}}.'")
        template = Template(template) if template is not None else None
        adapter = adapter or AdapterConfig()
        path = resolve_model_path(model)
        tokenizer = load_tokenizer(path)
        mlm, info = load_masked_lm(path)
        model_type = mlm.config.model_type
        spec = arch_spec(model_type)
        model_limit = model_max_length(path, tokenizer, mlm.config)
        max_length = model_limit if max_length is None else int(max_length)
        hidden = getattr(mlm.config, spec.hidden_attr)
        missing = set(info.get("missing_keys", ()))
        head_prefixes = tuple(p + "." for p in spec.head_modules)
        head_missing = sorted(k for k in missing if k.startswith(head_prefixes))
        pretrained = not head_missing
        if head == "auto":
            head = "mlm" if pretrained else "similarity"
        if mode == "classic":
            head = "classic"
        if head != "classic":
            first = (path, head) not in _LOGGED_HEAD_CHOICE
            _LOGGED_HEAD_CHOICE.add((path, head))
            why = ("the checkpoint has a pretrained MLM head" if pretrained else
                   f"the checkpoint has no pretrained MLM head ({len(head_missing)} head "
                   f"tensors missing, e.g. {head_missing[0]})")
            level = logging.INFO if first else logging.DEBUG
            if head == "mlm" and not pretrained:
                level = logging.WARNING if first else logging.DEBUG
                why += "; the MLM head starts untrained (zero-shot is chance)"
            logger.log(level, "model %s: %s head (%s)", model, head, why)
        for p in mlm.parameters():
            p.requires_grad_(False)
        classifier = None
        head_paths: tuple[str, ...] = ()
        label_word_base = None
        if mode == "classic":
            gen = torch.Generator().manual_seed(HEAD_INIT_SEED)
            classifier = ClassicHead(hidden, len(verbalizer.labels))
            _init_linear_layers(classifier, gen, mlm.config.initializer_range)
        elif head == "similarity":
            descriptions = label_descriptions(template, verbalizer)  # one per label word
            embedded = _embed_texts(mlm, tokenizer, descriptions)
            classifier = SimilarityHead(class_means(embedded, verbalizer.words_per_class))
        else:
            ids = verbalizer.token_ids(tokenizer)  # one per label word
            if not pretrained:
                _reinit_head(mlm, spec, mlm.config.initializer_range)
            decoder = mlm.get_submodule(spec.decoder)
            per_class = verbalizer.words_per_class
            # A class's score is the mean of its words' scores: as the decoder is linear, that
            # is one row, the mean of the words' rows (and bias), trained as one.
            weight = class_means(decoder.weight[ids], per_class)  # (C, E)
            bias = (class_means(decoder.bias[ids], per_class) if decoder.bias is not None
                    else torch.zeros(len(per_class)))
            # The rows a plain load of the base model gives (the PEFT view stores the
            # difference); unknown when the decoder is untied and missing (random init).
            if f"{spec.decoder}.weight" not in missing:
                label_word_base = (weight.detach().clone(), bias.detach().clone())
            if not pretrained:
                bias = torch.zeros(len(per_class))
            from .adapters import _set_submodule

            _set_submodule(mlm, spec.decoder, LabelWordDecoder(weight, bias))
            head_paths = spec.head_modules
        if mode != "full":
            inject_adapters(mlm, model_type, adapter, hidden)
        module = PromptModule(mlm, mode, head_paths, classifier, head)
        if mode != "full" and frozen.can_split(mlm):
            module.cache_start = first_adapted_layer(mlm)
        vocab = mlm.config.vocab_size
        trainable = []
        for name, p in module.named_parameters():
            in_head = any(name.startswith("mlm." + h + ".") for h in spec.head_modules)
            if mode == "full" and head == "similarity":
                keep = not in_head  # the MLM head is not used
            elif mode == "full":
                keep = not (in_head and p.dim() >= 1 and p.shape[0] == vocab)
            elif mode == "classic" or head == "similarity":
                keep = is_adapter_param(name) or name.startswith("classifier.")
            else:
                keep = is_adapter_param(name) or (in_head and p.shape[0] != vocab)
            p.requires_grad_(keep)
            if keep:
                trainable.append(name)
        dev = resolve_device(device)
        module.to(dev)
        module.eval()
        clf = cls(module=module, tokenizer=tokenizer, template=template, verbalizer=verbalizer,
                   mode=mode, model_name=str(model), model_path=path, model_type=model_type,
                   adapter=adapter, max_length=max_length, device=dev,
                   mlm_head_pretrained=pretrained, trainable_names=trainable, bf16=bf16,
                   head=head, model_max_length=model_limit)
        clf.label_word_base = label_word_base
        return clf

    def to(self, device: str | torch.device) -> PromptClassifier:
        if self.int8:
            _int8.check_device(device)
        self.device = resolve_device(device)
        self.module.to(self.device)
        return self

    # -- basic properties -------------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        return self.verbalizer.labels

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters actually used (the replaced vocab decoder and its
        bias are not counted; tied embeddings count once)."""
        seen, total, trainable = set(), 0, 0
        vocab = self.module.mlm.config.vocab_size
        head = tuple(f"mlm.{h}." for h in arch_spec(self.model_type).head_modules)
        for name, p in self.module.named_parameters():
            unused = name.startswith(head) and (self.head != "mlm" or p.shape[0] == vocab)
            if id(p) in seen or unused:  # unused: replaced vocab bias; MLM head in classic
                continue
            seen.add(id(p))
            total += p.numel()
            if p.requires_grad:
                trainable += p.numel()
        return trainable, total

    def trainable_parameters(self) -> dict[str, nn.Parameter]:
        params = dict(self.module.named_parameters())
        return {name: params[name] for name in self.trainable_names}

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.trainable_parameters().items()}

    @torch.no_grad()
    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        params = self.trainable_parameters()
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise ValueError(f"trainable state does not fit this model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        for name, p in params.items():
            p.copy_(state[name].to(p.device, p.dtype))

    @torch.no_grad()
    def reset_trainable(self, generator: torch.Generator | None = None) -> None:
        """A fresh student: initial head (pretrained or fixed-seed init) + new adapters."""
        self.load_trainable_state(self._init_state)
        reset_adapters(self.module, generator)

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, examples: list[Example | str]) -> list[Encoded]:
        out = []
        for ex in examples:
            if isinstance(ex, str):
                ex = Example(text=ex)
            if self.head != "mlm":  # classic, similarity: the text itself, no cloze
                enc = self.tokenizer(ex.text, ex.text_b, truncation=True,
                                     max_length=self.max_length)
                out.append(Encoded(enc["input_ids"], 0))
            else:
                r = render_prompt(self.template, ex, self.tokenizer, self.max_length)
                out.append(Encoded(r.input_ids, r.mask_position))
        return out

    @property
    def cache_start(self) -> int:
        """The first layer that trains; below it the encoder is frozen and can be cached
        (0: nothing to cache, e.g. adapters in every layer, mode "full", merged adapters)."""
        return 0 if self.merged else self.module.cache_start

    @torch.no_grad()
    def cache_frozen(self, encoded: list[Encoded], batch_size: int = 64) -> list[Encoded]:
        """The same examples with their frozen states attached (computed once, by length
        bucket); the model's outputs on them are unchanged, only cheaper."""
        start = self.cache_start
        if start == 0 or not encoded:
            return list(encoded)
        out: list[Encoded | None] = [None] * len(encoded)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        was_training = self.module.training
        self.module.eval()
        for begin in range(0, len(order), batch_size):
            idx = order[begin : begin + batch_size]
            batch = self.collate([encoded[i] for i in idx])
            with self.autocast():
                states = frozen.prefix_states(self.module.mlm, batch["input_ids"],
                                              batch["attention_mask"], start).float()
            for row, i in enumerate(idx):
                n = len(encoded[i].input_ids)
                out[i] = Encoded(encoded[i].input_ids, encoded[i].mask_pos,
                                 states[row, :n].clone())
        self.module.train(was_training)
        return out  # type: ignore[return-value]

    @torch.no_grad()
    def frozen_embeddings(self, encoded: list[Encoded], batch_size: int = 64) -> np.ndarray:
        """(N, H) L2-normalised mean-pooled last states of the plain encoder (adapters
        bypassed): the corpus's own geometry, the same whatever the training did."""
        parts: list[np.ndarray] = []
        was_training = self.module.training
        self.module.eval()
        with adapters_disabled(self.module):
            for begin in range(0, len(encoded), batch_size):
                batch = self.collate(encoded[begin : begin + batch_size])
                mask = batch["attention_mask"]
                with self.autocast():
                    h = self.module.last_hidden(batch.get("input_ids"), mask,
                                                batch.get("hidden"))
                parts.append(F.normalize(mean_pool(h.float(), mask), dim=-1).cpu().numpy())
        self.module.train(was_training)
        return np.concatenate(parts) if parts else np.zeros((0, 0), dtype=np.float32)

    def collate(self, encoded: list[Encoded]) -> dict[str, torch.Tensor]:
        width = max(len(e.input_ids) for e in encoded)
        pad = self.tokenizer.pad_token_id or 0
        mask = torch.zeros((len(encoded), width), dtype=torch.long)
        for i, e in enumerate(encoded):
            mask[i, : len(e.input_ids)] = 1
        pos = torch.tensor([e.mask_pos for e in encoded], dtype=torch.long)
        batch = {"attention_mask": mask.to(self.device), "mask_pos": pos.to(self.device)}
        if all(e.hidden is not None for e in encoded):  # cached: (B, T, H), zero padding
            states = encoded[0].hidden.new_zeros((len(encoded), width,
                                                  encoded[0].hidden.shape[-1]))
            for i, e in enumerate(encoded):
                states[i, : len(e.input_ids)] = e.hidden
            batch["hidden"] = states.to(self.device)
            return batch
        ids = torch.full((len(encoded), width), pad, dtype=torch.long)
        for i, e in enumerate(encoded):
            ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        batch["input_ids"] = ids.to(self.device)
        return batch

    def autocast(self):
        if self.bf16 and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        with self.autocast():
            logits = self.module(**batch)  # (B, C)
        return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits

    # -- inference --------------------------------------------------------------------------
    def predict_encoded(self, encoded: list[Encoded], batch_size: int = 64) -> np.ndarray:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if not encoded:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
        probs = np.zeros((len(encoded), self.num_classes), dtype=np.float32)
        was_training = self.module.training
        self.module.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                batch = self.collate([encoded[i] for i in idx])
                probs[idx] = torch.softmax(self.logits(batch), dim=-1).cpu().numpy()
        self.module.train(was_training)
        return probs

    def predict_proba(self, texts: list[str] | list[Example], batch_size: int = 64) -> np.ndarray:
        return self.predict_encoded(self.encode(list(texts)), batch_size)

    def predict(self, texts: list[str] | list[Example], batch_size: int = 64) -> list[str]:
        probs = self.predict_proba(texts, batch_size)
        return [self.labels[i] for i in probs.argmax(axis=1)]

    def evaluate(self, examples: list[Example], batch_size: int = 64,
                 encoded: list[Encoded] | None = None, with_predictions: bool = False) -> dict:
        """Metrics on labelled `examples` (`encoded`: the same examples already encoded, e.g.
        with their frozen states cached); `with_predictions` adds "predictions", the
        predicted class index of each example."""
        unknown = sorted({ex.label for ex in examples} - set(self.labels))
        if unknown:
            raise ValueError(f"evaluation labels {unknown} are not among the model's labels "
                             f"{self.labels}")
        probs = self.predict_encoded(encoded if encoded is not None else self.encode(examples),
                                     batch_size)
        pred = probs.argmax(axis=1).tolist()
        out = classification_metrics([self.labels.index(ex.label) for ex in examples], pred,
                                     self.labels)
        if with_predictions:
            out["predictions"] = pred
        return out

    # -- save / load ------------------------------------------------------------------------
    def config_dict(self, metrics: dict | None = None) -> dict[str, Any]:
        """list_prompt.json: what LiST adds to the base model (see list_engine.format)."""
        from . import __version__

        hidden = getattr(self.module.mlm.config, arch_spec(self.model_type).hidden_attr)
        adapter = self.adapter_config.to_dict()
        adapter["bottleneck"] = self.adapter_config.resolved_bottleneck(hidden)
        trainable, total = self.parameter_counts()
        return {
            "format_version": FORMAT_VERSION,
            "library": "list_engine",
            "library_version": __version__,
            "weights": WEIGHTS_NAME,
            "base_model": self.model_name,  # as given: a hub name, a path or "default"
            "base_model_hub_id": hub_id(self.model_name),
            "base_model_sha256": weights_sha256(self.model_path),
            "model_type": self.model_type,
            "mode": self.mode,
            "head": self.head,
            "adapter": adapter if self.mode != "full" else None,
            "template": self.template.pattern if self.template else None,
            "prompt_format": (prompt_format(self.template.pattern, self.tokenizer)
                              if self.head == "mlm" else None),
            "verbalizer": dict(self.verbalizer.mapping),
            "labels": self.labels,
            "label_token_ids": (self.verbalizer.token_ids(self.tokenizer)
                                if self.head == "mlm" else None),
            "label_words_per_class": self.verbalizer.words_per_class,
            "max_length": self.max_length,
            "mlm_head_pretrained": self.mlm_head_pretrained,
            "trainable_parameters": trainable,
            "total_parameters": total,
            "metrics": metrics if metrics is not None else self.metrics,
            "environment": (self.environment if self.environment is not None
                            else environment(self.device)),
        }

    def save_pretrained(self, directory: str | Path, metrics: dict | None = None) -> Path:
        """Write list_prompt.json + list_weights.safetensors and, in prompt mode, the same
        model as a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors)."""
        from safetensors.torch import save_file

        if self.merged:
            raise RuntimeError("adapters were merged; use save_merged() for a merged model")
        if self.int8:
            raise RuntimeError(_int8.SAVE_MESSAGE)
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in (PEFT_CONFIG_NAME, PEFT_WEIGHTS_NAME, HEAD_NAME):
            (directory / stale).unlink(missing_ok=True)  # a format-1 or older save
        state = {n: t.detach().cpu().contiguous() for n, t in self.trainable_state().items()}
        save_file(state, str(directory / WEIGHTS_NAME), metadata={"format": "pt"})
        config = self.config_dict(metrics)
        config["peft_base_class"] = save_peft(self, directory)
        (directory / PROMPT_NAME).write_text(json.dumps(config, indent=2, sort_keys=True))
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | Path, device: str = "auto",
                        int8: bool = False) -> PromptClassifier:
        """Load a folder written by save_pretrained (format 2, or format 1 of earlier versions).
        `int8`: for CPU prediction, with the encoder's dense layers quantized to int8 (see
        list_engine.int8); device "auto" then means the CPU, a CUDA device is refused."""
        from safetensors.torch import load_file

        if int8:
            device = "cpu" if device == "auto" else device
            _int8.check_device(device)
        directory = Path(directory)
        saved = read_model_dir(directory)
        config = saved.config
        known = {"format_version", "library", "library_version", "weights", "base_model",
                 "base_model_hub_id", "base_model_path", "base_model_sha256", "model_type",
                 "mode", "head", "adapter", "template", "prompt_format", "verbalizer", "labels",
                 "label_token_ids", "label_words_per_class", "max_length", "mlm_head_pretrained", "trainable_parameters",
                 "total_parameters", "metrics", "environment", "peft_base_class"}
        unknown = sorted(set(config) - known)
        if unknown:
            logger.warning("%s: ignoring unknown keys %s", directory, unknown)
        base, name = _saved_base_model(config, directory)
        # The JSON is written with sorted keys: rebuild the verbalizer in class order.
        labels = config.get("labels") or list(config["verbalizer"])
        verbalizer = {label: config["verbalizer"][label] for label in labels}
        head = _saved_head(config)
        # The base checkpoint's head is replaced by the trained one below: create()'s note
        # about the base checkpoint ("starts untrained") would be wrong here.
        _LOGGED_HEAD_CHOICE.add((resolve_model_path(base), head))
        logger.info("model folder %s: %s head with its trained weights (base model %s)",
                    directory, "classic" if config["mode"] == "classic" else head, name)
        clf = cls.create(model=base, template=config.get("template"),
                         verbalizer=verbalizer, mode=config["mode"],
                         adapter=AdapterConfig.from_dict(config.get("adapter")),
                         max_length=config["max_length"], device=device, head=head)
        clf.model_name = name  # saved again as given, not as resolved here
        expected = config.get("base_model_sha256")
        actual = weights_sha256(clf.model_path)
        if expected and actual and expected != actual:
            logger.warning("base model %s differs from the one this adapter was trained on "
                           "(sha256 %s != %s): predictions may be wrong", base, actual[:12],
                           expected[:12])
        clf.load_trainable_state(load_file(str(saved.weights)))
        clf.metrics = config.get("metrics") or {}
        clf.environment = config.get("environment") or {}  # {}: not recorded (format 1)
        if int8:
            _int8.quantize_int8(clf, inplace=True)
        return clf

    def quantize_int8(self, inplace: bool = False) -> PromptClassifier:
        """An int8 classifier for CPU prediction (a copy unless `inplace`; see
        list_engine.int8): the encoder's dense layers quantized, adapters and head kept fp32.
        It predicts, evaluates and caches like this one; it cannot train, save or merge."""
        return _int8.quantize_int8(self, inplace=inplace)

    # -- merge ------------------------------------------------------------------------------
    def merge(self) -> int:
        """Fold the adapters into the dense weights, in place (no more training after)."""
        if self.int8:
            raise RuntimeError(_int8.MERGE_MESSAGE)
        n = merge_adapters(self.module)
        self.trainable_names = [n_ for n_ in self.trainable_names if not is_adapter_param(n_)]
        self.merged = True
        return n

    def save_merged(self, directory: str | Path) -> Path:
        """A plain transformers model directory (adapters folded in, in place) +
        list_prompt.json; see list_engine.peft_export.save_merged."""
        return save_merged(self, directory)


def _saved_base_model(config: dict, directory: Path) -> tuple[str, str]:
    """(where to load the base model from, the name to keep for it). Saved as given (a hub
    name, "default" or a path); a relative path not found from the working directory is
    tried from the model folder; format 1 also kept the absolute path it resolved to."""
    base = config["base_model"]
    legacy = config.get("base_model_path")
    if base != "default" and legacy and Path(legacy).is_dir():
        return legacy, base if Path(base).is_dir() else legacy
    beside = directory / base
    if base != "default" and not Path(base).exists() and beside.is_dir():
        return str(beside), base
    return base, base


def _saved_head(config: dict) -> str:
    """The head of a saved model; exports made before the similarity head used the MLM head."""
    if config.get("mode") == "classic":
        return "auto"
    return config.get("head") or "mlm"


@torch.no_grad()
def _embed_texts(mlm: nn.Module, tokenizer, texts: list[str]) -> torch.Tensor:
    """(N, H) mean-pooled embeddings of `texts` by the (frozen, adapter-free) encoder."""
    was_training = mlm.training
    mlm.eval()
    enc = tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
    device = next(mlm.parameters()).device
    hidden = mlm.base_model(input_ids=enc["input_ids"].to(device),
                            attention_mask=enc["attention_mask"].to(device))[0]
    mlm.train(was_training)
    return mean_pool(hidden, enc["attention_mask"].to(device)).float().cpu()


def _init_linear_layers(module: nn.Module, gen: torch.Generator, std: float) -> None:
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.LayerNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()


def _reinit_head(mlm: nn.Module, spec, std: float) -> None:
    """Deterministic init of an untrained MLM head (transformers' init uses the global RNG,
    which would make a re-created model differ between processes).

    A square transform starts as the identity (bias 0, LayerNorm 1/0): the head then scores a
    label word by the similarity of the mask state to that word's (tied, pretrained) embedding
    row, which keeps the encoder's geometry instead of a random projection of it. On MR with
    the packaged MiniLM and 30 labels this gave a better teacher than a random transform
    (0.567 vs 0.520 accuracy on 600 test sentences, one split)."""
    gen = torch.Generator().manual_seed(HEAD_INIT_SEED)
    decoder = mlm.get_submodule(spec.decoder)
    vocab = mlm.config.vocab_size
    for path in spec.head_modules:
        module = mlm.get_submodule(path)
        if module is decoder:
            continue
        for sub in module.modules():
            if sub is decoder:
                continue
            if isinstance(sub, nn.LayerNorm):
                _init_linear_layers(sub, gen, std)
            elif isinstance(sub, nn.Linear) and sub.out_features != vocab:
                _init_linear_layers(sub, gen, std)
                if sub.in_features == sub.out_features:
                    with torch.no_grad():
                        sub.weight.copy_(torch.eye(sub.in_features))


def classification_metrics(gold: list[int], pred: list[int], labels: list[str]) -> dict:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    idx = list(range(len(labels)))
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=idx, zero_division=0)
    gold_a, pred_a = np.asarray(gold), np.asarray(pred)
    return {
        "accuracy": float((gold_a == pred_a).mean()) if len(gold) else float("nan"),
        "macro_f1": float(np.mean(f)),
        "per_class": {labels[i]: {"precision": float(p[i]), "recall": float(r[i]),
                                  "f1": float(f[i]), "support": int(s[i])} for i in idx},
        "confusion": confusion_matrix(gold, pred, labels=idx).tolist(),
        "labels": list(labels),
        "n": len(gold),
    }


# ---------------------------------------------------------------------------------------------
# Sentence embeddings (for diverse selection and baselines)
# ---------------------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _encoder(path: str, device: str):
    from transformers import AutoModel

    tokenizer = load_tokenizer(path)
    model = load_pretrained(AutoModel.from_pretrained, path)
    model.to(resolve_device(device)).eval()
    return tokenizer, model


def mean_pooled_embeddings(texts: list[str] | list[Example], model: str = "default",
                           batch_size: int = 64, device: str = "auto",
                           max_length: int = 256) -> np.ndarray:
    """(N, hidden) float32, mean-pooled over real tokens and L2-normalised."""
    dev = resolve_device(device)
    tokenizer, encoder = _encoder(resolve_model_path(model), str(dev))
    items = [(t.text, t.text_b) if isinstance(t, Example) else (str(t), None) for t in texts]
    hidden = encoder.config.hidden_size if hasattr(encoder.config, "hidden_size") else None
    if not items:
        return np.zeros((0, hidden or 0), dtype=np.float32)
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]) + len(items[i][1] or ""))
    out: np.ndarray | None = None
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            a = [items[i][0] for i in idx]
            b = [items[i][1] for i in idx]
            enc = tokenizer(a, b if all(x is not None for x in b) else None, padding=True,
                            truncation=True, max_length=max_length, return_tensors="pt")
            enc = {k: v.to(dev) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            h = encoder(**enc)[0]  # (B, T, H)
            pooled = mean_pool(h, enc["attention_mask"])
            pooled = F.normalize(pooled.float(), dim=-1).cpu().numpy()
            if out is None:
                out = np.zeros((len(items), pooled.shape[1]), dtype=np.float32)
            out[idx] = pooled
    return out


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
