"""The GAN chapter's 2-D points tab: training speed with the live view on, and GUI responsiveness.

1. Training iterations/s (one iteration = D steps per G step D updates, then one G update;
   batch 128, width 64, depth 2) inside the tab while it plays, with the plane (points, heat
   map, manifold, gradient arrows) and the curves redrawn (≤ 30 times a second), against
   the bare loop (``Gan2DTrainer.run`` with the same snapshots, and ``train_step`` alone,
   same torch threads). Goal ≥ 200 iterations/s on 2 cores.
2. The GUI event loop's longest stalls while training: a 5 ms QTimer ticks on the GUI
   thread; the gaps between ticks beyond 5 ms are time the loop could not react (redraws,
   the GIL held by the training thread). Prints the median over runs of the p99 and max gap
   (goal p99 ≤ 50 ms), and the same with nothing training, for reference.

Runs alternate, so that a busy machine hurts both alike; the load average is printed. On a
machine shared with other jobs the wall-clock figures measure the share of the cores this
process gets; the iterations per CPU second of the training thread (process CPU time less
the GUI thread's) and the GUI's CPU per redraw do not depend on it.

    python bench/bench_gan_points.py [--seconds 6] [--repeats 3]
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

GOAL_RATE = 200.0  # iterations/s
GOAL_P99_MS = 50.0
TICK_MS = 5


def run_loop(app: QApplication, seconds: float, until=None) -> np.ndarray:
    """Run the event loop (blocking, as the application does) for ``seconds`` (or until
    ``until()``); return the gaps in ms between the ticks of a 5 ms timer."""
    loop, ticks, timer = QEventLoop(), [], QTimer()
    timer.setInterval(TICK_MS)
    timer.setTimerType(timer.timerType().PreciseTimer)
    end = time.perf_counter() + seconds

    def tick() -> None:
        now = time.perf_counter()
        ticks.append(now)
        if now > end or (until is not None and until()):
            loop.quit()

    timer.timeout.connect(tick)
    timer.start()
    loop.exec()
    timer.stop()
    return np.diff(ticks) * 1000


def in_app(app: QApplication, tab, seconds: float) -> tuple[float, np.ndarray, float, float, float]:
    """Iterations/s while the tab plays, the tick gaps meanwhile, redraws per second, the
    iterations per CPU second of the process less the GUI thread (the training thread: what
    a free core would give), and the GUI thread's CPU ms per redraw."""
    tab.reset()
    run_loop(app, 60, until=lambda: tab.worker is None)
    tab.step()  # builds the optimisers
    run_loop(app, 60, until=lambda: tab.worker is None)
    redraws, draw = [0], tab._redraw

    def counted() -> None:
        if tab._latest is not None:
            redraws[0] += 1
        draw()

    tab.redraw_timer.timeout.disconnect()
    tab.redraw_timer.timeout.connect(counted)
    tab.play()
    run_loop(app, 0.5)  # warm up
    trainer = tab.session.trainer
    start_step, start = trainer.step, time.perf_counter()
    redraws[0] = 0
    gui_cpu, process_cpu = time.thread_time(), time.process_time()
    gaps = run_loop(app, seconds)
    elapsed = time.perf_counter() - start
    gui_cpu, process_cpu = time.thread_time() - gui_cpu, time.process_time() - process_cpu
    steps = trainer.step - start_step
    rate = steps / elapsed
    tab.pause()
    run_loop(app, 10, until=lambda: tab.worker is None)
    tab.redraw_timer.timeout.disconnect()
    tab.redraw_timer.timeout.connect(draw)
    return rate, gaps, redraws[0] / elapsed, steps / max(process_cpu - gui_cpu, 1e-9), 1000 * gui_cpu / max(redraws[0], 1)


