"""The one device setting (CPU, CUDA, MPS) that model chapters use.

Probing CUDA and MPS needs torch, so ``models.device`` is imported only when
asked (the Device menu opening, a model chapter starting), never at launch.
"""

from __future__ import annotations

DEVICE_LABELS = {"cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)", "mps": "MPS (Apple GPU)"}


def available_devices() -> tuple[str, ...]:
    """Devices this machine can run torch on; always starts with "cpu"."""
    try:
        from models.device import available_devices as probe
    except ImportError:  # torch missing: the torch-free chapters still work
        return ("cpu",)
    return probe()
