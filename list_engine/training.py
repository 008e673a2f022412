"""Supervised building blocks: losses, batch streams, optimizer + schedule, one step."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from .config import LiSTConfig


def _upcast(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def kd_loss_per_example(student_logits: torch.Tensor, teacher_probs: torch.Tensor,
                        temperature: float = 1.0) -> torch.Tensor:
    """KL(p_teacher || p_student) per example: (B, C), (B, C) -> (B,)."""
    if temperature != 1.0:
        teacher_probs = torch.softmax(torch.log(teacher_probs.clamp_min(1e-12)) / temperature, -1)
    log_student = F.log_softmax(_upcast(student_logits) / temperature, dim=-1)
    log_teacher = torch.log(teacher_probs.clamp_min(1e-12))
    return (teacher_probs * (log_teacher - log_student)).sum(-1)


def ce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(_upcast(logits), labels)


class BatchStream:
    """Endless batches of indices 0..n-1: a fresh permutation per epoch, from `rng`.

    With `lengths`, batches are length-bucketed: every `BUCKET` batches' worth of the
    permutation is sorted by length before it is cut, and those batches are served in random
    order, so a batch pads to a length near its own documents' instead of the longest of a
    random draw (the same documents per epoch, less padding to pay for)."""

    BUCKET = 8

    def __init__(self, n: int, batch_size: int, rng: np.random.Generator,
                 lengths: list[int] | None = None):
        if n <= 0:
            raise ValueError("cannot draw batches from an empty set")
        self.n, self.batch_size, self.rng = n, batch_size, rng
        self.lengths = lengths
        self.buffer: list[int] = []

    def _refill(self) -> None:
        order = self.rng.permutation(self.n).tolist()
        if self.lengths is None:
            self.buffer.extend(order)
            return
        size = self.batch_size * self.BUCKET
        for start in range(0, len(order), size):
            chunk = sorted(order[start : start + size], key=lambda i: self.lengths[i])
            batches = [chunk[i : i + self.batch_size] for i in range(0, len(chunk),
                                                                     self.batch_size)]
            for j in self.rng.permutation(len(batches)):
                self.buffer.extend(batches[j])

    def next(self) -> list[int]:
        while len(self.buffer) < self.batch_size:
            self._refill()
        batch, self.buffer = self.buffer[: self.batch_size], self.buffer[self.batch_size :]
        return batch


def make_optimizer(params: list[torch.nn.Parameter], lr: float, total_steps: int,
                   config: LiSTConfig):
    """AdamW + linear decay to 0 over `total_steps`, no warm-up (the reference schedule)."""
    optimizer = torch.optim.AdamW(params, lr=lr, betas=tuple(config.adam_betas),
                                  eps=config.adam_eps, weight_decay=config.weight_decay)
    total = max(1, total_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / total))
    return optimizer, scheduler


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite: the run diverged (usually a learning rate too high)."""


@dataclass
class Stepper:
    """Backward + clip + step + schedule for one optimizer."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    params: list[torch.nn.Parameter]
    grad_clip: float | None

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def step(self, loss: torch.Tensor | None) -> float:
        """Apply one update from `loss` (None: no update, the schedule still advances)."""
        lr = self.lr
        if loss is not None and not torch.isfinite(loss.detach()).all():
            raise NonFiniteLossError(
                f"training diverged: the loss became {loss.detach().float().item()} at learning "
                f"rate {lr:g}. Lower the learning rate (or let the preset choose it) and start "
                "again; nothing of this run's model is kept")
        if loss is not None:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
        else:  # keep the schedule on time; torch warns when no optimizer step came first
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                self.scheduler.step()
        return lr
