"""The GAN chapter: a generator and a discriminator trained against each other, live,
on 2-D points and on images."""

from explorer.chapters.gan.chapter import GanChapter

__all__ = ["GanChapter"]
