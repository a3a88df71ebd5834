"""Faster U-Net calls while sampling on a CPU: a frozen graph, run on slices of the batch in parallel.

A sampling step calls the U-Net on a small batch (16 digits, 32 with guidance).
Its ~100 small operations are too small for torch's intra-op threads to share
well: on 2 cores, 2 threads do little better than 1. Instead, :func:`batch_parallel`

1. traces the module once into a frozen TorchScript graph (weights folded in,
   and run without the Python interpreter, so without holding the GIL), and
2. cuts every batch into one slice per thread, each slice run by its own worker
   thread with a single intra-op thread, and joins the results.

The outputs are those of the module itself (each image's result does not depend on
the others in the batch). The graph is traced again when the weights change (each
in-place update bumps a parameter's ``_version``), so a model being trained can be
sampled from. On other devices, with one thread, or when tracing fails, the module
is simply called.

    with batch_parallel(model.unet) as unet:
        eps = unet(x, t, labels, None)  # == model.unet(x, t, labels, None)
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import torch
from torch import nn

_graphs: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()
_graphs_lock = threading.Lock()


class _TensorsOnly(nn.Module):
    """``module(*args)`` where some arguments are None: tracing takes tensors only."""

    def __init__(self, module: nn.Module, present: tuple[bool, ...]) -> None:
        super().__init__()
        self.module = module
        self.present = present

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        given = iter(tensors)
        return self.module(*(next(given) if here else None for here in self.present))


def _weights_version(module: nn.Module) -> tuple[int, ...]:
    # Inference tensors (weights made under inference_mode) keep no version counter; they
    # can only change under inference_mode, which nothing here does to weights.
    return tuple(-1 if t.is_inference() else t._version for t in (*module.parameters(), *module.buffers()))


def frozen_graph(module: nn.Module, args: tuple[torch.Tensor | None, ...]) -> torch.jit.ScriptModule | None:
    """``module`` traced on ``args`` and frozen (cached until its weights change); None if it cannot be."""
    if module.training:  # freezing needs eval mode; changing the caller's mode is not ours to do
        return None
    present = tuple(a is not None for a in args)
    version = _weights_version(module)
    with _graphs_lock:
        cached = _graphs.setdefault(module, {}).get(present)
        if cached is not None and cached[0] == version:
            return cached[1]
        tensors = tuple(a[:1] for a in args if a is not None)  # the graph works for any batch size
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the tracer's notes on constants are expected here
                traced = torch.jit.trace(_TensorsOnly(module, present).eval(), tensors, check_trace=False)
                graph = torch.jit.freeze(traced)
        except Exception:  # noqa: BLE001 - any module torch cannot trace is still called as it is
            graph = None
        _graphs[module][present] = (version, graph)
        return graph


def _one_intra_op_thread(ready: threading.Barrier) -> None:
    torch.get_num_threads()  # torch sets a new thread's count on its first use: do that first
    torch.set_num_threads(1)
    ready.wait()


@contextmanager
def batch_parallel(module: nn.Module, threads: int | None = None) -> Iterator[Callable[..., torch.Tensor]]:
    """Yields ``call(*args)``, equal to ``module(*args)`` in eval mode without gradients, but faster on a CPU.

    ``args`` are tensors whose first dimension is the batch, or None. ``threads``
    defaults to torch's intra-op thread count; the worker threads end with the block.
    """
    threads = threads or torch.get_num_threads()
    on_cpu = all(p.device.type == "cpu" for p in module.parameters())
    if threads < 2 or not on_cpu:
        yield _graph_call(module)
        return
    saved = torch.get_num_threads()
    ready = threading.Barrier(threads + 1)
    pool = ThreadPoolExecutor(threads, thread_name_prefix="unet-slice")
    try:
        for _ in range(threads):  # the barrier makes each task start its own worker
            pool.submit(_one_intra_op_thread, ready)
        ready.wait()
        torch.set_num_threads(saved)  # set_num_threads is global: give this thread its count back

        def call(*args: torch.Tensor | None) -> torch.Tensor:
            graph = frozen_graph(module, args)
            batch = next(a for a in args if a is not None).shape[0]
            if graph is None or batch < 2:
                return _graph_call(module)(*args)
            parts = [a.tensor_split(threads) for a in args if a is not None]  # each argument in `threads` slices
            slices = [s for s in zip(*parts) if s[0].shape[0]]  # (x, t, …) of each slice; none empty
            return torch.cat(list(pool.map(lambda s: _run(graph, s), slices)))

        yield call
    finally:
        pool.shutdown(wait=True)


def _run(graph: torch.jit.ScriptModule, args: tuple[torch.Tensor, ...]) -> torch.Tensor:
    with torch.inference_mode():  # inference mode is per thread
        return graph(*args)


def _graph_call(module: nn.Module) -> Callable[..., torch.Tensor]:
    """One call of the frozen graph (or of the module) on the whole batch."""

    def call(*args: torch.Tensor | None) -> torch.Tensor:
        graph = frozen_graph(module, args) if all(p.device.type == "cpu" for p in module.parameters()) else None
        return module(*args) if graph is None else graph(*(a for a in args if a is not None))

    return call
