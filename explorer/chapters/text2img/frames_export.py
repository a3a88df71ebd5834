"""The pictures of a text-to-image run, as the tabs export them and as
``diffusion-explorer export reverse --model shapes`` writes them (one function for both).

Numpy only: no Qt, no torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from models.ldm import TextFrame

EXPORT_SCALE = 8  # a 32×32 image becomes 256×256
GAP_FILL = 255  # the white column between the two panels


def upscale_rgb(image: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (h, w, 3) → (h·scale, w·scale, 3) with square pixels (nearest neighbour)."""
    return np.ascontiguousarray(np.repeat(np.repeat(image, scale, axis=0), scale, axis=1))


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int) -> np.ndarray:
    """Two uint8 (H, W, 3) pictures with a white column of ``gap`` pixels between them."""
    column = np.full((left.shape[0], gap, 3), GAP_FILL, dtype=np.uint8)
    return np.ascontiguousarray(np.concatenate([left, column, right], axis=1))


def text_frame_images(frames: Iterable[TextFrame], panels: bool = False, scale: int = EXPORT_SCALE,
                      image: int = 0) -> list[np.ndarray]:
    """A run's pictures, uint8 (H, W, 3): one per step, then the final image.

    Parameters
    ----------
    frames
        The :class:`~models.ldm.TextFrame` of a whole run (``generate_frames`` with
        ``decode=True``), in order.
    panels
        False: z_t decoded at each step. True: z_t decoded | ẑ₀ decoded side by side
        (the final picture shows the final image in both halves).
    scale
        Each 32×32 image is drawn ``scale`` times larger, nearest neighbour.
    image
        Which image of the batch.

    Returns
    -------
    list of arrays
        ``steps + 1`` pictures of one size; the last is the final decoded image.
    """
    pictures: list[np.ndarray] = []
    last = None
    for frame in frames:
        if frame.image is None or frame.x0_image is None:
            raise ValueError("the frames carry no decoded images: sample with decode=True")
        noisy = upscale_rgb(frame.image[image], scale)
        pictures.append(side_by_side(noisy, upscale_rgb(frame.x0_image[image], scale), scale) if panels else noisy)
        last = frame
    if last is None:
        return pictures
    if last.final_image is None:
        raise ValueError(f"the run is incomplete: {last.index + 1} of {last.total} steps")
    final = upscale_rgb(last.final_image[image], scale)
    pictures.append(side_by_side(final, final, scale) if panels else final)
    return pictures
