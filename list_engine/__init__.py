"""list_engine: LiST (Lite Prompted Self-Training) few-shot text classification.

Public API: see list_engine/README.md. The engine knows nothing of databases or UIs.
"""

from __future__ import annotations

__version__ = "0.2.0"  # 0.2: model folders in PEFT's format + list_prompt.json

from .callbacks import Callback, PseudoLabelEvent, StepEvent, TqdmCallback, TrainResult
from .config import PRESETS, AdapterConfig, LiSTConfig
from .prompts import (
    TASK_PRESETS,
    Example,
    PromptError,
    RenderedPrompt,
    TaskPreset,
    Template,
    Verbalizer,
    render_prompt,
    validate_prompt,
)

__all__ = [
    "__version__",
    "Example", "Template", "Verbalizer", "PromptError", "RenderedPrompt", "TaskPreset",
    "TASK_PRESETS", "validate_prompt", "render_prompt",
    "AdapterConfig", "LiSTConfig", "PRESETS",
    "PromptClassifier", "ModelLoadError", "resolve_model_path", "resolve_device", "load_tokenizer",
    "mean_pooled_embeddings",
    "Callback", "StepEvent", "PseudoLabelEvent", "TrainResult", "TqdmCallback",
    "LiSTTrainer",
]


# Imported on first use, so that `import list_engine` (and `list_engine.reading`, which the
# app's import page uses) stays light: these modules import torch.
_LAZY = {
    "LiSTTrainer": "self_training",
    "ModelLoadError": "loading", "PromptClassifier": "modeling", "load_tokenizer": "loading",
    "mean_pooled_embeddings": "modeling", "resolve_device": "modeling",
    "resolve_model_path": "loading",
}


def __getattr__(name: str):
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'list_engine' has no attribute {name!r}")
