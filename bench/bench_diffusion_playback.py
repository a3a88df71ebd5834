"""The Diffusion chapter's Reverse tab: playback from the frame cache (goal ≥ 30 frames/s).

The whole chapter is built (so the Inside-the-U-Net tab hears every frame, as in the
app), the Reverse tab samples a run with the shipped model, and then, with nothing left
to compute, each request is timed from the call to the panels repainted:

- step →: ``step_forward()`` then the repaint (``processEvents``), over and over;
- scrub: the scrubber set to a random position, then the repaint;
- play: the play timer at 60 frames/s, the frames per second it reaches.

Prints the median and 90th percentile of the wall time in milliseconds, the median CPU time
of the GUI thread (on a busy machine the wall time includes waiting for a core, the CPU time
does not), the frames per second the median wall time allows (1000 / median) and the goal,
for 1 image and for a grid of 16.

    python bench/bench_diffusion_playback.py [--frames 200] [--steps 50]
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

GOAL_FPS = 30.0


def wait_for(app: QApplication, done, timeout_s: float = 600.0, poll_ms: int = 20) -> None:
    """Run the event loop until ``done()``."""
    loop, timer = QEventLoop(), QTimer()
    deadline = time.perf_counter() + timeout_s
    timer.timeout.connect(lambda: loop.quit() if done() or time.perf_counter() > deadline else None)
    timer.start(poll_ms)
    if not done():
        loop.exec()
    timer.stop()
    if not done():
        raise TimeoutError("the Reverse tab did not finish in time")


def repaint(app: QApplication) -> None:
    app.processEvents()  # the panels' update requests → paint
    app.processEvents()


def step_latencies(app: QApplication, tab, frames: int) -> np.ndarray:
    """Wall and GUI-thread CPU milliseconds (columns) from a step request (→, or Home at the end)
    to the panels repainted."""
    times = []
    tab.go_home()
    repaint(app)
    for _ in range(frames):
        start, thread = time.perf_counter(), time.thread_time()
        if tab.position >= tab.available() - 1:
            tab.go_home()
        else:
            tab.step_forward()
        repaint(app)
        times.append((time.perf_counter() - start, time.thread_time() - thread))
    return np.array(times) * 1000


def scrub_latencies(app: QApplication, tab, frames: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    times = []
    for position in rng.integers(0, tab.available(), frames):
        start, thread = time.perf_counter(), time.thread_time()
        tab.scrubber.setValue(int(position))
        repaint(app)
        times.append((time.perf_counter() - start, time.thread_time() - thread))
    return np.array(times) * 1000


def played_fps(app: QApplication, tab, frames: int) -> float:
    """Frames per second the play timer reaches at 60 frames/s (one lap from the first step)."""
    tab.fps_spin.setValue(60)
    shown = []

    def record(_) -> None:
        shown.append(time.perf_counter())

    tab.frameShown.connect(record)
    tab.go_home()
    tab.toggle_play()
    count = min(frames, tab.available() - 1)
    wait_for(app, lambda: len(shown) >= count or not tab.playing, poll_ms=5)
    tab.pause()
    tab.frameShown.disconnect(record)
    return (len(shown) - 1) / (shown[-1] - shown[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="timed requests per case (default 200)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps of the cached run (default 50)")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    from explorer.chapters.base import AppContext
    from explorer.chapters.diffusion.chapter import DiffusionChapter
    from explorer.workers import WorkerPool
    from models.images import load_builtin

    chapter = DiffusionChapter(AppContext(image=load_builtin("coffee"), workers=WorkerPool()))
    chapter.resize(1230, 780)
    chapter.show()
    tab = chapter.reverse_tab
    rows = []
    for count in (1, 16):
        tab.count_combo.setCurrentIndex(tab.count_combo.findData(count))
        tab.steps_spin.setValue(args.steps)
        chapter.tabs.setCurrentIndex(chapter.REVERSE_TAB)
        tab.generate()
        wait_for(app, lambda: not tab.busy and tab.cache.complete)
        wait_for(app, lambda: not chapter.busy)
        step_ms = step_latencies(app, tab, args.frames)
        scrub_ms = scrub_latencies(app, tab, args.frames)
        fps = played_fps(app, tab, args.frames)
        rows.append((count, step_ms, scrub_ms, fps))
    chapter.shutdown()
    chapter.context.workers.stop_all()

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"Reverse tab playback from the cache (Qt {os.environ['QT_QPA_PLATFORM']}, {os.cpu_count()} cores, "
          f"load average {load}), DDIM-{args.steps}, {args.frames} requests per case")
    goal = f"≥ {GOAL_FPS:g}"
    print(f"{'case':<30} {'median ms':>9} {'p90 ms':>7} {'GUI CPU ms':>10} {'frames/s':>9} {'goal':>6}")
    for count, step_ms, scrub_ms, fps in rows:
        label = f"{count} image{'s' if count > 1 else ''}"
        for name, ms in ((f"step → ({label})", step_ms), (f"scrub ({label})", scrub_ms)):
            median, cpu = float(np.median(ms[:, 0])), float(np.median(ms[:, 1]))
            ok = "ok" if 1000 / median >= GOAL_FPS else "MISSED"
            print(f"{name:<30} {median:>9.2f} {np.percentile(ms[:, 0], 90):>7.2f} {cpu:>10.2f} {1000 / median:>9.0f} "
                  f"{goal:>6} {ok}")
        ok = "ok" if fps >= GOAL_FPS else "MISSED"
        print(f"{f'play at 60 frames/s ({label})':<30} {'':>9} {'':>7} {'':>10} {fps:>9.1f} {goal:>6} {ok}")


if __name__ == "__main__":
    main()
