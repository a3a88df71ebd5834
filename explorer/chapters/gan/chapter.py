"""The GAN chapter: two tabs, 2-D points (as GAN Lab) and images (a DCGAN on digits)."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from explorer.chapters.base import AppContext, ExportJob, TabbedChapter
from explorer.chapters.gan.images_tab import ImagesTab
from explorer.chapters.gan.points_tab import PointsTab


class GanChapter(TabbedChapter):
    """A generator learns to fool a discriminator that learns to tell real from generated."""

    name = "gan"
    title = "GANs"
    explanation = (
        "A <b>generator</b> G turns random noise z into a sample; a <b>discriminator</b> D looks "
        "at a sample and says how likely it is real. They train in turns: D learns to tell the real "
        "data from G's output, then G moves its output where D says “real”. When it works, G's "
        "samples end up where the data is; when it fails, G collapses onto a few modes or the "
        "losses blow up."
        "<p><b>Try:</b> in <i>2-D points</i> press <b>Space</b> to train and watch the generated "
        "points (and D's heat map) chase the real ones; step only D or only G; change the learning "
        "rates while it runs. In <i>Images</i> watch the same 64 noise vectors turn into digits.</p>"
    )

    POINTS_TAB, IMAGES_TAB = range(2)
    TAB_TITLES = ("2-D points", "Images")

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        from models.device import pick_device, set_torch_threads

        set_torch_threads(leave_for_gui=1)
        self.device = pick_device(context.device)
        self.points_tab = PointsTab(context.workers, self.device)
        self.images_tab = ImagesTab(context.workers, self.device)
        self.add_tabs((self.points_tab, self.images_tab), self.TAB_TITLES)
        self.controls.addStretch(1)
        for page in self.tab_pages:
            page.message.connect(self.statusMessage)

    def export_job(self) -> ExportJob | None:
        """The current tab's training timelapse."""
        return self.tab_pages[self.tabs.currentIndex()].export_job()
