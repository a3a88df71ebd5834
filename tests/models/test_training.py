"""The training loop: losses fall, snapshots come often, stop and resume, divergence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from models.training import DivergedError, Trainer, endless_batches


def regression_data() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x = torch.randn(256, 3)
    return x, x @ torch.tensor([[1.0], [-2.0], [0.5]])


def regression_trainer(lr: float = 0.05) -> Trainer:
    x, y = regression_data()
    model = nn.Linear(3, 1)

    def compute_loss(model, batch):
        inputs, targets = batch
        return {"loss": ((model(inputs) - targets) ** 2).mean()}

    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    return Trainer(model, optimizer, compute_loss, endless_batches(x, y, batch_size=32, seed=1))


def test_a_few_steps_lower_the_loss():
    trainer = regression_trainer()
    data = regression_data()
    with torch.no_grad():
        before = trainer.compute_loss(trainer.model, data)["loss"].item()
    snapshots = list(trainer.run(200))
    with torch.no_grad():
        after = trainer.compute_loss(trainer.model, data)["loss"].item()
    assert snapshots[-1].done and snapshots[-1].step == 200
    assert after < 0.01 * before
    assert all(s.samples_per_second > 0 for s in snapshots)


def test_stop_and_resume_continue_the_count():
    trainer = regression_trainer()
    run = trainer.run(1000)
    first = next(run)
    run.close()  # what stopping a worker does
    assert not trainer.model.training
    stopped_at = trainer.step
    assert 0 < stopped_at == first.step < 1000
    last = list(trainer.run(50))[-1]
    assert last.step == stopped_at + 50 and last.total_steps == stopped_at + 50
    assert trainer.cpu_seconds > 0


def test_previews_are_numpy_images():
    trainer = regression_trainer()
    shots = [s.preview for s in trainer.run(20, preview=lambda m: np.zeros((4, 5), np.uint8)) if s.preview is not None]
    assert shots and shots[-1].shape == (4, 5)


def test_divergence_raises_and_names_the_step():
    trainer = regression_trainer(lr=1e6)
    with pytest.raises(DivergedError, match="at step"):
        list(trainer.run(500))


def test_batches_are_deterministic_and_cover_the_data():
    data = torch.arange(10)
    first = list(itertools.islice(endless_batches(data, batch_size=5, seed=3), 4))
    again = list(itertools.islice(endless_batches(data, batch_size=5, seed=3), 4))
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert sorted(torch.cat(first[:2]).tolist()) == list(range(10))
    with pytest.raises(ValueError, match="larger than the data"):
        next(endless_batches(data, batch_size=11))
