"""The model-folder format: file names, format versions, and reading a folder of either format.

A model folder (format 2) holds ``list_prompt.json`` (everything LiST adds to the base model)
and ``list_weights.safetensors`` (the trainable tensors exactly as list_engine trains them),
plus the PEFT view of the same model (``adapter_config.json`` + ``adapter_model.safetensors``,
and ``list_head.safetensors`` for the similarity head; see list_engine.peft_export).
Format 1 (list_engine up to commit 1c17310) wrote LiST's own schema under PEFT's file names; it
still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 2
PROMPT_NAME = "list_prompt.json"
WEIGHTS_NAME = "list_weights.safetensors"
PEFT_CONFIG_NAME = "adapter_config.json"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
HEAD_NAME = "list_head.safetensors"


class ExportError(OSError):
    """A model folder that cannot be read or written; the message says what to fix."""


@dataclass(frozen=True)
class SavedModel:
    config: dict[str, Any]  # list_prompt.json (or the format-1 adapter_config.json)
    weights: Path  # the trainable state in list_engine's own names
    format_version: int


def read_model_dir(directory: str | Path) -> SavedModel:
    directory = Path(directory)
    prompt_file = directory / PROMPT_NAME
    if prompt_file.is_file():
        config = json.loads(prompt_file.read_text())
        if config.get("library") != "list_engine":
            raise ExportError(f"{prompt_file} is not a list_engine model file (a merged export? "
                              "load merged/ with transformers, see its README)")
        weights = directory / config.get("weights", WEIGHTS_NAME)
        version = int(config.get("format_version", FORMAT_VERSION))
    else:
        legacy = directory / PEFT_CONFIG_NAME
        if not legacy.is_file():
            raise FileNotFoundError(f"{prompt_file} not found: not a list_engine model directory")
        config = json.loads(legacy.read_text())
        if "peft_type" in config:
            raise ExportError(f"{directory} is a PEFT adapter without {PROMPT_NAME}: load it with "
                              "peft (PeftModel.from_pretrained), not list_engine")
        weights, version = directory / PEFT_WEIGHTS_NAME, 1
    if not weights.is_file():
        raise ExportError(f"{weights} is missing: the model folder is incomplete")
    return SavedModel(config, weights, version)

