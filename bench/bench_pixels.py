"""Control change → displayed frame in the Pixels chapter, on a 1024×1024 RGB image.

Drives the real widget path: change a control (slider, check box, combo box, view
range), which recomputes and calls ``setImage`` synchronously, then process events
so Qt paints the window offscreen and the pixel numbers update. Prints, per case,
the median and 90th percentile of the wall time and the median CPU time of the GUI
thread and of the process, each median with its ratio to the 16 ms frame budget,
and the load average (the same table as ``bench_noise.py``).

    python bench/bench_pixels.py [--moves 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from bench_noise import SIDE, bench_image, print_table  # noqa: E402  (this folder is on sys.path)


def time_changes(app: QApplication, change: Callable[[int], None], moves: int, prepare=None) -> np.ndarray:
    """Wall, GUI-thread CPU and process CPU milliseconds per change (rows): change(i) → processEvents()."""
    times = []
    for i in range(moves + 3):
        if prepare is not None:
            prepare(i)
            app.processEvents()
        start, thread, process = time.perf_counter(), time.thread_time(), time.process_time()
        change(i)
        app.processEvents()
        times.append((time.perf_counter() - start, time.thread_time() - thread, time.process_time() - process))
    return np.array(times[3:]) * 1000  # the first changes warm caches and lazy fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=30, help="changes per case (default 30)")
    args = parser.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    from explorer.chapters.base import AppContext
    from explorer.chapters.pixels import FACTORS, SPLITS, PixelsChapter
    from explorer.workers import WorkerPool

    image = bench_image()
    chapter = PixelsChapter(AppContext(image=image, workers=WorkerPool()))
    chapter.resize(1220, 800)
    chapter.show()
    app.processEvents()
    slider, view = chapter.resolution_slider, chapter.composite_panel.view_box
    walk = [*range(len(FACTORS)), *range(len(FACTORS) - 2, 0, -1)]  # 0 1 2 3 4 5 4 3 2 1

    rows = [
        ("resolution slider (cached)", time_changes(app, lambda i: slider.setValue(walk[i % len(walk)]), args.moves)),
        (
            "resolution slider (new image)",  # nothing cached for the factor it moves to
            time_changes(
                app,
                lambda i: slider.setValue(1 + i % (len(FACTORS) - 1)),
                args.moves,
                prepare=lambda i: (slider.setValue(0), chapter.set_image(image)),
            ),
        ),
    ]
    slider.setValue(0)
    rows.append(("channel toggle (×1)", time_changes(app, lambda i: chapter.channel_boxes[i % 3].toggle(), args.moves)))
    for box in chapter.channel_boxes:
        box.setChecked(True)
    split = chapter.split_combo
    rows.append(("split change (×1)", time_changes(app, lambda i: split.setCurrentIndex(i % len(SPLITS)), args.moves)))
    split.setCurrentIndex(0)
    rows.append(("tint toggle (×1)", time_changes(app, lambda i: chapter.tint_box.toggle(), args.moves)))
    rows.append(
        (
            "pan with numbers shown",  # about 14×10 cells per panel carry numbers
            time_changes(app, lambda i: view.setRange(xRange=(i, i + 12), yRange=(i, i + 9), padding=0), args.moves),
        )
    )
    chapter.shutdown()
    title = f"Pixels chapter: control change → displayed frame, {SIDE}×{SIDE} RGB, {args.moves} changes per case"
    print_table(title, rows)


if __name__ == "__main__":
    main()
