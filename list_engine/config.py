"""Configuration dataclasses: every knob the reference code hard-codes, validated up front.

`LiSTConfig.preset("paper")` reproduces the reference defaults (LIST_REFERENCE.md section 3);
`LiSTConfig.preset("quick")` is tuned for ~30 labels + ~2,000 unlabelled texts in a few
minutes on 2 CPU cores with the packaged MiniLM (whose MLM head starts untrained, hence the
much larger learning rates).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

MODES = ("prompt", "classic", "full")
META_METHODS = ("central", "forward", "jvp")
ZERO_WEIGHT_POLICIES = ("skip", "uniform")
STUDENT_INITS = ("fresh", "teacher")
LABEL_INITS = ("words", "auto")
BEST_ROUND_METRICS = ("accuracy", "macro_f1")
_DEVICE_RE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


MAX_STEPS = 1_000_000  # per phase: far beyond any useful run, far below "runs for a year"
MAX_ROUNDS = 100
MAX_LR = 1.0


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@dataclass
class AdapterConfig:
    """The LiST adapter: h <- h + W_up(W_down(h)), no bias, no nonlinearity."""

    bottleneck: int | None = field(
        default=None, metadata={"help": "adapter width; None -> round(hidden / 6)"}
    )
    init_std: float = field(
        default=2e-4, metadata={"help": "std of the N(0, std) init of both adapter matrices"}
    )
    layers: int | None = field(
        default=None, metadata={"help": "adapters in the top N transformer layers only; the "
                                "frozen layers below are then computed once per document and "
                                "cached during training. None = every layer"})

    def __post_init__(self) -> None:
        _check(
            self.bottleneck is None or (isinstance(self.bottleneck, int) and self.bottleneck >= 1),
            f"adapter.bottleneck must be a positive int or None, got {self.bottleneck!r}",
        )
        _check(self.layers is None or (isinstance(self.layers, int)
                                       and not isinstance(self.layers, bool) and self.layers >= 1),
               f"adapter.layers must be a positive int or None (every layer), got {self.layers!r}")
        _check(self.init_std >= 0, f"adapter.init_std must be >= 0, got {self.init_std!r}")

    def resolved_bottleneck(self, hidden_size: int) -> int:
        return self.bottleneck if self.bottleneck is not None else max(1, round(hidden_size / 6))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AdapterConfig:
        return cls(**_known_fields(cls, data or {}))


def _known_fields(cls, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        logger.warning("%s: ignoring unknown config keys %s", cls.__name__, unknown)
    return {k: v for k, v in data.items() if k in names}


@dataclass
class LiSTConfig:
    """All settings of a LiST run (teacher prompt-tuning + self-training rounds)."""

    mode: str = field(default="prompt", metadata={"help": "prompt | classic | full"})
    max_length: int | None = field(
        default=128, metadata={"help": "max tokens per input; None = from the documents (95th "
                               "percentile of token counts, capped by the model)"})
    labeled_batch_size: int = field(default=4, metadata={"help": "batch of labelled examples"})
    unlabeled_batch_size: int = field(default=16, metadata={"help": "batch of pseudo-labelled"})
    meta_batch_size: int = field(default=4, metadata={"help": "labelled batch of the meta step"})
    teacher_steps: int = field(default=400, metadata={"help": "teacher prompt-tuning steps"})
    teacher_lr: float = field(default=5e-6, metadata={"help": "teacher learning rate"})
    lr_candidates: tuple[float, ...] | None = field(
        default=None, metadata={"help": "learning rates to choose from by 2-fold "
                                "cross-validation on the labelled examples (the winner is used "
                                "for the teacher and the students); None = teacher_lr and "
                                "student_lr as given"})
    student_lr: float = field(default=1e-4, metadata={"help": "student learning rate"})
    rounds: int = field(default=6, metadata={"help": "self-training rounds"})
    unlabeled_sample_size: int | None = field(
        default=None, metadata={"help": "unlabelled texts used: one random sample of the pool, "
                                "pseudo-labelled in every round; None = all"}
    )
    unlabeled_steps: int = field(default=1000, metadata={"help": "student steps on pseudo-labels"})
    kd_warmup_fraction: float = field(
        default=0.6, metadata={"help": "share of unlabelled steps with uniform weights"}
    )
    labeled_steps: int = field(default=400, metadata={"help": "student steps on the labels"})
    meta_reweighting: bool = field(default=True, metadata={"help": "meta re-weight pseudo-labels"})
    kd_warmup: bool = field(default=True, metadata={"help": "uniform-weight KD warm-up first"})
    confidence_threshold: float | None = field(
        default=None, metadata={"help": "drop pseudo-labels with max prob below this"}
    )
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    grad_clip: float | None = field(default=1.0, metadata={"help": "max grad norm; None = off"})
    adam_betas: tuple[float, float] = field(default=(0.9, 0.999), metadata={"help": "AdamW betas"})
    adam_eps: float = field(default=1e-8, metadata={"help": "AdamW eps"})
    seed: int = field(default=42, metadata={"help": "seed of everything random"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    bf16: bool = field(default=False, metadata={"help": "bf16 autocast on CUDA"})
    eval_batch_size: int = field(default=64, metadata={"help": "batch size of inference"})
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    self_training: bool = field(default=True, metadata={"help": "False = teacher only"})
    keep_best_round: bool = field(
        default=True, metadata={"help": "with an evaluation set: end on the round that scored "
                                "best on it (ties: the later round) when it beats the last "
                                "round beyond the set's noise (paired bootstrap, 95 %), "
                                "else the last"})
    best_round_metric: str = field(
        default="accuracy", metadata={"help": "what 'best' means for keep_best_round: "
                                      "accuracy | macro_f1 (classes weigh alike)"})
    # Additions to the contract (all optional).
    meta_method: str = field(
        default="central",
        metadata={"help": "directional derivative: central | forward difference | jvp"},
    )
    meta_fd_eps: float = field(
        default=1e-2, metadata={"help": "finite-difference step length in parameter space"}
    )
    zero_weight_policy: str = field(
        default="skip",
        metadata={"help": "meta batch with all weights 0: skip the update | uniform weights"},
    )
    kd_temperature: float = field(default=1.0, metadata={"help": "softmax temperature of KD"})
    # What a round does to beat its teacher (list_engine.pseudo_labels); the defaults are the
    # paper's plain self-distillation.
    student_init: str = field(
        default="fresh", metadata={"help": "the student starts from fresh adapters and head "
                                   "(fresh, the paper) or continues from its teacher (teacher)"})
    student_lr_scale: float = field(
        default=1.0, metadata={"help": "the students' learning rate is the teacher's (chosen "
                               "or given) times this: a student learns from many more, noisier "
                               "examples than its teacher"})
    neighbour_weight: float = field(
        default=0.0, metadata={"help": "share of a pseudo-label taken from its nearest "
                               "neighbours in the frozen encoder's embedding space (0 = off)"})
    neighbours: int = field(default=10, metadata={"help": "neighbours per document"})
    pseudo_label_temperature: float = field(
        default=1.0, metadata={"help": "sharpening of pseudo-labels: p^(1/T); < 1 sharper"})
    balanced_fraction: float | None = field(
        default=None, metadata={"help": "per predicted class keep the most confident "
                                "fraction * N / C pseudo-labels (None = keep all)"})
    token_drop: float = field(
        default=0.0, metadata={"help": "student input noise: share of each pseudo-labelled "
                               "document's tokens hidden from the student (0 = none)"})
    label_init: str = field(
        default="words", metadata={"help": "similarity head: the classes start from their "
                                   "label words (words) or, when the words sort the labelled "
                                   "examples no better than chance and the examples' class "
                                   "means clearly do better, from the means (auto; "
                                   "list_engine.label_prior)"})

    def __post_init__(self) -> None:
        if isinstance(self.adapter, dict):
            self.adapter = AdapterConfig.from_dict(self.adapter)
        self.adam_betas = tuple(float(b) for b in self.adam_betas)  # type: ignore[assignment]
        if self.lr_candidates is not None:
            _check(isinstance(self.lr_candidates, list | tuple) and len(self.lr_candidates) >= 1
                   and all(_finite(x) and 0 < x <= MAX_LR for x in self.lr_candidates),
                   f"lr_candidates must be finite numbers in (0, {MAX_LR}] or None, got "
                   f"{self.lr_candidates!r}")
            self.lr_candidates = tuple(sorted(float(x) for x in self.lr_candidates))
        _check(self.mode in MODES, f"mode must be one of {MODES}, got {self.mode!r}")
        for name in ("labeled_batch_size", "unlabeled_batch_size",
                     "meta_batch_size", "eval_batch_size"):
            value = getattr(self, name)
            _check(isinstance(value, int) and value >= 1, f"{name} must be an int >= 1, got {value!r}")
        _check(self.max_length is None or (isinstance(self.max_length, int)
                                           and self.max_length >= 8),
               f"max_length must be an int >= 8 or None (auto), got {self.max_length!r}")
        for name, top in (("teacher_steps", MAX_STEPS), ("unlabeled_steps", MAX_STEPS),
                          ("labeled_steps", MAX_STEPS), ("rounds", MAX_ROUNDS)):
            value = getattr(self, name)
            _check(isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top,
                   f"{name} must be an int from 0 to {top:,}, got {value!r}")
        for name in ("teacher_lr", "student_lr", "adam_eps", "meta_fd_eps", "kd_temperature"):
            value = getattr(self, name)
            _check(_finite(value) and value > 0, f"{name} must be a finite number > 0, got {value!r}")
        _check(self.teacher_lr <= MAX_LR and self.student_lr <= MAX_LR,
               f"learning rates above {MAX_LR} only diverge; got teacher_lr={self.teacher_lr!r}, "
               f"student_lr={self.student_lr!r}")
        _check(_finite(self.weight_decay) and self.weight_decay >= 0,
               f"weight_decay must be a finite number >= 0, got {self.weight_decay!r}")
        _check(self.grad_clip is None or (_finite(self.grad_clip) and self.grad_clip > 0),
               f"grad_clip must be a finite number > 0 or None, got {self.grad_clip!r}")
        _check(isinstance(self.seed, int) and not isinstance(self.seed, bool)
               and 0 <= self.seed < 2**32,
               f"seed must be an int from 0 to 2**32 - 1, got {self.seed!r}")
        _check(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
               f"adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}")
        _check(0.0 <= self.kd_warmup_fraction <= 1.0,
               f"kd_warmup_fraction must be in [0, 1], got {self.kd_warmup_fraction}")
        _check(self.unlabeled_sample_size is None or self.unlabeled_sample_size >= 1,
               f"unlabeled_sample_size must be >= 1 or None, got {self.unlabeled_sample_size!r}")
        _check(self.confidence_threshold is None or 0.0 < self.confidence_threshold < 1.0,
               f"confidence_threshold must be in (0, 1) or None, got {self.confidence_threshold!r}")
        _check(bool(_DEVICE_RE.match(str(self.device))),
               f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        _check(self.meta_method in META_METHODS,
               f"meta_method must be one of {META_METHODS}, got {self.meta_method!r}")
        _check(self.best_round_metric in BEST_ROUND_METRICS,
               f"best_round_metric must be one of {BEST_ROUND_METRICS}, "
               f"got {self.best_round_metric!r}")
        _check(self.label_init in LABEL_INITS,
               f"label_init must be one of {LABEL_INITS}, got {self.label_init!r}")
        _check(self.student_init in STUDENT_INITS,
               f"student_init must be one of {STUDENT_INITS}, got {self.student_init!r}")
        _check(_finite(self.student_lr_scale) and 0.01 <= self.student_lr_scale <= 100,
               f"student_lr_scale must be in [0.01, 100], got {self.student_lr_scale!r}")
        _check(_finite(self.neighbour_weight) and 0.0 <= self.neighbour_weight <= 1.0,
               f"neighbour_weight must be in [0, 1], got {self.neighbour_weight!r}")
        _check(isinstance(self.neighbours, int) and not isinstance(self.neighbours, bool)
               and 1 <= self.neighbours <= 1000,
               f"neighbours must be an int from 1 to 1000, got {self.neighbours!r}")
        _check(_finite(self.pseudo_label_temperature) and 0.05 <= self.pseudo_label_temperature
               <= 10, "pseudo_label_temperature must be in [0.05, 10], got "
               f"{self.pseudo_label_temperature!r}")
        _check(self.balanced_fraction is None or (_finite(self.balanced_fraction)
                                                  and 0.0 < self.balanced_fraction <= 1.0),
               f"balanced_fraction must be in (0, 1] or None, got {self.balanced_fraction!r}")
        _check(_finite(self.token_drop) and 0.0 <= self.token_drop < 1.0,
               f"token_drop must be in [0, 1), got {self.token_drop!r}")
        _check(self.zero_weight_policy in ZERO_WEIGHT_POLICIES,
               f"zero_weight_policy must be one of {ZERO_WEIGHT_POLICIES}, "
               f"got {self.zero_weight_policy!r}")

    # -- derived ----------------------------------------------------------------------------
    @property
    def kd_steps(self) -> int:
        """Unlabelled steps with uniform weights (all of them without meta re-weighting)."""
        if not self.meta_reweighting:
            return self.unlabeled_steps
        if not self.kd_warmup:
            return 0
        return int(round(self.kd_warmup_fraction * self.unlabeled_steps))

    @property
    def active_rounds(self) -> int:
        return self.rounds if self.self_training else 0

    @property
    def fold_steps(self) -> int:
        """Steps of one cross-validation fold: a fold trains on half the labels, so half the
        teacher's steps make the same number of passes over its data."""
        return math.ceil(self.teacher_steps / 2)

    @property
    def selection_steps(self) -> int:
        """Steps of the learning-rate cross-validation (2 folds per candidate)."""
        if not self.lr_candidates or len(self.lr_candidates) < 2:
            return 0
        return 2 * len(self.lr_candidates) * self.fold_steps

    @property
    def total_steps(self) -> int:
        per_round = self.unlabeled_steps + self.labeled_steps
        return self.selection_steps + self.teacher_steps + self.active_rounds * per_round

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["adam_betas"] = list(self.adam_betas)
        if self.lr_candidates is not None:
            data["lr_candidates"] = list(self.lr_candidates)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LiSTConfig:
        return cls(**_known_fields(cls, dict(data)))

    def replace(self, **overrides: Any) -> LiSTConfig:
        return LiSTConfig.from_dict({**self.to_dict(), **overrides})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> LiSTConfig:
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        data = {**PRESETS[name], **overrides}
        if isinstance(data.get("adapter"), AdapterConfig):
            data["adapter"] = data["adapter"].to_dict()
        return cls.from_dict(data)


