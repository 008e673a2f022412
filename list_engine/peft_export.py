"""The PEFT view and the merged export of a PromptClassifier (the folder format itself, file
names and reading: list_engine.format).

The PEFT view of a model folder (prompt and classic mode), for ``peft`` users:
``adapter_config.json`` + ``adapter_model.safetensors``. The LiST adapter is linear,
``y + U D y`` with ``y = W x + b``, so it is exactly a LoRA on the dense layer it follows:
``lora_A = D W``, ``lora_B = U``, scaling 1, and ``U D b`` as the LoRA bias (``lora_bias``).
MLM head: the transform goes to ``modules_to_save``; the C trained label-word rows of the
decoder become a rank-C LoRA on the decoder (one-hot ``lora_B``), so a plain
``AutoModelForMaskedLM`` + ``PeftModel`` scores the label words exactly as list_engine does.
Similarity head: the LoRA goes on ``AutoModel`` (the encoder) and the head, which no
transformers class has, is ``list_head.safetensors``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from .adapters import adapter_modules, arch_spec
from .format import HEAD_NAME, PEFT_WEIGHTS_NAME, PROMPT_NAME, ExportError
from .heads import class_means
from .loading import DEFAULT_MODEL_HUB_ID, load_masked_lm

if TYPE_CHECKING:
    from .modeling import PromptClassifier

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# The PEFT view
# ---------------------------------------------------------------------------------------------
@dataclass
class PeftView:
    base_class: str  # the transformers Auto class PeftModel wraps
    lora: dict[str, Any]  # LoraConfig arguments
    tensors: dict[str, torch.Tensor]  # adapter_model.safetensors
    head: dict[str, torch.Tensor] | None = None  # list_head.safetensors (similarity head)


def _lora_tensors(clf: PromptClassifier, strip: str) -> tuple[list[str], dict, int]:
    """(target module names, tensors, rank) of the adapters as LoRA layers; `strip` is the
    module-name prefix of our wrapper that the PEFT base model does not have."""
    targets, tensors, rank = [], {}, 0
    for name, mod in adapter_modules(clf.module):
        base = mod.base_layer
        w, d, u = base.weight.double(), mod.adapter_down.weight.double(), mod.adapter_up.weight.double()
        target = name.removeprefix(strip)
        key, dtype = f"base_model.model.{target}", base.weight.dtype
        tensors[f"{key}.lora_A.weight"] = (d @ w).to(dtype)  # (r, H_in)
        tensors[f"{key}.lora_B.weight"] = u.to(dtype)  # (H_out, r)
        bias = base.bias.double() if base.bias is not None else \
            torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
        tensors[f"{key}.lora_B.bias"] = (u @ (d @ bias)).to(dtype)  # (H_out,)
        targets.append(target)
        rank = d.shape[0]
    return targets, tensors, rank


# Classic mode: where our ClassicHead (first token -> dense -> tanh -> out_proj) lives in the
# AutoModelForSequenceClassification of each family whose head has that very shape.
_ROBERTA_HEAD = {"dense": "classifier.dense", "out_proj": "classifier.out_proj"}
CLASSIC_HEADS: dict[str, tuple[dict[str, str], list[str]]] = {
    "bert": ({"dense": "bert.pooler.dense", "out_proj": "classifier"},
             ["bert.pooler.dense", "classifier"]),
    "roberta": (_ROBERTA_HEAD, ["classifier"]),
    "xlm-roberta": (_ROBERTA_HEAD, ["classifier"]),
    "camembert": (_ROBERTA_HEAD, ["classifier"]),
    "mpnet": (_ROBERTA_HEAD, ["classifier"]),
}


def _classic_view(clf: PromptClassifier) -> PeftView | None:
    if clf.model_type not in CLASSIC_HEADS:
        logger.info("no PEFT view for classic mode on %s: its sequence-classification head has "
                    "another shape", clf.model_type)
        return None
    names, modules_to_save = CLASSIC_HEADS[clf.model_type]
    targets, tensors, rank = _lora_tensors(clf, "mlm.")
    for ours, theirs in names.items():
        layer = getattr(clf.module.classifier, ours)
        tensors[f"base_model.model.{theirs}.weight"] = layer.weight.detach()
        tensors[f"base_model.model.{theirs}.bias"] = layer.bias.detach()
    lora = {"r": rank, "lora_alpha": rank, "target_modules": targets,
            "modules_to_save": modules_to_save, "task_type": "SEQ_CLS"}
    return PeftView("AutoModelForSequenceClassification", lora, tensors)


def peft_view(clf: PromptClassifier) -> PeftView | None:
    """The model as a LoRA adapter (None where PEFT cannot express it: full mode, classic
    heads of another shape, or an MLM head whose decoder a plain load would initialise at
    random)."""
    if clf.merged or clf.mode == "full":
        return None
    if clf.mode == "classic":
        return _classic_view(clf)
    mlm = clf.module.mlm
    if clf.head == "similarity":
        prefix = f"mlm.{mlm.base_model_prefix}."
        targets, tensors, rank = _lora_tensors(clf, prefix)
        head = {n: p.detach().cpu().contiguous() for n, p in clf.module.classifier.state_dict().items()}
        lora = {"r": rank, "lora_alpha": rank, "target_modules": targets,
                "task_type": "FEATURE_EXTRACTION"}
        return PeftView("AutoModel", lora, tensors, head)
    if clf.label_word_base is None:
        logger.warning("no PEFT view written: a plain load of this base model initialises its "
                       "MLM decoder at random, so the label-word rows cannot be stored as a "
                       "difference (list_engine's own files hold the model)")
        return None
    spec = arch_spec(clf.model_type)
    targets, tensors, rank = _lora_tensors(clf, "mlm.")
    # Label-word rows: decoder(x) + B A x + bias_B equals W_C x + b_C on the C classes. A
    # class with several words trains one row, their mean: every word of class c gets the
    # same change (row c of A), so the mean of its words' scores is the trained score.
    ids = clf.verbalizer.token_ids(clf.tokenizer)
    word_class = _word_classes(clf)
    lwd = mlm.get_submodule(spec.decoder)
    base_w, base_b = clf.label_word_base
    n, vocab = clf.num_classes, mlm.config.vocab_size
    one_hot = torch.zeros(vocab, n, dtype=lwd.weight.dtype)  # (V, C)
    one_hot[ids, word_class] = 1.0
    bias = torch.zeros(vocab, dtype=lwd.bias.dtype)
    bias[ids] = (lwd.bias.detach().cpu() - base_b)[word_class]
    key = f"base_model.model.{spec.decoder}"
    tensors[f"{key}.lora_A.weight"] = lwd.weight.detach().cpu() - base_w  # (C, E)
    tensors[f"{key}.lora_B.weight"] = one_hot
    tensors[f"{key}.lora_B.bias"] = bias
    # Head parameters that train (the transform): saved whole.
    params = dict(clf.module.named_parameters())
    saved = set()
    for name in clf.trainable_names:
        inner = name.removeprefix("mlm.")
        if name.startswith("mlm.") and not inner.startswith(spec.decoder + ".") and \
                ".adapter_" not in inner:
            tensors[f"base_model.model.{inner}"] = params[name].detach()
            saved.add(inner.rpartition(".")[0])
    lora = {"r": rank, "lora_alpha": rank, "target_modules": [*targets, spec.decoder],
            "rank_pattern": {spec.decoder: n}, "alpha_pattern": {spec.decoder: n},
            "modules_to_save": sorted(saved) or None}
    return PeftView("AutoModelForMaskedLM", lora, tensors)


def save_peft(clf: PromptClassifier, directory: Path) -> str | None:
    """Write the PEFT files; returns the Auto class of the base model, None if not written."""
    from peft import LoraConfig
    from safetensors.torch import save_file

    view = peft_view(clf)
    if view is None:
        return None
    base = clf.model_name if clf.model_name != "default" else DEFAULT_MODEL_HUB_ID
    config = LoraConfig(lora_dropout=0.0, lora_bias=True, init_lora_weights=True,
                        inference_mode=True, base_model_name_or_path=base, **view.lora)
    config.save_pretrained(str(directory))
    save_file({k: v.detach().cpu().contiguous() for k, v in view.tensors.items()},
              str(directory / PEFT_WEIGHTS_NAME), metadata={"format": "pt"})
    if view.head is not None:
        save_file(view.head, str(directory / HEAD_NAME), metadata={"format": "pt"})
    return view.base_class


# ---------------------------------------------------------------------------------------------
# The merged export
# ---------------------------------------------------------------------------------------------
def save_merged(clf: PromptClassifier, directory: str | Path) -> Path:
    """A plain transformers model directory (adapters folded in) + list_prompt.json.
    MLM head: an AutoModelForMaskedLM whose decoder rows and biases of the label words are
    the trained ones (untied from the embeddings). Similarity head: the encoder (AutoModel)
    + list_head.safetensors (logits = exp(log_scale) * cos(meanpool(h), e_c) + bias_c)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    if clf.mode == "classic":
        raise NotImplementedError("save_merged supports prompt and full modes")
    if adapter_modules(clf.module):
        clf.merge()
    prompt = {"template": clf.template.pattern, "verbalizer": clf.verbalizer.mapping,
              "labels": clf.labels, "max_length": clf.max_length, "head": clf.head,
              "label_words_per_class": clf.verbalizer.words_per_class}
    if clf.head == "similarity":
        clf.module.mlm.base_model.save_pretrained(directory)
        head = {n: p.detach().cpu().contiguous()
                for n, p in clf.module.classifier.state_dict().items()}
        save_file(head, str(directory / HEAD_NAME), metadata={"format": "pt"})
        _write_sentence_transformers(directory, head, clf.max_length)
        prompt["pooling"] = "mean"
        prompt["logits"] = "exp(log_scale) * cos(meanpool(last_hidden_state), label_embeddings) + bias"
    else:
        prompt["label_token_ids"] = _save_merged_mlm(clf, directory)
    clf.tokenizer.save_pretrained(directory)
    (directory / PROMPT_NAME).write_text(json.dumps(prompt, indent=2, sort_keys=True))
    return directory


