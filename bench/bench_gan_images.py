"""DCGAN training speed: the bare loop against the GAN chapter's Images tab.

1. Bare: ``GANTrainer.train_step`` in a plain loop (one D step, one G step; batch 64,
   digits), timed after a few warm-up steps.
2. Inside the application: the Images tab (offscreen, shown) trains the same DCGAN
   from scratch in its ``WorkerPool`` worker, with everything the person sees: the
   fixed-noise grid rendered every 0.25 s and redrawn, D(x) histograms, loss and D(x)
   curves, the class coverage measured by the evaluator every 5 s, the timelapse
   capture. The rate comes from the run's snapshots (the trainer's own clock), after
   the first snapshot (so building the trainer and loading the evaluator do not count).

Both use the torch thread count the chapter uses (``set_torch_threads(leave_for_gui=1)``:
one core left for the GUI). Runs alternate, so that a busy machine hurts both alike.
Prints medians over ``--repeats`` runs and the ratio app / bare.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_gan_images.py [--steps 60] [--repeats 2]

Measured 2026-11-26 (--steps 60 --repeats 3; 2 cores shared with other jobs, load average
about 7; 1 torch thread): bare 215.5 samples/s, Images tab 181.2 samples/s, ratio 0.84
(the app's rate includes three class-coverage measurements per run); GUI thread CPU 2.5%.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

DATA_COUNT = 20_000  # training digits (cached on disk after the first run)
BATCH_SIZE = 64
WARM_UP_STEPS = 3


def wait_for(app: QApplication, done, timeout_s: float = 1800.0, poll_ms: int = 20) -> None:
    """Run the event loop (as the application does) until ``done()``."""
    loop, timer = QEventLoop(), QTimer()
    deadline = time.perf_counter() + timeout_s

    def check() -> None:
        if done() or time.perf_counter() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start(poll_ms)
    if not done():
        loop.exec()
    timer.stop()
    if not done():
        raise TimeoutError("the tab did not finish in time")


def bare_training(steps: int) -> float:
    """Samples/s of ``GANTrainer.train_step`` in a plain loop on this thread."""
    from models.gan import DCGAN, DCGANConfig, GANHyper, GANTrainer, make_training_images

    trainer = GANTrainer(DCGAN(DCGANConfig(), seed=0), make_training_images("digits", DATA_COUNT),
                         GANHyper(batch_size=BATCH_SIZE), seed=0)
    for _ in range(WARM_UP_STEPS):
        trainer.train_step()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * BATCH_SIZE / (time.perf_counter() - start)


def app_training(app: QApplication, tab, steps: int) -> tuple[float, float, int]:
    """Samples/s of the Images tab's run (from its snapshots), the GUI thread's CPU time as a
    share of the run's wall time, and the class-coverage measurements made during it."""
    from explorer.chapters.gan.images_tab import BATCH_SIZES, CoveragePoint
    from models.gan import GANSnapshot

    tab.reset()
    tab.scratch_radio.setChecked(True)
    tab.source_combo.setCurrentIndex(tab.source_combo.findData("digits"))
    tab.batch_combo.setCurrentIndex(BATCH_SIZES.index(BATCH_SIZE))
    snapshots: list[GANSnapshot] = []
    coverage = [0]
    show = tab._on_update

    def record(item) -> None:
        if isinstance(item, GANSnapshot):
            snapshots.append(item)
        elif isinstance(item, CoveragePoint):
            coverage[0] += 1
        show(item)

    tab._on_update = record
    tab.start()
    wait_for(app, lambda: len(snapshots) >= 1)
    gui_start, wall_start = time.thread_time(), time.perf_counter()
    first = snapshots[-1]
    wait_for(app, lambda: snapshots[-1].step - first.step >= steps)
    last = snapshots[-1]
    gui_share = (time.thread_time() - gui_start) / (time.perf_counter() - wall_start)
    tab.stop()
    wait_for(app, lambda: not tab.running)
    tab._on_update = show
    rate = (last.step - first.step) * BATCH_SIZE / (last.elapsed_s - first.elapsed_s)
    return rate, gui_share, coverage[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="timed G steps per run (default 60)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind (default 2)")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    import shiboken6
    import torch

    from explorer.chapters.gan.images_tab import ImagesTab
    from explorer.workers import WorkerPool
    from models.device import set_torch_threads
    from models.gan import make_training_images

    set_torch_threads(leave_for_gui=1)  # as the chapter does
    threads = torch.get_num_threads()
    make_training_images("digits", DATA_COUNT)  # cached before either run times anything
    tab = ImagesTab(WorkerPool(), torch.device("cpu"))
    tab.data_count = DATA_COUNT
    tab.resize(1230, 780)
    tab.show()
    tab.set_active(True)
    wait_for(app, lambda: not tab.busy)

    bare, inside, gui, measured = [], [], [], []
    for _ in range(args.repeats):
        bare.append(bare_training(args.steps))
        rate, gui_share, coverage = app_training(app, tab, args.steps)
        inside.append(rate)
        gui.append(gui_share)
        measured.append(coverage)
    tab.shutdown()
    tab.pool.stop_all()
    tab.close()
    shiboken6.delete(tab)

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    bare_rate, app_rate = float(np.median(bare)), float(np.median(inside))
    print(f"DCGAN training on digits (torch {torch.__version__}, {os.cpu_count()} cores, load average {load}, "
          f"{threads} torch thread(s); batch {BATCH_SIZE}, {args.steps} G steps per run, median of {args.repeats})")
    print(f"{'case':<46} {'samples/s':>9} {'ratio':>6}")
    print(f"{'bare loop (GANTrainer.train_step)':<46} {bare_rate:>9.1f} {1.0:>6.2f}")
    print(f"{'Images tab (worker, live grid, curves, coverage)':<46} {app_rate:>9.1f} {app_rate / bare_rate:>6.2f}")
    print(f"GUI thread CPU while training: {100 * float(np.median(gui)):.1f}% of wall time; "
          f"class coverage measured {int(np.median(measured))} time(s) per timed run")
    print("runs (samples/s): bare " + ", ".join(f"{r:.1f}" for r in bare)
          + "; app " + ", ".join(f"{r:.1f}" for r in inside))


if __name__ == "__main__":
    main()
