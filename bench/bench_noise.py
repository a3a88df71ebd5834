"""Slider move → displayed frame in the Noise chapter, on a 1024×1024 RGB image.

Drives the real widget path: set the slider's value, run the chapter's
synchronous ``update_views()`` (compute + ``setImage`` + histograms), then
process events so Qt paints the window (offscreen). Prints, per case, the median
and 90th percentile of the wall time and the median of the GUI thread's CPU time
(which leaves out waiting for a core on a busy machine), each with its ratio to
the 16 ms frame budget (≤ 1 keeps 60 Hz).

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


def time_moves(app: QApplication, chapter, slider, values, moves: int) -> tuple[np.ndarray, np.ndarray]:
    """Wall and GUI-thread CPU milliseconds per move: set value → update_views() → processEvents() (paint).

    The CPU time leaves out waiting for a core, so it stays meaningful on a busy machine.
    """
    wall, cpu = [], []
    for i in range(moves + 3):
        start, start_cpu = time.perf_counter(), time.thread_time()
        slider.setValue(values[i % len(values)])
        chapter.update_views()
        app.processEvents()
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.thread_time() - start_cpu) * 1000)
    return np.array(wall[3:]), np.array(cpu[3:])  # the first moves warm caches and lazy fields


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
        times = time_moves(app, chapter, chapter.strength_slider, strengths, args.moves)
        rows.append((f"{kind} strength slider", *times))
    chapter.tabs.setCurrentIndex(chapter.DIFFUSION_TAB)
    steps = list(range(1, 1001, 37))
    rows.append(("forward diffusion t slider", *time_moves(app, chapter, chapter.t_slider, steps, args.moves)))
    chapter.shutdown()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Noise chapter: slider move → displayed frame, {SIDE}×{SIDE} RGB, {args.moves} moves per case "
        f"(Qt {os.environ['QT_QPA_PLATFORM']}, {os.cpu_count()} cores, load {load:.1f})"
    )
    print(f"{'case':<32} {'median ms':>9} {'p90 ms':>7} {'/ 16 ms':>8} {'cpu median ms':>14} {'/ 16 ms':>8}")
    for name, wall, cpu in rows:
        median, p90, cpu_median = np.median(wall), np.percentile(wall, 90), np.median(cpu)
        print(
            f"{name:<32} {median:>9.1f} {p90:>7.1f} {median / FRAME_BUDGET_MS:>8.2f}"
            f" {cpu_median:>14.1f} {cpu_median / FRAME_BUDGET_MS:>8.2f}"
        )


if __name__ == "__main__":
    main()
