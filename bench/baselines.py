"""The methods compared by the few-shot benchmark, all on the same backbone and the same split.

Each method is a ``MethodSpec``; ``run_method`` trains it on one split and evaluates it on the
split's test set, returning a flat dict (accuracy, macro-F1, train/predict seconds, parameter
counts, notes). Only the public ``list_engine`` API is used. ``run_method`` is a plain
top-level function so that ``bench.runner.run_isolated`` can call it in a fresh process.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from bench.data import Split
from list_engine.callbacks import Callback


@dataclass(frozen=True)
class MethodSpec:
    name: str
    title: str
    kind: str  # "zero_shot" | "engine" | "full_ft" | "setfit" | "logreg"
    preset: str = "quick"
    config: dict[str, Any] = field(default_factory=dict)  # LiSTConfig fields fixed by the method
    note: str = ""
    head: str = "auto"  # prompt head: auto | mlm | similarity


METHODS: dict[str, MethodSpec] = {
    m.name: m
    for m in [
        MethodSpec("zero_shot", "Zero-shot prompt (no training)", "zero_shot",
                   config={"mode": "prompt"}),
        MethodSpec("zero_shot_mlm", "Zero-shot, MLM head", "zero_shot",
                   config={"mode": "prompt"}, head="mlm"),
        MethodSpec("classic_adapters", "Classic head + adapters", "engine",
                   config={"mode": "classic", "self_training": False}),
        MethodSpec("prompt_adapters", "Prompt + adapters, no self-training", "engine",
                   config={"mode": "prompt", "self_training": False}),
        MethodSpec("full_ft", "Full fine-tuning (classic head, transformers)", "full_ft",
                   note="plain transformers sequence classification, all weights"),
        MethodSpec("list_quick", "LiST (quick preset)", "engine",
                   config={"mode": "prompt", "self_training": True}),
        MethodSpec("list_paper", "LiST (paper preset)", "engine", preset="paper",
                   config={"mode": "prompt", "self_training": True}),
        MethodSpec("list_no_meta", "LiST quick, no meta re-weighting", "engine",
                   config={"mode": "prompt", "self_training": True, "meta_reweighting": False}),
        MethodSpec("list_no_kd", "LiST quick, no KD warm-up", "engine",
                   config={"mode": "prompt", "self_training": True, "kd_warmup": False}),
        MethodSpec("list_mlm_head", "LiST quick, MLM head (the head before the similarity head)",
                   "engine", config={"mode": "prompt", "self_training": True}, head="mlm"),
        MethodSpec("full_prompt", "Full fine-tuning (prompt head, engine mode=full)", "engine",
                   config={"mode": "full", "self_training": False, "teacher_lr": 1e-4}),
        MethodSpec("setfit", "SetFit (same body)", "setfit"),
        MethodSpec("logreg", "LogReg on frozen mean-pooled embeddings", "logreg"),
    ]
}
DEFAULT_METHODS = [m for m in METHODS
                   if m not in ("list_paper", "full_prompt", "zero_shot_mlm", "list_mlm_head")]


@dataclass(frozen=True)
class RunOptions:
    """Knobs shared by all methods of one benchmark run."""

    device: str = "auto"
    overrides: dict[str, Any] = field(default_factory=dict)  # extra LiSTConfig fields
    # SetFit: None = the library's own default (what a SetFit user gets).
    setfit_iterations: int | None = None
    setfit_epochs: int | None = None
    setfit_batch_size: int | None = None
    eval_batch_size: int = 64
    full_ft_lr: float = 1e-4  # classic full fine-tuning (small encoders like a higher lr)
    score_rounds: bool = True  # test accuracy after every round (not in train_s)


def _metrics(gold: list[str], pred: list[str], labels: list[str]) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
    }


def engine_config(spec: MethodSpec, seed: int, options: RunOptions,
                  max_length: int | None = None):
    """The ``LiSTConfig`` of an engine method: preset + the method's fixed fields + overrides
    (+ the benchmark's common ``max_length``, so every method sees the same tokens)."""
    from list_engine import LiSTConfig

    clash = sorted(set(spec.config) & set(options.overrides))
    if clash:
        raise ValueError(f"overrides {clash} would change what method {spec.name!r} is")
    common = {} if max_length is None else {"max_length": max_length}
    return LiSTConfig.preset(spec.preset, **{"seed": seed, "device": options.device, **common,
                                             **options.overrides, **spec.config})


class RoundScorer(Callback):
    """Scores the model on the test set after every round (round 0 = the run's own teacher),
    and keeps the seconds it spends so that they can be taken out of the train time. It only
    looks: nothing is chosen by these scores."""

    def __init__(self, classifier, test) -> None:
        self.classifier, self.test = classifier, test
        self.encoded = None  # the test set, tokenised and through the frozen layers once
        self.accuracy: list[float] = []
        self.seconds = 0.0

    def on_round_end(self, round: int, checkpoint) -> None:  # noqa: A002 - the engine's name
        t0 = time.perf_counter()
        clf = self.classifier
        if self.encoded is None:
            self.encoded = clf.cache_frozen(clf.encode([e.text for e in self.test]))
        probs = clf.predict_encoded(self.encoded)
        pred = [clf.labels[i] for i in np.asarray(probs).argmax(axis=1)]
        self.accuracy.append(_metrics([e.label for e in self.test], pred, clf.labels)["accuracy"])
        self.seconds += time.perf_counter() - t0


def _run_engine(spec: MethodSpec, model: str, template: str, words: dict[str, str],
                split: Split, options: RunOptions, max_length: int | None) -> dict[str, Any]:
    from bench.timing import PhaseTimer
    from list_engine import LiSTTrainer, PromptClassifier

    config = engine_config(spec, split.seed, options, max_length)
    t0 = time.perf_counter()
    clf = PromptClassifier.create(model=model, template=template, verbalizer=words,
                                  mode=config.mode, adapter=config.adapter, head=spec.head,
                                  max_length=config.max_length, device=config.device)
    out: dict[str, Any] = {"load_s": time.perf_counter() - t0,
                           "mlm_head_pretrained": bool(clf.mlm_head_pretrained),
                           "head": clf.head, "config": config.to_dict()}
    trainable, total = clf.parameter_counts()
    if spec.kind == "zero_shot":
        out.update(train_s=0.0, trainable_params=0, total_params=total)
        if clf.head == "mlm" and not clf.mlm_head_pretrained:
            out["note"] = "MLM head not pretrained: prompt logits are noise (meaningless)"
        elif clf.head == "similarity":
            out["note"] = "similarity head: cosine to the label descriptions, no training"
    else:
        timer = PhaseTimer()
        scorer = RoundScorer(clf, split.test) if options.score_rounds else None
        unlabeled = split.unlabeled if config.self_training else []
        t0 = time.perf_counter()  # includes the trainer's tokenisation of the pool
        trainer = LiSTTrainer(clf, config, labeled=split.labeled, unlabeled=unlabeled,
                              callbacks=[timer] + ([scorer] if scorer else []))
        result = trainer.train()
        out["train_s"] = time.perf_counter() - t0 - (scorer.seconds if scorer else 0.0)
        if scorer:
            out["round_accuracy"] = scorer.accuracy
        clf = result.classifier
        out["round_metrics"] = [{k: m.get(k) for k in (
            "round", "selected_lr", "pseudo_label_accuracy", "teacher_label_accuracy",
            "labels_refined", "labels_changed", "n_pseudo_kept")} for m in result.metrics]
        out.update(status=result.status, rounds_completed=result.rounds_completed,
                   trainable_params=trainable, total_params=total, phases=timer.summary(),
                   selected_lr=trainer.selected_lr, used_max_length=clf.max_length)
    t0 = time.perf_counter()
    probs = clf.predict_proba([e.text for e in split.test], batch_size=options.eval_batch_size)
    out["predict_s"] = time.perf_counter() - t0
    pred = [clf.labels[i] for i in np.asarray(probs).argmax(axis=1)]
    out.update(_metrics([e.label for e in split.test], pred, list(words)))
    return out


def _run_setfit(model: str, words: dict[str, str], split: Split, options: RunOptions,
                max_length: int) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    labels = list(words)
    t0 = time.perf_counter()
    setfit_model = SetFitModel.from_pretrained(model)
    setfit_model.model_body.max_seq_length = max_length  # same truncation as the engine
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    setfit_model.to(device)
    load_s = time.perf_counter() - t0
    train = Dataset.from_dict({"text": [e.text for e in split.labeled],
                               "label": [labels.index(e.label) for e in split.labeled]})
    chosen = {"batch_size": options.setfit_batch_size, "num_epochs": options.setfit_epochs,
              "num_iterations": options.setfit_iterations}
    chosen = {k: v for k, v in chosen.items() if v is not None}  # else setfit's defaults
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, seed=split.seed, save_strategy="no", report_to="none",
            show_progress_bar=False, max_length=max_length, **chosen,
        )
        trainer = Trainer(model=setfit_model, args=args, train_dataset=train)
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    pred_ids = setfit_model.predict([e.text for e in split.test],
                                    batch_size=options.eval_batch_size, as_numpy=True)
    predict_s = time.perf_counter() - t0
    pred = [labels[int(i)] for i in pred_ids]
    body = sum(p.numel() for p in setfit_model.model_body.parameters())
    head = setfit_model.model_head
    head_params = int(head.coef_.size + head.intercept_.size) if hasattr(head, "coef_") else 0
    out = {"load_s": load_s, "train_s": train_s, "predict_s": predict_s,
           "trainable_params": body + head_params, "total_params": body + head_params,
           "config": {"num_iterations": args.num_iterations, "num_epochs": args.num_epochs,
                      "batch_size": args.batch_size, "sampling_strategy": args.sampling_strategy,
                      "max_length": max_length}}
    out.update(_metrics([e.label for e in split.test], pred, labels))
    return out


