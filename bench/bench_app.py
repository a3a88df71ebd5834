"""Launch → window shown, and peak memory with a 1024×1024 image open.

Run: ``python bench/bench_app.py [--runs 7]``.  Each run is a fresh Python
process (offscreen Qt) so imports are counted as a user would feel them.
Prints a table of medians and their ratio to the issue's goal.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

LAUNCH = """
import os, sys, time
from explorer.main_window import MainWindow, ensure_application
app = ensure_application()
window = MainWindow()
window.show()
app.processEvents()
print("SHOWN", time.time(), flush=True)
print("TORCH", "torch" in sys.modules, flush=True)
"""

MEMORY = """
import resource, sys
import numpy as np
from PIL import Image
from explorer.main_window import MainWindow, ensure_application
app = ensure_application()
window = MainWindow()
window.show()
rng = np.random.default_rng(0)
path = sys.argv[1]
Image.fromarray(rng.integers(0, 256, (1024, 1024, 3), dtype=np.uint8)).save(path)
assert window.open_image(path)
for name in ("pixels", "noise"):
    window.show_chapter(name)
    for _ in range(5):
        app.processEvents()
print("RSS_MB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, flush=True)
"""


def environment(scratch: str) -> dict[str, str]:
    return {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONPATH": str(REPO),
        "DIFFUSION_EXPLORER_SETTINGS": str(Path(scratch) / "settings.ini"),
    }


def launch_seconds(scratch: str) -> tuple[float, bool]:
    start = time.time()
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH], env=environment(scratch), capture_output=True, text=True, check=True
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return float(lines["SHOWN"]) - start, lines["TORCH"] == "True"


def peak_memory_mb(scratch: str) -> float:
    result = subprocess.run(
        [sys.executable, "-c", MEMORY, str(Path(scratch) / "big.png")],
        env=environment(scratch),
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in result.stdout.splitlines() if line.startswith("RSS_MB"))
    return float(line.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        launch_seconds(scratch)  # warm the file cache, as a second launch would be
        launches = [launch_seconds(scratch) for _ in range(args.runs)]
        memory = [peak_memory_mb(scratch) for _ in range(3)]
    seconds = [s for s, _ in launches]
    torch_loaded = any(loaded for _, loaded in launches)
    median_launch = statistics.median(seconds)
    median_memory = statistics.median(memory)
    print(f"{'case':44} {'median':>10} {'goal':>9} {'ratio':>7}")
    print(f"{'launch → window shown (s)':44} {median_launch:10.3f} {1.5:9.2f} {median_launch / 1.5:7.2f}")
    print(f"{'peak memory, 1024² image, pixels+noise (MB)':44} {median_memory:10.0f} {'—':>9} {'':>7}")
    print(f"torch imported before the window appeared: {torch_loaded}  (runs: {args.runs}, cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
