"""The wheel carries the assets, and an installed copy finds them outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_an_installed_wheel_finds_its_assets(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next(tmp_path.glob("diffusion_explorer-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "models/_assets/CREDITS.md" in names
    assert "models/_assets/images/coffee.jpg" in names
    assert not [name for name in names if name.startswith(("tests/", "bench/"))]
    sources = {str(path.relative_to(REPO)) for package in ("explorer", "models") for path in (REPO / package).rglob("*.py")}
    missing = sorted(source for source in sources if source not in names)
    assert not missing, f"add their packages to [tool.setuptools] packages in pyproject.toml: {missing}"

    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # what pip would put in site-packages
    code = (
        "import models.assets, models.images;"
        "print(models.assets.assets_dir());"
        "print(models.images.load_builtin('coffee').pixels.shape)"
    )
    env = {k: v for k, v in os.environ.items() if k != "DIFFUSION_EXPLORER_ASSETS"}
    env["PYTHONPATH"] = str(site)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    where, shape = result.stdout.split("\n")[:2]
    assert Path(where) == site / "models" / "_assets"
    assert shape.startswith("(341, 512, 3")
