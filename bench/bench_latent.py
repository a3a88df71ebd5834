"""The Latent space chapter: decode latency while dragging on a map, and training speed in the app.

1. Drag on the VAE-2D and AE-2D maps with real mouse events (offscreen): each
   move goes through pyqtgraph, the chapter's handler, a worker that decodes one
   code, and ``setImage``. Prints the median and 90th percentile of the wall time
   from the mouse event to the decoded image on screen, and the median CPU time
   of the GUI thread and of the whole process (the decode runs on a pool thread),
   each median with its ratio to the 16 ms frame budget, next to the bare decoder
   call. On a busy machine the wall time includes waiting for a core, the CPU
   times do not.
2. Training samples/s inside the application (the Train tab's worker, with its
   curves, preview and progress bar updating) against the bare loop
   (``Trainer.run`` alone, same torch threads), and the overhead in percent
   (goal ≤ 10 %). Runs alternate so that a busy machine hurts both alike.

    python bench/bench_latent.py [--moves 100] [--steps 150] [--repeats 2]
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
from PySide6.QtCore import QEventLoop, QPoint, Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

FRAME_BUDGET_MS = 16.0
DATA_COUNT = 5000  # training digits (cached on disk after the first run)
BATCH_SIZE = 128
MOVE_GAP_S = 0.011  # pyqtgraph drops mouse moves closer than 10 ms apart (timed when it handles them)


def wait_for(app: QApplication, done, timeout_s: float = 120.0, poll_ms: int = 20, signal=None) -> None:
    """Run the event loop (blocking, as the application does) until ``done()``.

    ``signal``: also check whenever it is emitted, so a wait ends without polling delay.
    """
    if done():
        return
    loop, timer = QEventLoop(), QTimer()
    deadline = time.perf_counter() + timeout_s

    def check(*_) -> None:
        if done() or time.perf_counter() > deadline:
            loop.quit()

    timer.timeout.connect(check)
    timer.start(poll_ms)
    if signal is not None:
        signal.connect(check)
    loop.exec()
    timer.stop()
    if signal is not None:
        signal.disconnect(check)
    if not done():
        raise TimeoutError("the chapter did not finish in time")


def drag_latencies(app: QApplication, chapter, name: str, moves: int) -> np.ndarray:
    """Wall, GUI-thread CPU and process CPU milliseconds (rows) from each mouse move of a drag
    to its decode on screen."""
    tab = chapter.map_tab
    latent_map, viewport = tab.maps[name], tab.maps[name].plot_widget.viewport()
    decoded = []
    tab.decoded.connect(lambda which: decoded.append(which) if which == name else None)
    x0, x1, y0, y1 = latent_map.bounds()
    angles = np.linspace(0, 4 * np.pi, moves + 4)
    codes = [(x0 + (x1 - x0) * (0.5 + 0.35 * np.cos(a)), y0 + (y1 - y0) * (0.5 + 0.35 * np.sin(2 * a))) for a in angles]
    path = [latent_map.viewport_position(*code) for code in codes]
    # Press 40 px left of the path and move onto it: pyqtgraph starts a drag only after the
    # mouse has moved a few pixels, and ignores the moves before that.
    start = path[0]
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(start.x() - 40, start.y()))
    time.sleep(MOVE_GAP_S)
    count = len(decoded)
    QTest.mouseMove(viewport, start)
    wait_for(app, lambda: len(decoded) > count and not chapter.busy, signal=tab.decoded)
    times, last_move = [], time.perf_counter()
    for previous, point in zip(path, path[1:]):
        if point == previous:
            continue  # Qt drops a move to where the mouse already is
        time.sleep(max(0.0, last_move + MOVE_GAP_S - time.perf_counter()))
        count = len(decoded)
        start = time.perf_counter()
        thread, process = time.thread_time(), time.process_time()
        QTest.mouseMove(viewport, point)
        last_move = time.perf_counter()  # pyqtgraph timed the move while handling it, so after the start
        wait_for(app, lambda: len(decoded) > count, signal=tab.decoded)
        app.processEvents()  # the repaint
        times.append((time.perf_counter() - start, time.thread_time() - thread, time.process_time() - process))
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, path[-1])
    wait_for(app, lambda: not chapter.busy)
    return np.array(times[3:]) * 1000  # the first moves warm up


def bare_decode_ms(chapter, name: str, count: int = 200) -> np.ndarray:
    from explorer.chapters.latent.backend import decode_point

    model, times = chapter.shelf.model(name), []
    for i in range(count):
        start, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
        decode_point(model, np.array([0.01 * i, -0.01 * i]))
        times.append((time.perf_counter() - start, time.thread_time() - thread, time.process_time() - process))
    return np.array(times[10:]) * 1000


def app_training(app: QApplication, chapter, steps: int) -> tuple[float, float]:
    """Samples/s of the Train tab's run (from its snapshots: the same clock as the bare loop),
    and the GUI thread's CPU time as a fraction of the run's wall time."""
    tab = chapter.train_tab
    chapter.tabs.setCurrentIndex(chapter.TRAIN_TAB)
    tab.data_count, tab.batch_size = DATA_COUNT, BATCH_SIZE
    tab.kind_buttons["vae"].setChecked(True)
    tab.steps_spin.setValue(steps)
    snapshots = []
    show = tab._on_update
    tab._on_update = lambda item: (snapshots.append(item) if not isinstance(item, str) else None, show(item))
    gui_cpu = time.thread_time()
    tab.start()
    wait_for(app, lambda: not tab.running, timeout_s=1800)
    gui_cpu = time.thread_time() - gui_cpu
    wait_for(app, lambda: not chapter.busy)  # the views redraw with the new model
    tab._on_update = show
    return steps * BATCH_SIZE / snapshots[-1].elapsed_s, gui_cpu / snapshots[-1].elapsed_s


def bare_training(steps: int) -> float:
    """Samples/s of ``Trainer.run`` alone on this thread."""
    from models.autoencoder import AutoencoderConfig, make_trainer

    trainer = make_trainer(AutoencoderConfig(latent_dim=2, variational=True), data_count=DATA_COUNT, batch_size=BATCH_SIZE)
    last = None
    for last in trainer.run(steps):
        pass
    return steps * BATCH_SIZE / last.elapsed_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=100, help="mouse moves per drag (default 100)")
    parser.add_argument("--steps", type=int, default=150, help="training steps per run (default 150)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each training kind (default 2)")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    from explorer.chapters.base import AppContext
    from explorer.chapters.latent import LatentChapter
    from explorer.workers import WorkerPool
    from models.data import make_digits
    from models.images import load_builtin

    chapter = LatentChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    chapter.resize(1230, 780)
    chapter.show()
    wait_for(app, lambda: not chapter.busy)
    import torch

    threads = torch.get_num_threads()  # the chapter leaves a core to the GUI

    drag_rows = []
    for name in ("vae-2d", "ae-2d"):
        drag_rows.append((f"drag on the {name.upper()} map", drag_latencies(app, chapter, name, args.moves)))
        drag_rows.append((f"  bare decoder call, {name.upper()}", bare_decode_ms(chapter, name)))

    make_digits(DATA_COUNT, seed=0)  # cached before either run times anything
    bare, inside, gui = [], [], []
    for _ in range(args.repeats):
        bare.append(bare_training(args.steps))
        rate, gui_share = app_training(app, chapter, args.steps)
        inside.append(rate)
        gui.append(gui_share)
    chapter.shutdown()
    chapter.context.workers.stop_all()

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"Latent space chapter (Qt {os.environ['QT_QPA_PLATFORM']}, {os.cpu_count()} cores, load average {load}, "
          f"{threads} torch thread(s))")  # fmt: skip
    print(f"\nDecode per map drag: mouse move → decoded image on screen, {args.moves} moves")
    print(
        f"{'case':<32} {'wall ms':>8} {'p90':>6} {'/16ms':>6} {'GUI cpu ms':>11} {'/16ms':>6}"
        f" {'process cpu ms':>15} {'/16ms':>6}"
    )
    for name, times in drag_rows:
        wall, thread, process = np.median(times, axis=0)
        p90 = np.percentile(times[:, 0], 90)
        print(
            f"{name:<32} {wall:>8.1f} {p90:>6.1f} {wall / FRAME_BUDGET_MS:>6.2f} {thread:>11.1f}"
            f" {thread / FRAME_BUDGET_MS:>6.2f} {process:>15.1f} {process / FRAME_BUDGET_MS:>6.2f}"
        )
    print(f"\nTraining VAE-2D, batch {BATCH_SIZE}, {args.steps} steps per run, {args.repeats} runs each (median)")
    print(f"{'case':<34} {'samples/s':>9}")  # from the runs' snapshots: wall time of Trainer.run
    bare_rate, app_rate = float(np.median(bare)), float(np.median(inside))
    print(f"{'bare loop (Trainer.run)':<34} {bare_rate:>9.0f}")
    print(f"{'in the app (worker + GUI updates)':<34} {app_rate:>9.0f}")
    print(f"{'overhead':<34} {100 * (bare_rate - app_rate) / bare_rate:>8.1f}%   (goal ≤ 10 %)")
    print(f"GUI thread while training: {100 * float(np.median(gui)):.1f}% of one core (curves, preview, progress)")
    print(f"runs: bare {', '.join(f'{r:.0f}' for r in bare)}; app {', '.join(f'{r:.0f}' for r in inside)}")


if __name__ == "__main__":
    main()
