"""Where the shipped assets (sample images, pretrained weights) live.

From a source checkout they are the top-level ``assets/`` folder; from an
installed wheel they are the data-only package ``models._assets``.  The
environment variable ``DIFFUSION_EXPLORER_ASSETS`` overrides both.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path


@cache
def assets_dir() -> Path:
    """Return the folder that holds ``images/`` and the pretrained weights."""
    override = os.environ.get("DIFFUSION_EXPLORER_ASSETS")
    candidates = [Path(override)] if override else []
    here = Path(__file__).resolve().parent
    candidates += [here.parent / "assets", here / "_assets"]
    for candidate in candidates:
        if (candidate / "images").is_dir():
            return candidate
    raise FileNotFoundError(
        "Diffusion Explorer's assets folder was not found (looked in "
        + ", ".join(str(c) for c in candidates) + ")"
    )


def asset_path(*parts: str) -> Path:
    """Path of one asset, e.g. ``asset_path("images", "coffee.png")``."""
    return assets_dir().joinpath(*parts)
