"""The Latent space chapter: the models, the diagram on top, and the four tabs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from explorer.chapters.base import AppContext, Chapter, ExportJob
from explorer.chapters.common import ViewJob, read_setting
from explorer.chapters.latent.backend import (
    SIXTEEN,
    TEST_COUNT,
    ModelShelf,
    Slot,
    TestDigits,
    load_shipped,
    model_label,
    reconstruct,
)
from explorer.chapters.latent.interpolate_tab import InterpolateTab
from explorer.chapters.latent.map_tab import MapTab
from explorer.chapters.latent.sixteen_tab import SixteenTab
from explorer.chapters.latent.train_tab import TrainTab
from explorer.widgets.model_box import ModelBox
from explorer.widgets.stage_diagram import StageDiagram
from models.data import make_digits


class LatentChapter(Chapter):
    """Autoencoder vs VAE: maps, sliders, similar images, interpolation and training."""

    name = "latent"
    title = "Latent space"
    explanation = (
        "An <b>encoder</b> squeezes a 28×28 digit (784 numbers) into a few numbers, its "
        "<i>latent code</i>; a <b>decoder</b> rebuilds the digit from them. A plain "
        "<b>autoencoder</b> maps each digit to one point. A <b>VAE</b>'s encoder gives a small "
        "cloud (a mean and a spread), and training decodes random points of it, so nearby "
        "codes decode to similar digits: its space has no holes. The two 2-D models also learn "
        "to tell the digit from their code (a <i>digit hint</i>: a small classifier reads it), "
        "which sorts the maps by digit; without it, stroke thickness takes both numbers."
        "<p><b>Try:</b> drag across both maps and see what lives between the clusters "
        "(<b>G</b>: a grid of decodes); move the 16 sliders or press <b>R</b> for a random "
        "sample; raise σ around a digit; walk from one digit to another (<b>P</b>: a random "
        "pair); train your own model.</p>"
    )

    MAP_TAB, SIXTEEN_TAB, INTERPOLATE_TAB, TRAIN_TAB = range(4)

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(context, parent)
        from models.autoencoder import FRESH_SEED, SHIPPED_AUTOENCODERS, load_evaluator
        from models.device import pick_device, set_torch_threads

        set_torch_threads(leave_for_gui=1)
        self.device = pick_device(context.device)
        images, labels = make_digits(TEST_COUNT, seed=FRESH_SEED, cache=True)
        self.digits = TestDigits(images, labels, FRESH_SEED)
        shipped, notes = {}, []
        for name in SHIPPED_AUTOENCODERS:
            shipped[name], note = load_shipped(name, self.device)
            notes += [f"{note} The {model_label(name)} is untrained."] if note else []
        self.shelf = ModelShelf(shipped, self)
        self.evaluator = load_evaluator(self.device)
        self.diagram_index = 0  # which fresh digit goes through the diagram

        pool = context.workers
        self.map_tab = MapTab(self.shelf, self.digits, pool, self.evaluator)
        self.sixteen_tab = SixteenTab(self.shelf, self.digits, pool)
        self.interpolate_tab = InterpolateTab(self.shelf, self.digits, pool)
        self.train_tab = TrainTab(self.shelf, self.digits, pool, self.device)
        self.tab_pages = (self.map_tab, self.sixteen_tab, self.interpolate_tab, self.train_tab)
        self.diagram_job = ViewJob(pool, self._show_reconstruction, name="Diagram")

        self._build_controls()
        self._build_views()
        self._build_shortcuts()
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.diagram_combo.currentIndexChanged.connect(self.update_diagram)
        self.diagram_next.clicked.connect(self.next_diagram_digit)
        self.load_button.clicked.connect(self.load_weights_dialog)
        self.restore_button.clicked.connect(self.restore_shipped)
        self.train_tab.message.connect(self.statusMessage)
        self.shelf.changed.connect(self._on_models_changed)

        with self._immediate():
            self._on_models_changed()
            for page in self.tab_pages[:-1]:
                page.refresh()
        self._on_tab_changed(self.tabs.currentIndex())
        if notes:
            # Shown once the window has connected the status bar.
            QTimer.singleShot(0, self, lambda: self.statusMessage.emit(" ".join(notes)))

    # ------------------------------------------------------------------ building
    def _build_controls(self) -> None:
        for page in self.tab_pages:
            self.controls.addWidget(page.controls)
        box = ModelBox(
            "Models in use",
            load_tip="Use an autoencoder saved here or by 'diffusion-explorer train ae|vae'",
            restore_tip="Put the shipped models back in every tab",
        )
        self.slots_label, self.load_button, self.restore_button = box.label, box.load_button, box.restore_button
        self.controls.addWidget(box)
        self.controls.addStretch(1)

    def _build_views(self) -> None:
        self.diagram_combo = QComboBox()
        self.diagram_next = QToolButton()
        self.diagram_next.setText("Another digit")
        self.diagram_next.setToolTip("Send another fresh digit through the model")
        self.diagram = StageDiagram()
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>Encoder → latent code → decoder</b>: the tensor shape at each stage of the"))
        header.addWidget(self.diagram_combo)
        header.addStretch(1)
        header.addWidget(self.diagram_next)
        self.tabs = QTabWidget()
        for page, title in zip(self.tab_pages, ("Map", "16-D VAE", "Interpolate", "Train")):
            self.tabs.addTab(page, title)
        layout = QVBoxLayout(self.views)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(header)
        layout.addWidget(self.diagram)
        layout.addWidget(self.tabs, 1)

    def _build_shortcuts(self) -> None:
        # Each key works on its own tab only (see _on_tab_changed).
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        self._shortcuts = {
            self.MAP_TAB: QShortcut(QKeySequence(Qt.Key.Key_G), self, self.map_tab.grid_check.toggle, context=context),
            self.SIXTEEN_TAB: QShortcut(QKeySequence(Qt.Key.Key_R), self, self.sixteen_tab.random_sample, context=context),
            self.INTERPOLATE_TAB: QShortcut(QKeySequence(Qt.Key.Key_P), self, self.interpolate_tab.random_pair, context=context),
        }

    def _on_tab_changed(self, index: int) -> None:
        for i, page in enumerate(self.tab_pages):
            page.controls.setVisible(i == index)
        for tab, shortcut in self._shortcuts.items():
            shortcut.setEnabled(tab == index)
        # The diagram follows the tab's model.
        follow = {
            self.MAP_TAB: "vae-2d",
            self.SIXTEEN_TAB: SIXTEEN,
            self.INTERPOLATE_TAB: self.interpolate_tab.model_name(),
            self.TRAIN_TAB: self.train_tab.config().name,
        }
        if index in follow and (row := self.diagram_combo.findData(follow[index])) >= 0:
            self.diagram_combo.setCurrentIndex(row)

    # ------------------------------------------------------------------ models
    def _on_models_changed(self) -> None:
        current = self.diagram_combo.currentData() or "vae-2d"
        self.diagram_combo.blockSignals(True)
        self.diagram_combo.clear()
        for name in self.shelf.names():
            self.diagram_combo.addItem(model_label(name), name)
        self.diagram_combo.setCurrentIndex(max(0, self.diagram_combo.findData(current)))
        self.diagram_combo.blockSignals(False)
        self.slots_label.setText("<br>".join(f"<b>{model_label(n)}</b>: {s.origin}" for n, s in self.shelf.slots.items()))
        self.restore_button.setEnabled(not self.shelf.all_shipped())
        self.update_diagram()

    def load_weights(self, path: str | Path) -> bool:
        """Use the autoencoder saved at ``path``; on any problem say why and keep the models in use."""
        from models.autoencoder import load_autoencoder
        from models.weights import WeightsError

        path = Path(path)
        try:
            model, meta = load_autoencoder(path, device=self.device)
        except (WeightsError, OSError) as error:
            self.statusMessage.emit(f"{error}. The models in use are unchanged.")
            return False
        name = model.config.name
        self.shelf.install(Slot(name, model, meta, f"loaded from {path.name}"))
        self.statusMessage.emit(f"Loaded {path.name}: it is the {model_label(name)} in every tab now.")
        return True

    def load_weights_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load autoencoder weights", "", "Weights (*.safetensors);;All files (*)")
        if path:
            self.load_weights(path)

    def restore_shipped(self) -> None:
        self.shelf.restore()
        self.statusMessage.emit("The shipped models are back in every tab.")

    # ------------------------------------------------------------------ diagram
    def update_diagram(self) -> None:
        model = self.shelf.model(self.diagram_combo.currentData() or "vae-2d")
        image = self.digits.images[self.diagram_index]
        self.diagram.set_stages(model.stages())
        self.diagram.set_images(image, None)
        self.diagram_job.submit(reconstruct, model, image)

    def _show_reconstruction(self, image) -> None:
        self.diagram.set_images(self.digits.images[self.diagram_index], image)

    def next_diagram_digit(self) -> None:
        self.diagram_index = (self.diagram_index + 1) % TEST_COUNT
        self.update_diagram()

    # ------------------------------------------------------------------ state for tests and benchmarks
    def jobs(self) -> list[ViewJob]:
        return [self.diagram_job, *(job for page in self.tab_pages[:-1] for job in page.jobs())]

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """Compute the views here and now (while the chapter is built or restored), not in workers."""
        for job in self.jobs():
            job.immediate = True
        try:
            yield
        finally:
            for job in self.jobs():
                job.immediate = False

    @property
    def busy(self) -> bool:
        """Whether a view is still being computed (training aside)."""
        return self.map_tab.waiting or any(job.busy for job in self.jobs())

    # ------------------------------------------------------------------ Chapter hooks
    def export_job(self) -> ExportJob:
        """The Interpolate tab's walk in its chosen mode."""
        return self.interpolate_tab.export_job()

    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("tab", self.tabs.currentIndex())
        settings.setValue("diagram_digit", self.diagram_index)
        for page in self.tab_pages:
            page.save_settings(settings)

    def restore_settings(self, settings: QSettings) -> None:
        with self._immediate():
            for page in self.tab_pages:
                page.restore_settings(settings)
            if (digit := read_setting(settings, "diagram_digit", int, lambda v: 0 <= v < TEST_COUNT)) is not None:
                self.diagram_index = digit
                self.update_diagram()
            if (tab := read_setting(settings, "tab", int, lambda v: 0 <= v < self.tabs.count())) is not None:
                self.tabs.setCurrentIndex(tab)

    def shutdown(self) -> None:
        self.map_tab.shutdown()
        self.train_tab.shutdown()
        for job in self.jobs():
            job.cancel()
