"""The software and device a model was trained with (stored next to its weights)."""

from __future__ import annotations

import platform

import torch


def environment(device: str | torch.device | None = None) -> dict[str, str | None]:
    """Versions of Python, torch, transformers, peft and list_engine, and the device."""
    import transformers

    from . import __version__

    try:
        import peft

        peft_version = peft.__version__
    except ImportError:  # peft is only needed to write the PEFT view of a model
        peft_version = None
    device = torch.device(device) if device is not None else torch.device("cpu")
    gpu = None
    if device.type == "cuda" and torch.cuda.is_available():
        gpu = torch.cuda.get_device_name(device)
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft_version,
        "list_engine": __version__,
        "device": str(device),
        "gpu": gpu,
        "cuda": torch.version.cuda if gpu else None,
    }
