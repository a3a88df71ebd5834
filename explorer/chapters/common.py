"""Helpers every model chapter uses: view jobs, image mosaics, settings and torch threads."""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import QSettings

from explorer.workers import LatestOnly, WorkerPool


class ViewJob(LatestOnly):
    """A view's recomputation: in a worker, newest request wins (``LatestOnly``).

    While ``immediate`` is set, ``submit`` computes on the spot instead, so that
    the views are complete when the chapter is first shown (and in screenshots).
    """

    def __init__(self, pool: WorkerPool, on_result: Any, name: str = "") -> None:
        super().__init__(pool, on_result, name=name)
        self._show = on_result
        self.immediate = False

    def submit(self, function: Any, *args: Any, **kwargs: Any) -> None:
        if not self.immediate:
            super().submit(function, *args, **kwargs)
            return
        self.cancel()  # anything still running is older
        try:
            result = function(*args, **kwargs)
        except Exception:  # noqa: BLE001 (reported by the worker pool, as any view error)
            super().submit(function, *args, **kwargs)
            return
        self._show(result)


def tile(images: np.ndarray, columns: int, gap: int = 0, fill: int = 0) -> np.ndarray:
    """uint8 (N, h, w) images as one mosaic in reading order, ``columns`` wide, ``gap`` pixels apart."""
    count, height, width = images.shape
    rows = max(1, math.ceil(count / columns))
    mosaic = np.full((rows * (height + gap) - gap, columns * (width + gap) - gap), fill, dtype=np.uint8)
    for i, image in enumerate(images):
        row, column = divmod(i, columns)
        top, left = row * (height + gap), column * (width + gap)
        mosaic[top : top + height, left : left + width] = image
    return mosaic


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """A uint8 (h, w) grey image as (h·factor, w·factor, 3) RGB with square pixels, for export."""
    big = np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
    return np.ascontiguousarray(np.stack([big] * 3, axis=-1))


def read_setting(settings: QSettings, key: str, kind: Any, valid: Any = lambda _: True) -> Any:
    """``kind(settings.value(key))`` when that works and is ``valid``, else None."""
    try:
        value = kind(settings.value(key))
    except (TypeError, ValueError):
        return None  # missing or malformed
    return value if valid(value) else None


def as_bool(value: Any) -> bool:
    """A QSettings boolean: True/False, or "true"/"false" from an INI file."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise ValueError(value)


# ---------------------------------------------------------------------- model calls (worker threads)
_thread = threading.local()


def torch_threads_here() -> None:
    """Give the calling thread the torch thread count the chapter set (once per thread).

    ``torch.set_num_threads`` reaches only the thread that calls it: a worker thread's
    OpenMP team keeps the default size (every core), and on a busy 2-core machine a
    one-code decode then took ~150 ms instead of ~2 ms, and training took the GUI's core.
    """
    if getattr(_thread, "torch_threads", False):
        return
    import torch

    torch.set_num_threads(torch.get_num_threads())  # the process-wide count, applied to this thread
    _thread.torch_threads = True


def in_worker(function: Callable) -> Callable:
    """Decorate a model call that runs in worker threads (see :func:`torch_threads_here`)."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        torch_threads_here()
        return function(*args, **kwargs)

    return run