PRESETS: dict[str, dict[str, Any]] = {
    # The reference code's defaults (microsoft/LiST, LM-BFF): RoBERTa-large on a GPU.
    "paper": dict(
        teacher_steps=400, teacher_lr=5e-6, rounds=6, unlabeled_steps=1000,
        kd_warmup_fraction=0.6, labeled_steps=400, student_lr=1e-4, labeled_batch_size=4,
        unlabeled_batch_size=16, meta_batch_size=4, max_length=128, grad_clip=1.0,
        weight_decay=0.0, unlabeled_sample_size=None,
    ),
    # A few minutes on 2 CPU cores (30 labels, ~2,000 unlabelled, the packaged MiniLM and its
    # similarity head). Chosen on development splits of MR and BBC (bench/tune.py,
    # bench/results/NOTES.md): the best learning rate differs by data set (MR 1e-4, BBC 1e-3),
    # so it is chosen per run by cross-validation on the labels; max_length follows the
    # documents; one sample of 1,000 unlabelled documents serves every round.
    # Adapters in the top layer only: the five layers below are computed once per document,
    # so every phase pays one layer (bench/results/NOTES.md, 2026-12-08: the teacher is as
    # good as with adapters everywhere). Each round's student continues from its teacher on
    # refined pseudo-labels (neighbour agreement, sharpened, class-balanced top half) with
    # token-drop noise: on BBC that is what made the rounds add accuracy. Label words that
    # sort the labels no better than chance give way to the labels' class means.
    "quick": dict(
        teacher_steps=100, teacher_lr=3e-4, rounds=2, unlabeled_steps=120,
        kd_warmup_fraction=0.6, labeled_steps=40, student_lr=3e-4, labeled_batch_size=8,
        unlabeled_batch_size=16, meta_batch_size=4, max_length=None, grad_clip=1.0,
        weight_decay=0.0, unlabeled_sample_size=1000, lr_candidates=(1e-4, 3e-4, 1e-3),
        adapter={"layers": 1}, student_init="teacher", neighbour_weight=0.5, neighbours=10,
        pseudo_label_temperature=0.5, balanced_fraction=0.5, token_drop=0.1,
        label_init="auto",
    ),
}
