"""How the text-to-image tabs draw latents, noise predictions and attention maps (numpy only)."""

from __future__ import annotations

import numpy as np

LATENT_REACH = 3.0  # latents and ε̂ (unit variance at t = T) are drawn −3 … +3: blue … white … red
STRIP_GAP = 1  # pixels between two channel maps
STRIP_FILL = 160  # grey of the gaps
ATTENTION_BASE = 0.4  # share of the (grey) ẑ₀ under an attention map
ATTENTION_TOP = 4.0  # an attention map is drawn white where a position gets 4× an even share

_NEGATIVE = np.array([33, 102, 172], dtype=np.float32)  # #2166ac
_POSITIVE = np.array([178, 24, 43], dtype=np.float32)  # #b2182b
_WHITE = np.array([247, 247, 247], dtype=np.float32)


def diverging_rgb(values: np.ndarray, reach: float = LATENT_REACH) -> np.ndarray:
    """float (...) → uint8 (..., 3): −reach blue, 0 white, +reach red (clipped beyond)."""
    v = np.clip(np.asarray(values, dtype=np.float32) / reach, -1.0, 1.0)[..., None]
    toward = np.where(v < 0, _NEGATIVE, _POSITIVE)
    rgb = _WHITE + np.abs(v) * (toward - _WHITE)
    return np.rint(rgb).astype(np.uint8)


def channel_strip(latent: np.ndarray, reach: float = LATENT_REACH) -> np.ndarray:
    """One latent (C, h, w) as its C channel maps in a row, uint8 (h, C·w + (C−1)·gap, 3)."""
    channels, height, width = latent.shape
    strip = np.full((height, channels * (width + STRIP_GAP) - STRIP_GAP, 3), STRIP_FILL, dtype=np.uint8)
    colours = diverging_rgb(latent, reach)
    for c in range(channels):
        left = c * (width + STRIP_GAP)
        strip[:, left : left + width] = colours[c]
    return strip


def heat_rgb(values: np.ndarray) -> np.ndarray:
    """float in [0, 1] → uint8 RGB on a black–red–yellow–white scale."""
    v = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)[..., None]
    rgb = np.clip(3.0 * v - np.array([0.0, 1.0, 2.0], dtype=np.float32), 0.0, 1.0)
    return np.rint(255.0 * rgb).astype(np.uint8)


def attention_rgb(weights: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """A word's attention map (h, w), summing to 1, as uint8 RGB, optionally over ``base``
    (uint8 (H, W, 3), a multiple of h), drawn in grey underneath.

    Fixed levels: black is no attention, white ``ATTENTION_TOP`` times an even share
    (1 / (h·w)), so an even spread looks dim red and a word that looks at one place glows.
    """
    weights = np.asarray(weights, dtype=np.float32)
    heat = heat_rgb(weights * weights.size / ATTENTION_TOP)
    if base is None:
        return heat
    factor = base.shape[0] // weights.shape[0]
    heat = np.repeat(np.repeat(heat, factor, axis=0), factor, axis=1).astype(np.float32)
    grey = base.astype(np.float32).mean(axis=-1, keepdims=True)
    return np.rint(ATTENTION_BASE * grey + (1.0 - ATTENTION_BASE) * heat).astype(np.uint8)
