"""Training speed of the autoencoders, bare: samples per second of ``Trainer.run`` (no GUI).

For each shipped recipe's model (AE-2D, VAE-2D, VAE-16D; batch 128) and each
torch thread count, times ``--steps`` steps of ``Trainer.run`` and, as its
reference, the same steps written out by hand (forward, backward, Adam) without
the Trainer's snapshots. Prints the median over ``--repeats`` runs of the
samples/s (wall clock), the process CPU seconds per 1000 samples, and the
Trainer's overhead against the hand loop. Runs alternate, so that a busy
machine hurts both alike. The in-application comparison is bench/bench_latent.py.

    python bench/bench_latent_training.py [--steps 40] [--repeats 3]

On a machine busy with other jobs, set OMP_WAIT_POLICY=PASSIVE: otherwise torch's
idle threads spin while they wait for a core, and two threads can run 5-10× slower
than one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.autoencoder import RECIPES, autoencoder_loss, make_trainer  # noqa: E402
from models.device import cpu_cores  # noqa: E402

DATA_COUNT = 5000  # cached on disk after the first run
BATCH_SIZE = 128
WARM_UP_STEPS = 3


def trainer_run(name: str, steps: int) -> tuple[float, float]:
    """(samples/s, CPU s per 1000 samples) of ``Trainer.run``."""
    trainer = make_trainer(RECIPES[name].config, data_count=DATA_COUNT, batch_size=BATCH_SIZE)
    for _ in trainer.run(WARM_UP_STEPS):
        pass
    start, cpu = time.perf_counter(), time.process_time()
    for _ in trainer.run(steps):
        pass
    return _rates(steps, time.perf_counter() - start, time.process_time() - cpu)


def hand_loop(name: str, steps: int) -> tuple[float, float]:
    """The same steps without the Trainer: the reference."""
    trainer = make_trainer(RECIPES[name].config, data_count=DATA_COUNT, batch_size=BATCH_SIZE)
    model, optimizer, batches = trainer.model.train(), trainer.optimizer, trainer.batches

    def step() -> None:
        loss = autoencoder_loss(model, next(batches))["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(WARM_UP_STEPS):
        step()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        step()
    return _rates(steps, time.perf_counter() - start, time.process_time() - cpu)


def _rates(steps: int, wall: float, cpu: float) -> tuple[float, float]:
    samples = steps * BATCH_SIZE
    return samples / wall, 1000 * cpu / samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="timed steps per run (default 40)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each case (default 3)")
    args = parser.parse_args()

    from models.data import make_digits

    make_digits(DATA_COUNT, seed=0)  # generated (or read from the cache) before timing
    thread_counts = sorted({1, cpu_cores()})
    rows = []
    for name in RECIPES:
        for threads in thread_counts:
            torch.set_num_threads(threads)
            bare, hand = [], []
            for _ in range(args.repeats):
                bare.append(trainer_run(name, args.steps))
                hand.append(hand_loop(name, args.steps))
            bare_rate, bare_cpu = np.median(bare, axis=0)
            hand_rate, _ = np.median(hand, axis=0)
            rows.append((name, threads, bare_rate, bare_cpu, hand_rate, 100 * (hand_rate / bare_rate - 1)))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Autoencoder training, bare loop (torch {torch.__version__}, {cpu_cores()} cores, load {load:.1f}; "
          f"batch {BATCH_SIZE}, {args.steps} steps, median of {args.repeats})")
    print(f"{'model':<9} {'threads':>7} {'Trainer.run samples/s':>22} {'CPU s/1000':>10} "
          f"{'hand loop samples/s':>20} {'overhead':>9}")
    for name, threads, rate, cpu, hand_rate, overhead in rows:
        print(f"{name:<9} {threads:>7} {rate:>22.0f} {cpu:>10.2f} {hand_rate:>20.0f} {overhead:>8.1f}%")


if __name__ == "__main__":
    main()
