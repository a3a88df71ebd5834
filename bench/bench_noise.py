"""Slider move → displayed frame in the Noise chapter, on a 1024×1024 RGB image.

Drives the real widget path: set the slider's value, run the chapter's
synchronous ``update_views()`` (compute + ``setImage`` + histograms), then
process events so Qt paints the window (offscreen). Prints, per case, the median
and 90th percentile of the wall time, the median CPU time of the GUI thread and
of the whole process (the chapter computes half of each image on a pool thread
when a core is free), each median with its ratio to the 16 ms frame budget
(≤ 1 keeps 60 Hz), and the load average: on a busy machine the wall time
includes waiting for a core, the CPU times do not.

    python bench/bench_noise.py [--moves 50]
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
from PIL import Image  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

FRAME_BUDGET_MS = 16.0
SIDE = 1024


def bench_image():
    """The default photograph, resized to 1024×1024."""
    from models.images import DEFAULT_IMAGE, LoadedImage, load_builtin

    photo = load_builtin(DEFAULT_IMAGE)
    pixels = np.asarray(Image.fromarray(photo.pixels).resize((SIDE, SIDE), Image.Resampling.BICUBIC))
    return LoadedImage(pixels=np.ascontiguousarray(pixels), name=f"{DEFAULT_IMAGE}-{SIDE}", path=None)


def time_moves(app: QApplication, chapter, slider, values, moves: int) -> np.ndarray:
    """Wall, GUI-thread CPU and process CPU milliseconds per move (rows): set value → update_views() → paint."""
    times = []
    for i in range(moves + 3):
        start, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
        slider.setValue(values[i % len(values)])
        chapter.update_views()
        app.processEvents()
        times.append((time.perf_counter() - start, time.thread_time() - thread, time.process_time() - process))
    return np.array(times[3:]) * 1000  # the first moves warm caches and lazy fields


def print_table(title: str, rows: list[tuple[str, np.ndarray]]) -> None:
    """One line per case: wall median and p90, GUI-thread and process CPU medians, each median / 16 ms."""
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    print(f"{title} (Qt {os.environ['QT_QPA_PLATFORM']}, {os.cpu_count()} cores, load average {load})")
    print(
        f"{'case':<32} {'wall ms':>8} {'p90':>6} {'/16ms':>6} {'GUI cpu ms':>11} {'/16ms':>6}"
        f" {'process cpu ms':>15} {'/16ms':>6}"
    )
    for name, times in rows:
        wall, thread, process = np.median(times, axis=0)
        p90 = np.percentile(times[:, 0], 90)
        print(
            f"{name:<32} {wall:>8.1f} {p90:>6.1f} {wall / FRAME_BUDGET_MS:>6.2f} {thread:>11.1f}"
            f" {thread / FRAME_BUDGET_MS:>6.2f} {process:>15.1f} {process / FRAME_BUDGET_MS:>6.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=50, help="slider moves per case (default 50)")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    from explorer.chapters.base import AppContext
    from explorer.chapters.noise import NoiseChapter
    from explorer.workers import WorkerPool

    chapter = NoiseChapter(AppContext(image=bench_image(), workers=WorkerPool()))
    chapter.resize(1220, 800)
    chapter.show()
    app.processEvents()

    rows = []
    strengths = list(np.linspace(0.02, 0.5, 17))
    for kind in ("gaussian", "uniform", "salt-and-pepper", "poisson"):
        chapter.tabs.setCurrentIndex(chapter.NOISE_TAB)
        chapter.kind_combo.setCurrentIndex(chapter.kind_combo.findData(kind))
        rows.append((f"{kind} strength slider", time_moves(app, chapter, chapter.strength_slider, strengths, args.moves)))
    chapter.tabs.setCurrentIndex(chapter.DIFFUSION_TAB)
    steps = list(range(1, 1001, 37))
    rows.append(("forward diffusion t slider", time_moves(app, chapter, chapter.t_slider, steps, args.moves)))
    chapter.shutdown()
    print_table(f"Noise chapter: slider move → displayed frame, {SIDE}×{SIDE} RGB, {args.moves} moves per case", rows)


if __name__ == "__main__":
    main()
