"""Which device torch runs on, and how many CPU threads it may use."""

from __future__ import annotations

import os
from functools import cache

import torch


@cache
def available_devices() -> tuple[str, ...]:
    """Devices this machine can run torch on; always starts with "cpu"."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return tuple(devices)


def pick_device(name: str | None = None) -> torch.device:
    """``name`` ("cpu", "cuda", "mps") if available here, else the CPU; None picks the best one."""
    devices = available_devices()
    if name is None:
        name = devices[-1]
    if name not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {name!r} (choose from cpu, cuda, mps)")
    return torch.device(name if name in devices else "cpu")


def cpu_cores() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def set_torch_threads(leave_for_gui: int = 0) -> int:
    """Use every core but ``leave_for_gui`` (at least one thread); returns the count."""
    threads = max(1, cpu_cores() - leave_for_gui)
    torch.set_num_threads(threads)
    return threads
