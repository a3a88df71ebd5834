"""The one device setting (CPU, CUDA, MPS) that model chapters use.

Probing CUDA and MPS needs torch; the probe runs only when it is asked for
(the Device menu opening, a model chapter starting), never at launch.
"""

from __future__ import annotations

from functools import cache

DEVICE_LABELS = {"cpu": "CPU", "cuda": "CUDA (NVIDIA GPU)", "mps": "MPS (Apple GPU)"}


@cache
def available_devices() -> tuple[str, ...]:
    """Devices this machine can run torch on; always starts with "cpu"."""
    try:
        import torch
    except ImportError:
        return ("cpu",)
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return tuple(devices)


def resolve_device(preferred: str) -> str:
    """``preferred`` if it is available here, else "cpu"."""
    return preferred if preferred in available_devices() else "cpu"
