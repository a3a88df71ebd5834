"""The chapter registry, in lecture order.  Register only chapters that work."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from explorer.chapters.base import Chapter


@dataclass(frozen=True)
class ChapterEntry:
    name: str  # command-line name, e.g. "pixels"
    title: str  # sidebar title
    module: str  # imported when the chapter is first opened
    class_name: str

    def load(self) -> type[Chapter]:
        return getattr(importlib.import_module(self.module), self.class_name)


CHAPTERS: tuple[ChapterEntry, ...] = (
    ChapterEntry("pixels", "Pixels", "explorer.chapters.pixels", "PixelsChapter"),
    ChapterEntry("noise", "Noise", "explorer.chapters.noise", "NoiseChapter"),
    ChapterEntry("latent", "Latent space", "explorer.chapters.latent", "LatentChapter"),
    ChapterEntry("gan", "GANs", "explorer.chapters.gan", "GanChapter"),
    ChapterEntry("diffusion", "Diffusion", "explorer.chapters.diffusion", "DiffusionChapter"),
    ChapterEntry("text2img", "Text to image", "explorer.chapters.text2img", "TextToImageChapter"),
)


def chapter_names() -> list[str]:
    return [entry.name for entry in CHAPTERS]


def chapter_entry(name: str) -> ChapterEntry:
    for entry in CHAPTERS:
        if entry.name == name:
            return entry
    raise KeyError(f"unknown chapter {name!r} (choose from {', '.join(chapter_names())})")
