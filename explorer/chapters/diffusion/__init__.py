"""The Diffusion chapter: the noise-prediction objective, reverse diffusion step by step,
samplers side by side, inside the U-Net, and training."""

from explorer.chapters.diffusion.chapter import DiffusionChapter

__all__ = ["DiffusionChapter"]