def _run_full_ft(model: str, words: dict[str, str], split: Split, options: RunOptions,
                 steps: int, batch_size: int, max_length: int) -> dict[str, Any]:
    """What a user of plain transformers would do: a sequence-classification head on the
    encoder, every weight trained with AdamW and linear decay, ``steps`` steps of
    ``batch_size`` labelled examples (the same budget as the LiST teacher)."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        get_linear_schedule_with_warmup,
    )

    labels = list(words)
    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(model)
    net = AutoModelForSequenceClassification.from_pretrained(model, num_labels=len(labels))
    net.to(device)
    load_s = time.perf_counter() - t0
    texts = [e.text for e in split.labeled]
    y = torch.tensor([labels.index(e.label) for e in split.labeled])
    opt = torch.optim.AdamW(net.parameters(), lr=options.full_ft_lr, weight_decay=0.0)
    sched = get_linear_schedule_with_warmup(opt, 0, steps)
    gen = torch.Generator().manual_seed(split.seed)
    t0 = time.perf_counter()
    net.train()
    order: list[int] = []
    for _ in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(len(texts), generator=gen).tolist()
        idx, order = order[:batch_size], order[batch_size:]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt").to(device)
        loss = torch.nn.functional.cross_entropy(net(**enc).logits, y[idx].to(device))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
    train_s = time.perf_counter() - t0
    net.eval()
    test = [e.text for e in split.test]
    order_t = sorted(range(len(test)), key=lambda i: len(test[i]))
    pred_ids = np.zeros(len(test), dtype=int)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(order_t), options.eval_batch_size):
            idx = order_t[start:start + options.eval_batch_size]
            enc = tokenizer([test[i] for i in idx], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt").to(device)
            pred_ids[idx] = net(**enc).logits.argmax(-1).cpu().numpy()
    predict_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in net.parameters())
    out = {"load_s": load_s, "train_s": train_s, "predict_s": predict_s,
           "trainable_params": n_params, "total_params": n_params,
           "config": {"lr": options.full_ft_lr, "steps": steps, "batch_size": batch_size,
                      "max_length": max_length}}
    out.update(_metrics([e.label for e in split.test], [labels[i] for i in pred_ids], labels))
    return out


def _run_logreg(model: str, words: dict[str, str], split: Split, options: RunOptions,
                max_length: int) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression

    from list_engine import mean_pooled_embeddings

    labels = list(words)
    t0 = time.perf_counter()
    x_train = mean_pooled_embeddings([e.text for e in split.labeled], model=model,
                                     batch_size=options.eval_batch_size, device=options.device,
                                     max_length=max_length)
    clf = LogisticRegression(max_iter=2000, random_state=split.seed)
    clf.fit(x_train, [e.label for e in split.labeled])
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    x_test = mean_pooled_embeddings([e.text for e in split.test], model=model,
                                    batch_size=options.eval_batch_size, device=options.device,
                                    max_length=max_length)
    pred = list(clf.predict(x_test))
    predict_s = time.perf_counter() - t0
    head = int(clf.coef_.size + clf.intercept_.size)
    out = {"train_s": train_s, "predict_s": predict_s, "trainable_params": head,
           "total_params": None, "config": {"C": clf.C, "embedding": "mean_pooled_embeddings"},
           "note": "train time includes embedding the labelled examples (model loading too)"}
    out.update(_metrics([e.label for e in split.test], pred, labels))
    return out


def run_method(method: str, model: str, template: str, words: dict[str, str], split: Split,
               options: RunOptions, max_length: int = 128) -> dict[str, Any]:
    """Train ``method`` on ``split.labeled`` (+ ``split.unlabeled``) and score it on ``split.test``."""
    import torch

    spec = METHODS[method]
    torch.manual_seed(split.seed)
    if spec.kind in ("zero_shot", "engine"):
        out = _run_engine(spec, model, template, words, split, options, max_length)
    elif spec.kind == "setfit":
        out = _run_setfit(model, words, split, options, max_length)
    elif spec.kind == "logreg":
        out = _run_logreg(model, words, split, options, max_length)
    elif spec.kind == "full_ft":
        quick = engine_config(METHODS["prompt_adapters"], split.seed, options, max_length)
        out = _run_full_ft(model, words, split, options, quick.teacher_steps,
                           quick.labeled_batch_size, max_length)
    else:  # pragma: no cover - METHODS is fixed above
        raise ValueError(f"unknown method kind {spec.kind!r}")
    out.setdefault("note", spec.note)
    out["torch_threads"] = torch.get_num_threads()
    return out