def _write_sentence_transformers(directory: Path, head: dict[str, torch.Tensor],
                                 max_length: int) -> None:
    """Make the merged similarity model a sentence-transformers folder whose "embedding" is
    the class logits: mean pooling -> normalise -> Dense(exp(log_scale) * e_c / |e_c|, bias).
    Written in the long-standing module format (sentence_transformers.models.*)."""
    from safetensors.torch import save_file

    emb = head["label_embeddings"].float()  # (C, H)
    weight = head["log_scale"].float().exp() * torch.nn.functional.normalize(emb, dim=-1)
    modules = [("", "Transformer"), ("1_Pooling", "Pooling"), ("2_Normalize", "Normalize"),
               ("3_Dense", "Dense")]
    (directory / "modules.json").write_text(json.dumps(
        [{"idx": i, "name": str(i), "path": path, "type": f"sentence_transformers.models.{kind}"}
         for i, (path, kind) in enumerate(modules)], indent=2))
    (directory / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": max_length, "do_lower_case": False}, indent=2))
    for path in ("1_Pooling", "2_Normalize", "3_Dense"):
        (directory / path).mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": emb.shape[1], "pooling_mode_cls_token": False,
         "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
         "pooling_mode_mean_sqrt_len_tokens": False}, indent=2))
    (directory / "3_Dense" / "config.json").write_text(json.dumps(
        {"in_features": emb.shape[1], "out_features": emb.shape[0], "bias": True,
         "activation_function": "torch.nn.modules.linear.Identity"}, indent=2))
    save_file({"linear.weight": weight.contiguous(), "linear.bias": head["bias"].float()},
              str(directory / "3_Dense" / "model.safetensors"), metadata={"format": "pt"})


