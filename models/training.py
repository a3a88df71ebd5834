"""One training loop for every model: a generator of snapshots that can stop and resume.

The same loop serves the command line (with a progress bar), the application
(in a worker, drawing curves and previews) and the tests::

    trainer = Trainer(model, optimizer, compute_loss, batches)
    for snapshot in trainer.run(steps=500, preview=decode_some):
        print(snapshot.step, snapshot.losses)

Stopping is closing the generator (the worker does it); ``trainer.run()`` again
resumes from ``trainer.step`` with the same model, optimiser and data stream.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

SNAPSHOT_INTERVAL_S = 0.1  # yield at least this often, so the GUI can stop or redraw

Batch = torch.Tensor | tuple[torch.Tensor, ...]  # images, or (images, labels, ...)
LossFunction = Callable[[nn.Module, Batch], dict[str, torch.Tensor]]
PreviewFunction = Callable[[nn.Module], np.ndarray]


@dataclass
class TrainingSnapshot:
    """What a training run shows between steps (plain data, safe to pass between threads)."""

    step: int  # optimisation steps done in total, across resumes
    total_steps: int  # the step this run ends at
    losses: dict[str, float]  # mean of each loss term since the last snapshot
    samples_per_second: float  # over the steps since the last snapshot
    elapsed_s: float  # wall time of this run so far
    preview: np.ndarray | None = None  # e.g. H×W uint8 reconstructions, when asked for
    done: bool = False


@dataclass
class TrainingResult:
    """What a recipe's ``train_*`` function did (the command line reports it)."""

    path: Path  # the .safetensors written
    model: nn.Module  # the weights that were saved
    steps: int  # optimisation steps trained (generator steps for a GAN)
    losses: dict[str, float]  # the last snapshot's losses
    wall_s: float
    cpu_s: float
    interrupted: bool  # stopped by Ctrl+C; what was trained so far was saved
    card: dict[str, Any] = field(default_factory=dict)


class DivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class Trainer:
    """A model, its optimiser, a loss and an endless stream of batches.

    ``compute_loss(model, batch)`` returns a dict of scalar tensors whose
    ``"loss"`` entry is minimised; the other entries are reported (e.g. the
    reconstruction and KL terms of a VAE).
    """

    model: nn.Module
    optimizer: torch.optim.Optimizer
    compute_loss: LossFunction
    batches: Iterator[Batch]
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    step: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)  # per snapshot, for curves
    cpu_seconds: float = 0.0  # process CPU time spent in run(), across resumes

    def run(
        self,
        steps: int,
        preview: PreviewFunction | None = None,
        preview_every_s: float = 0.5,
    ) -> Iterator[TrainingSnapshot]:
        """Train ``steps`` more steps, yielding a snapshot at least every ~100 ms.

        Raises ``DivergedError`` when a loss is NaN or infinite (the weights
        of the last good step are kept).
        """
        end = self.step + steps
        start = last = time.perf_counter()
        cpu_start = time.process_time()
        last_preview = -float("inf")
        sums: dict[str, float] = {}
        samples = count = 0
        self.model.train()
        try:
            while self.step < end:
                batch = _to_device(next(self.batches), self.device)
                losses = self.compute_loss(self.model, batch)
                loss = losses["loss"]
                if not torch.isfinite(loss):
                    raise DivergedError(f"the loss became {loss.item()} at step {self.step + 1}")
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                self.step += 1
                samples += _batch_size(batch)
                count += 1
                for name, value in losses.items():
                    sums[name] = sums.get(name, 0.0) + float(value.detach())

                now = time.perf_counter()
                if now - last >= SNAPSHOT_INTERVAL_S or self.step == end:
                    means = {name: total / count for name, total in sums.items()}
                    for name, value in means.items():
                        self.history.setdefault(name, []).append(value)
                    image = None
                    if preview is not None and (now - last_preview >= preview_every_s or self.step == end):
                        image = self._preview(preview)
                        last_preview = now
                    yield TrainingSnapshot(
                        step=self.step,
                        total_steps=end,
                        losses=means,
                        samples_per_second=samples / max(now - last, 1e-9),
                        elapsed_s=now - start,
                        preview=image,
                        done=self.step == end,
                    )
                    last, sums, samples, count = time.perf_counter(), {}, 0, 0
        finally:
            self.cpu_seconds += time.process_time() - cpu_start
            self.model.eval()

    def _preview(self, preview: PreviewFunction) -> np.ndarray:
        self.model.eval()
        with torch.inference_mode():
            image = preview(self.model)
        self.model.train()
        return np.ascontiguousarray(image)


def train_steps(
    trainer: Trainer, steps: int, on_snapshot: Callable[[TrainingSnapshot], None] | None = None
) -> tuple[dict[str, float], float, bool]:
    """A recipe's run: ``steps`` steps, each snapshot passed on; Ctrl+C stops cleanly.

    Returns the last snapshot's losses, the wall seconds and whether Ctrl+C stopped it
    (re-raised when not even one step was trained: there is nothing to save).
    """
    start, losses, interrupted = time.perf_counter(), {}, False
    try:
        for snapshot in trainer.run(steps):
            losses = snapshot.losses
            if on_snapshot is not None:
                on_snapshot(snapshot)
    except KeyboardInterrupt:
        if trainer.step == 0:
            raise
        interrupted = True
    return losses, time.perf_counter() - start, interrupted


def endless_batches(*tensors: torch.Tensor, batch_size: int, seed: int = 0) -> Iterator[Batch]:
    """Shuffled mini-batches forever, epoch after epoch, deterministic by seed.

    One tensor gives tensor batches; several (images, labels) give tuples.
    """
    size = len(tensors[0])
    if batch_size > size:
        raise ValueError(f"batch size {batch_size} is larger than the data ({size} samples)")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(size, generator=generator)
        for begin in range(0, size - batch_size + 1, batch_size):
            index = order[begin : begin + batch_size]
            parts = tuple(tensor[index] for tensor in tensors)
            yield parts[0] if len(parts) == 1 else parts


def _to_device(batch: Batch, device: torch.device) -> Batch:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    return tuple(part.to(device, non_blocking=True) for part in batch)


def _batch_size(batch: Batch) -> int:
    return len(batch) if isinstance(batch, torch.Tensor) else len(batch[0])
