"""The Text to image chapter: CLIP, the latent diffusion pipeline, two prompts, image to image."""

from explorer.chapters.text2img.chapter import TextToImageChapter

__all__ = ["TextToImageChapter"]