def bare(seconds: float) -> tuple[float, float]:
    """Iterations/s of ``Gan2DTrainer.run`` (snapshots every 1/25 s, as the tab asks) and of
    ``train_step`` alone, on this thread."""
    from explorer.chapters.gan.points_tab import SNAPSHOT_EVERY_S
    from models.gan2d import Gan2DHyper, Gan2DTrainer

    trainer = Gan2DTrainer(Gan2DHyper(), "ring")
    trainer.prepare()
    start_step, start = trainer.step, time.perf_counter()
    for _ in trainer.run(None, snapshot_every_s=SNAPSHOT_EVERY_S):
        if time.perf_counter() - start > seconds / 2:
            break
    with_snapshots = (trainer.step - start_step) / (time.perf_counter() - start)
    start_step, start = trainer.step, time.perf_counter()
    while time.perf_counter() - start < seconds / 2:
        trainer.train_step()
    return with_snapshots, (trainer.step - start_step) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="seconds of training per run (default 6)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind (default 3)")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    from explorer.chapters.gan.points_tab import PointsTab
    from explorer.workers import WorkerPool
    from models.device import set_torch_threads

    threads = set_torch_threads(leave_for_gui=1)  # as the GAN chapter does
    pool = WorkerPool()
    tab = PointsTab(pool, "cpu")
    tab.controls.show()
    tab.resize(910, 740)  # the tab's share of a 1230×780 chapter
    tab.show()
    tab.set_active(True)
    run_loop(app, 60, until=lambda: tab.worker is None)

    app_rates, app_p99, app_max, redraw_rates, idle_p99, idle_max, bare_run, bare_step, per_cpu, redraw_ms = (
        [] for _ in range(10))  # fmt: skip
    for _ in range(args.repeats):
        gaps = run_loop(app, min(args.seconds, 2.0))
        idle_p99.append(np.percentile(gaps, 99))
        idle_max.append(gaps.max())
        rate, gaps, redraws, rate_per_cpu, gui_ms = in_app(app, tab, args.seconds)
        per_cpu.append(rate_per_cpu)
        redraw_ms.append(gui_ms)
        app_rates.append(rate)
        app_p99.append(np.percentile(gaps, 99))
        app_max.append(gaps.max())
        redraw_rates.append(redraws)
        with_snapshots, steps_only = bare(args.seconds)
        bare_run.append(with_snapshots)
        bare_step.append(steps_only)
    tab.shutdown()
    pool.stop_all(timeout_ms=20_000)

    median = lambda values: float(np.median(values))  # noqa: E731
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"GAN 2-D points tab (Qt {os.environ['QT_QPA_PLATFORM']}, {cores} cores, load average {load}, "
          f"{threads} torch thread(s)); {args.repeats} runs of {args.seconds:g} s, medians")  # fmt: skip
    print(f"\n{'case':<44} {'value':>9} {'goal':>9} {'met':>4}")
    rate = median(app_rates)
    print(f"{'iterations/s in the tab, live view on':<44} {rate:>9.0f} {'≥ 200':>9} {'yes' if rate >= GOAL_RATE else 'no':>4}")
    print(f"{'  bare Gan2DTrainer.run (same snapshots)':<44} {median(bare_run):>9.0f}")
    print(f"{'  bare train_step alone':<44} {median(bare_step):>9.0f}")
    print(f"{'  per CPU second of the training thread':<44} {median(per_cpu):>9.0f} {'≥ 200':>9}"
          f" {'yes' if median(per_cpu) >= GOAL_RATE else 'no':>4}   (what a free core gives)")  # fmt: skip
    print(f"{'  redraws per second in the tab':<44} {median(redraw_rates):>9.1f} {'≤ 30':>9}")
    print(f"{'  GUI thread CPU per redraw, ms':<44} {median(redraw_ms):>9.1f}")
    p99 = median(app_p99)
    print(f"{'GUI tick gap p99 while training, ms':<44} {p99:>9.1f} {'≤ 50':>9} {'yes' if p99 <= GOAL_P99_MS else 'no':>4}")
    print(f"{'GUI tick gap max while training, ms':<44} {median(app_max):>9.1f}")
    print(f"{'  idle: tick gap p99, ms':<44} {median(idle_p99):>9.1f}")
    print(f"{'  idle: tick gap max, ms':<44} {median(idle_max):>9.1f}")
    print(
        f"runs: app {', '.join(f'{r:.0f}' for r in app_rates)} it/s; bare run {', '.join(f'{r:.0f}' for r in bare_run)}; "
        f"p99 {', '.join(f'{r:.1f}' for r in app_p99)} ms"
    )


if __name__ == "__main__":
    main()
