"""The 16-D VAE tab: a slider per latent number, random samples, and similar images around a digit."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSettings, QSize, Qt
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QButtonGroup,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from explorer.chapters.common import ViewJob, read_setting, tile
from explorer.chapters.latent.backend import (
    MAX_SEED,
    SIXTEEN,
    ModelShelf,
    TestDigits,
    centre_drawing,
    decode_point,
    latent_sample,
    similar_images,
)
from explorer.widgets.drawing_canvas import DrawingCanvas
from explorer.widgets.image_panel import ImagePanel
from explorer.widgets.stage_diagram import grey_pixmap
from explorer.workers import WorkerPool

Z_RANGE = 3.0  # the sliders span ±3 standard deviations of the prior N(0, 1)
LATENT = 16
PICKER_DIGITS = 8  # fresh digits offered as the source of similar images
VARIATION_ROWS, VARIATION_COLUMNS = 4, 6


class SixteenTab(QWidget):
    """Walk the VAE-16D's latent space by hand, at random, or around one digit."""

    def __init__(self, shelf: ModelShelf, digits: TestDigits, pool: WorkerPool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.shelf, self.digits = shelf, digits
        self.similar_mean: np.ndarray | None = None  # the source digit's code mean
        self.mean_image: np.ndarray | None = None
        self.variations: np.ndarray | None = None  # uint8 (count, 28, 28)
        self._drawing = False  # the drawing, not a picked digit, is the source
        self._picked = 0  # index of the picked fresh digit
        self.z_job = ViewJob(pool, self._show_z_decode, name="16-D VAE")
        self.similar_job = ViewJob(pool, self._show_similar, name="Similar images")
        self._build_controls()
        self._build_view()
        self._connect()

    def _build_controls(self) -> None:
        self.random_button = QPushButton("Random sample (R)")
        self.random_button.setToolTip("z ~ N(0, I) drawn with the next seed: what the VAE makes from pure chance")
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)
        self.seed_spin.setToolTip("Seed of the random sample and of the variations' ε: the same seed, the same pictures")
        self.zero_button = QPushButton("All zero")
        self.zero_button.setToolTip("z = 0: the centre of the prior")
        self.use_mean_button = QPushButton("Sliders to μ")
        self.use_mean_button.setToolTip("Set the 16 sliders to the code mean μ of the chosen digit")
        self.sigma_slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
        self.sigma_slider.setRange(0.0, 2.0)
        self.sigma_slider.setDecimals(2)
        self.sigma_slider.setSingleStep(0.05)
        self.sigma_slider.setValue(0.5)
        sample_box = QGroupBox("Sample z")
        form = QFormLayout(sample_box)
        form.addRow(self.random_button)
        form.addRow("Seed", self.seed_spin)
        row = QHBoxLayout()
        row.addWidget(self.zero_button)
        row.addWidget(self.use_mean_button)
        form.addRow(row)
        similar_box = QGroupBox("Similar images")
        similar = QVBoxLayout(similar_box)
        text = QLabel("Encode a digit to its code mean μ, then decode μ + σ·ε for random ε ~ N(0, I): "
                      "the noise a VAE is trained with.")  # fmt: skip
        text.setWordWrap(True)
        similar.addWidget(text)
        similar.addWidget(QLabel("σ, the spread around μ"))
        similar.addWidget(self.sigma_slider)
        self.controls = QWidget()
        layout = QVBoxLayout(self.controls)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(sample_box)
        layout.addWidget(similar_box)

    def _build_view(self) -> None:
        self.sliders: list[QLabeledDoubleSlider] = []
        sliders_box = QGroupBox("The 16 numbers of z (each −3 … 3)")
        grid = QGridLayout(sliders_box)
        grid.setVerticalSpacing(1)
        for i in range(LATENT):
            slider = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
            slider.setRange(-Z_RANGE, Z_RANGE)
            slider.setDecimals(2)
            slider.setSingleStep(0.05)
            slider.setValue(0.0)
            row, column = i % 8, i // 8
            grid.addWidget(QLabel(f"z<sub>{i + 1}</sub>"), row, 2 * column)
            grid.addWidget(slider, row, 2 * column + 1)
            self.sliders.append(slider)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.z_panel = ImagePanel("z decoded")
        self.z_panel.setFixedSize(200, 218)
        top = QHBoxLayout()
        top.addWidget(sliders_box, 1)
        top.addWidget(self.z_panel)

        self.picker_buttons: list[QToolButton] = []
        self.picker_group = QButtonGroup(self)
        picker = QGridLayout()
        picker.setSpacing(2)
        for i in range(PICKER_DIGITS):
            button = QToolButton()
            button.setCheckable(True)
            button.setIconSize(QSize(40, 40))
            button.setIcon(QIcon(grey_pixmap(self.digits.images[i], 40)))
            button.setToolTip(f"A fresh {self.digits.labels[i]}")
            self.picker_group.addButton(button, i)
            picker.addWidget(button, i // 4, i % 4)
            self.picker_buttons.append(button)
        self.picker_buttons[0].setChecked(True)
        self.canvas = DrawingCanvas(scale=4)
        self.clear_button = QPushButton("Clear")
        choose = QVBoxLayout()
        choose.addWidget(QLabel("Pick a digit…"))
        choose.addLayout(picker)
        choose.addWidget(QLabel("…or draw one:"))
        canvas_row = QHBoxLayout()
        canvas_row.addWidget(self.canvas)
        canvas_row.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignBottom)
        canvas_row.addStretch(1)
        choose.addLayout(canvas_row)
        choose.addStretch(1)
        self.source_panel = ImagePanel("digit")
        self.mean_panel = ImagePanel("μ decoded")
        for panel in (self.source_panel, self.mean_panel):
            panel.setFixedSize(96, 114)
        self.variations_panel = ImagePanel("μ + σ·ε decoded")
        for panel in (self.z_panel, self.source_panel, self.mean_panel, self.variations_panel):
            panel.view_box.setMouseEnabled(x=False, y=False)
        pair = QVBoxLayout()
        pair.addWidget(self.source_panel)
        pair.addWidget(self.mean_panel)
        pair.addStretch(1)
        similar_box = QGroupBox("Similar images: samples around one digit's code")
        bottom = QHBoxLayout(similar_box)
        bottom.addLayout(choose)
        bottom.addLayout(pair)
        bottom.addWidget(self.variations_panel, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(similar_box, 1)

    def _connect(self) -> None:
        for slider in self.sliders:
            slider.valueChanged.connect(self.update_decode)
        self.random_button.clicked.connect(self.random_sample)
        self.seed_spin.valueChanged.connect(self._on_seed_changed)
        self.zero_button.clicked.connect(lambda: self.set_z(np.zeros(LATENT)))
        self.use_mean_button.clicked.connect(self.sliders_to_mean)
        self.sigma_slider.valueChanged.connect(self.update_similar)
        self.picker_group.idClicked.connect(self._on_digit_picked)
        self.canvas.changed.connect(self._on_drawing_changed)
        self.clear_button.clicked.connect(self.canvas.clear)
        self.shelf.changed.connect(self.refresh)

    def jobs(self) -> list[ViewJob]:
        return [self.z_job, self.similar_job]

    def refresh(self) -> None:
        self.update_decode()
        self.update_similar()

    # ------------------------------------------------------------------ the 16 sliders
    def z(self) -> np.ndarray:
        return np.array([slider.value() for slider in self.sliders])

    def set_z(self, z: np.ndarray) -> None:
        """Move the 16 sliders (clipped to ±3) and decode once."""
        for slider, value in zip(self.sliders, np.clip(z, -Z_RANGE, Z_RANGE)):
            slider.blockSignals(True)
            slider.setValue(float(value))
            slider.blockSignals(False)
        self.update_decode()

    def update_decode(self) -> None:
        self.z_job.submit(decode_point, self.shelf.model(SIXTEEN), self.z())

    def _show_z_decode(self, image: np.ndarray) -> None:
        self.z_panel.set_image(image)

    def random_sample(self) -> None:
        """z ~ N(0, I) with the next seed (the seed box shows it)."""
        self.seed_spin.setValue((self.seed_spin.value() + 1) % (MAX_SEED + 1))

    def _on_seed_changed(self) -> None:
        self.set_z(latent_sample(self.seed_spin.value(), LATENT))
        self.update_similar()

    def sliders_to_mean(self) -> None:
        if self.similar_mean is not None:
            self.set_z(self.similar_mean)

    # ------------------------------------------------------------------ similar images
    def source_digit(self) -> np.ndarray:
        """The digit the variations are drawn around: the drawing, or the picked fresh digit."""
        if self._drawing:
            return centre_drawing(self.canvas.image())
        return self.digits.images[self._picked]

    def pick_digit(self, index: int) -> None:
        """Use the ``index``-th offered fresh digit as the source."""
        self.picker_buttons[index].setChecked(True)
        self._on_digit_picked(index)

    def _on_digit_picked(self, index: int) -> None:
        self._picked = index
        self._drawing = False
        self.update_similar()

    def _on_drawing_changed(self) -> None:
        self._drawing = not self.canvas.is_empty()
        # A drawing replaces the picked digit; clearing it brings the picked digit back.
        if self._drawing:
            self.picker_group.setExclusive(False)  # an exclusive group cannot have none checked
            for button in self.picker_buttons:
                button.setChecked(False)
            self.picker_group.setExclusive(True)
        else:
            self.picker_buttons[self._picked].setChecked(True)
        self.update_similar()

    def update_similar(self) -> None:
        source = self.source_digit()
        self.source_panel.set_image(source)
        self.source_panel.set_title("your drawing" if self._drawing else "digit")
        count = VARIATION_ROWS * VARIATION_COLUMNS
        self.similar_job.submit(
            similar_images, self.shelf.model(SIXTEEN), source, self.sigma_slider.value(), self.seed_spin.value(), count
        )

    def _show_similar(self, result: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
        self.similar_mean, self.mean_image, self.variations = result
        self.mean_panel.set_image(self.mean_image)
        self.variations_panel.set_image(tile(self.variations, VARIATION_COLUMNS, gap=2, fill=90))
        self.variations_panel.set_title(f"μ + σ·ε decoded: σ = {self.sigma_slider.value():.2f}, seed {self.seed_spin.value()}")

    # ------------------------------------------------------------------ settings
    def save_settings(self, settings: QSettings) -> None:
        settings.setValue("z", ",".join(f"{value:.4f}" for value in self.z()))
        settings.setValue("seed", self.seed_spin.value())
        settings.setValue("sigma", self.sigma_slider.value())
        settings.setValue("source", self._picked)

    def restore_settings(self, settings: QSettings) -> None:
        def floats(text: object) -> np.ndarray:
            return np.array([float(part) for part in str(text).split(",")])

        if (seed := read_setting(settings, "seed", int, lambda v: 0 <= v <= MAX_SEED)) is not None:
            self.seed_spin.blockSignals(True)  # the saved z, not this seed's sample
            self.seed_spin.setValue(seed)
            self.seed_spin.blockSignals(False)
        if (z := read_setting(settings, "z", floats, lambda v: v.shape == (LATENT,) and np.isfinite(v).all())) is not None:
            self.set_z(z)
        if (sigma := read_setting(settings, "sigma", float, lambda v: 0.0 <= v <= 2.0)) is not None:
            self.sigma_slider.setValue(sigma)
        if (source := read_setting(settings, "source", int, lambda v: 0 <= v < PICKER_DIGITS)) is not None:
            self.picker_buttons[source].setChecked(True)
            self._picked = source
        self.update_similar()
