"""list_engine: LiST (Lite Prompted Self-Training) few-shot text classification.

Public API: see list_engine/README.md. The engine knows nothing of databases or UIs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .callbacks import Callback, PseudoLabelEvent, StepEvent, TqdmCallback, TrainResult
from .config import PRESETS, AdapterConfig, LiSTConfig
from .modeling import (
    ModelLoadError,
    PromptClassifier,
    load_tokenizer,
    mean_pooled_embeddings,
    resolve_device,
    resolve_model_path,
)
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


def __getattr__(name: str):
    # LiSTTrainer is imported lazily so that `import list_engine` stays light.
    if name == "LiSTTrainer":
        from .self_training import LiSTTrainer

        return LiSTTrainer
    raise AttributeError(f"module 'list_engine' has no attribute {name!r}")
