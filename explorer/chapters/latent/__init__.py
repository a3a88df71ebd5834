"""The Latent space chapter: autoencoders and VAEs on digits, and their latent spaces to touch.

Four tabs share one shelf of models (the shipped AE-2D, VAE-2D and VAE-16D, or
ones trained or loaded here): the two 2-D maps side by side (``map_tab``), the
16 sliders, random samples and similar images of the VAE-16D (``sixteen_tab``),
walks between two digits (``interpolate_tab``) and training (``train_tab``). A
diagram of a model's stages stays on top (``chapter``).

Importing this package does not import torch: the model calls in ``backend``
import it inside, and run in workers (``explorer.workers``), numpy in and out.
"""

from explorer.chapters.latent.chapter import LatentChapter

__all__ = ["LatentChapter"]