@torch.no_grad()
def _save_merged_mlm(clf: PromptClassifier, directory: Path) -> list[int]:
    spec = arch_spec(clf.model_type)
    fresh, _ = load_masked_lm(clf.model_path)
    ours = {n.removeprefix("mlm."): p for n, p in clf.module.named_parameters()}
    ids = clf.verbalizer.token_ids(clf.tokenizer)
    lwd = clf.module.mlm.get_submodule(spec.decoder)
    fresh.config.tie_word_embeddings = False
    decoder = fresh.get_submodule(spec.decoder)
    decoder.weight = nn.Parameter(decoder.weight.detach().clone())
    for name, p in fresh.named_parameters():
        if name in ours and ours[name].shape == p.shape:
            p.copy_(ours[name])
    decoder.weight[ids] = _word_rows(decoder.weight, lwd.weight, ids, clf)
    if decoder.bias is not None:
        # The decoder bias is tied to the head's own `bias` (BERT cls.predictions.bias, RoBERTa
        # lm_head.bias): untie every copy and write the label-word values into each, so that
        # whichever name transformers reads back carries them.
        bias = decoder.bias.detach().clone()
        bias[ids] = _word_rows(bias, lwd.bias, ids, clf)
        vocab = fresh.config.vocab_size
        for path in spec.head_modules:
            for module in fresh.get_submodule(path).modules():
                if isinstance(getattr(module, "bias", None), nn.Parameter) and \
                        module.bias.shape == (vocab,):
                    module.bias = nn.Parameter(bias.clone())
    fresh.save_pretrained(directory)
    _check_merged_mlm(directory, spec, ids, decoder)
    return ids


def _word_classes(clf: PromptClassifier) -> torch.Tensor:
    """The class index of each label word, in `verbalizer.token_ids` order."""
    return torch.repeat_interleave(torch.arange(clf.num_classes),
                                   torch.tensor(clf.verbalizer.words_per_class))


def _word_rows(base: torch.Tensor, trained: torch.Tensor, ids: list[int],
               clf: PromptClassifier) -> torch.Tensor:
    """The rows (or biases) to write for the label words: the trained class rows; with several
    words per class, each word's base row moved by its class's change, so that the mean of a
    class's words is the trained row."""
    trained = trained.detach().cpu()
    if not clf.verbalizer.is_multi_word:
        return trained
    base = base[ids].detach()
    return base + (trained - class_means(base, clf.verbalizer.words_per_class))[_word_classes(clf)]


def _check_merged_mlm(directory: Path, spec, ids: list[int], written: nn.Linear) -> None:
    """Reload with plain transformers: the label-word rows and biases must come back."""
    loaded, _ = load_masked_lm(str(directory))
    decoder = loaded.get_submodule(spec.decoder)
    same = torch.equal(decoder.weight[ids], written.weight[ids])
    if written.bias is not None:
        same = same and decoder.bias is not None and torch.equal(decoder.bias[ids], written.bias[ids])
    if not same:
        raise ExportError(f"the merged model in {directory} reloads with other label-word "
                          "weights than were written (a transformers weight-tying change?)")
