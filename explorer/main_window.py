"""The main window: chapters in lecture order, menus, status bar, drag and drop, settings."""

from __future__ import annotations

import platform
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings
from PySide6.QtGui import QAction, QActionGroup, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QWidget,
)

from explorer import __version__
from explorer.chapters import CHAPTERS, ChapterEntry
from explorer.chapters.base import AppContext, Chapter, ExportJob
from explorer.device import DEVICE_LABELS, available_devices
from explorer.settings import open_settings, read_str_list
from explorer.workers import WorkerPool
from models.images import (
    DEFAULT_IMAGE,
    IMAGE_FILE_FILTER,
    ImageLoadError,
    LoadedImage,
    builtin_image_names,
    load_builtin,
    load_image,
)

MAX_RECENT_FILES = 8
STATUS_TIMEOUT_MS = 8000

# File → Export sequence: dialog filter → (suffix, contact sheet?)
EXPORT_FILTERS = {
    "Animated GIF (*.gif)": (".gif", False),
    "Animated WebP (*.webp)": (".webp", False),
    "Animated PNG (*.apng)": (".apng", False),
    "MP4 video (*.mp4)": (".mp4", False),
    "Contact sheet (*.png)": (".png", True),
    "Folder of numbered PNG frames (*)": ("", False),
}


class MainWindow(QMainWindow):
    """Diffusion Explorer's window.  Chapters are built the first time they are shown."""

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else open_settings()
        self.workers = WorkerPool(self)
        self.context = AppContext(
            image=load_builtin(DEFAULT_IMAGE),
            workers=self.workers,
            device=str(self.settings.value("device", "cpu")),
        )
        self.chapters: dict[str, Chapter] = {}
        self._export_worker = None

        self.setWindowTitle("Diffusion Explorer")
        self.setAcceptDrops(True)
        self._build_central()
        self._build_status_bar()
        self._build_menus()
        self.workers.errorOccurred.connect(self.show_error)
        self._restore_window()

    # ----------------------------------------------------------------- building
    def _build_central(self) -> None:
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("chapterList")
        self.sidebar.setFixedWidth(170)
        self.sidebar.setStyleSheet(
            "QListWidget#chapterList { font-size: 14px; border: none; background: #eef1f7; }"
            "QListWidget#chapterList::item { padding: 10px 8px; }"
            "QListWidget#chapterList::item:selected { background: #3b6fd8; color: white; }"
        )
        for number, entry in enumerate(CHAPTERS, start=1):
            item = QListWidgetItem(f"{number}  {entry.title}")
            item.setToolTip(f"Ctrl+{number}")
            self.sidebar.addItem(item)
        self.pages = QStackedWidget()
        for _ in CHAPTERS:
            self.pages.addWidget(QWidget())  # placeholder until the chapter is first shown
        self.sidebar.currentRowChanged.connect(self.show_chapter_at)

        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.image_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(200)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Stop")
        self.cancel_button.setToolTip("Stop the export; nothing is left half-written")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel_export)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        bar.addPermanentWidget(self.image_label)
        self._update_image_label()

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(file_menu, "&Open image…", self.open_image_dialog, QKeySequence.StandardKey.Open)
        builtin_menu = file_menu.addMenu("Open &built-in image")
        for name in builtin_image_names():
            action = builtin_menu.addAction(name)
            action.triggered.connect(lambda _=False, name=name: self.open_builtin(name))
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        self.export_action = self._action(file_menu, "&Export sequence…", self.export_dialog, "Ctrl+E")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        chapter_menu = self.menuBar().addMenu("&Chapters")
        for number, entry in enumerate(CHAPTERS, start=1):
            self._action(chapter_menu, entry.title, lambda _=False, row=number - 1: self.sidebar.setCurrentRow(row), f"Ctrl+{number}")

        self.device_menu = self.menuBar().addMenu("&Device")
        self.device_menu.setToolTipsVisible(True)
        self.device_group = QActionGroup(self)
        self.device_menu.aboutToShow.connect(self._fill_device_menu)

        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About Diffusion Explorer", self.show_about)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = menu.addAction(text)
        action.triggered.connect(slot)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        return action

    # ----------------------------------------------------------------- chapters
    def chapter(self, name: str) -> Chapter:
        """The chapter called ``name``, building it if needed."""
        for row, entry in enumerate(CHAPTERS):
            if entry.name == name:
                return self._ensure_chapter(row, entry)
        raise KeyError(name)

    def current_chapter(self) -> Chapter | None:
        widget = self.pages.currentWidget()
        return widget if isinstance(widget, Chapter) else None

    def show_chapter(self, name: str) -> Chapter:
        row = [entry.name for entry in CHAPTERS].index(name)
        self.sidebar.setCurrentRow(row)
        return self.chapters[name]

    def show_chapter_at(self, row: int) -> None:
        if not 0 <= row < len(CHAPTERS):
            return
        chapter = self._ensure_chapter(row, CHAPTERS[row])
        self.pages.setCurrentWidget(chapter)
        if self.sidebar.currentRow() != row:
            self.sidebar.setCurrentRow(row)

    def _ensure_chapter(self, row: int, entry: ChapterEntry) -> Chapter:
        chapter = self.chapters.get(entry.name)
        if chapter is not None:
            return chapter
        chapter = entry.load()(self.context)
        chapter.statusMessage.connect(self.show_message)
        self.settings.beginGroup(f"chapters/{entry.name}")
        try:
            chapter.restore_settings(self.settings)
        finally:
            self.settings.endGroup()
        placeholder = self.pages.widget(row)
        self.pages.insertWidget(row, chapter)
        self.pages.removeWidget(placeholder)
        placeholder.deleteLater()
        self.chapters[entry.name] = chapter
        return chapter

    # ------------------------------------------------------------------- images
    def open_image_dialog(self) -> None:
        folder = str(self.settings.value("lastFolder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open image", folder, IMAGE_FILE_FILTER)
        if path:
            self.open_image(path)

    def open_image(self, path: str | Path) -> bool:
        """Load an image file into every chapter; on failure say why and keep the current image."""
        try:
            image = load_image(path)
        except ImageLoadError as error:
            self.show_error(str(error))
            return False
        self.settings.setValue("lastFolder", str(Path(path).resolve().parent))
        self._add_recent_file(str(Path(path).resolve()))
        self.set_image(image)
        return True

    def open_builtin(self, name: str) -> None:
        self.set_image(load_builtin(name))

    def set_image(self, image: LoadedImage) -> None:
        self.context.image = image
        for chapter in self.chapters.values():
            chapter.set_image(image)
        self._update_image_label()
        height, width = image.pixels.shape[:2]
        notes = "; ".join(image.notes)
        self.show_message(f"Opened {image.name} ({width}×{height})" + (f": {notes}" if notes else ""))

    def _update_image_label(self) -> None:
        height, width = self.context.image.pixels.shape[:2]
        self.image_label.setText(f"{self.context.image.name} · {width}×{height}")

    def recent_files(self) -> list[str]:
        return read_str_list(self.settings, "recentFiles")

    def _add_recent_file(self, path: str) -> None:
        recent = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue("recentFiles", recent[:MAX_RECENT_FILES])

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.recent_files()
        for path in recent:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, path=path: self.open_image(path))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list").triggered.connect(lambda: self.settings.remove("recentFiles"))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt override)
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt override)
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.open_image(paths[0])

    # ------------------------------------------------------------------- export
    def export_dialog(self) -> None:
        chapter = self.current_chapter()
        job = chapter.export_job() if chapter else None
        if job is None:
            self.show_message("This chapter has nothing to export yet.")
            return
        folder = Path(str(self.settings.value("lastExportFolder", str(Path.home()))))
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export sequence", str(folder / job.default_name), ";;".join(EXPORT_FILTERS)
        )
        if not path:
            return
        suffix, sheet = EXPORT_FILTERS.get(chosen, ("", False))
        out = Path(path)
        if suffix and out.suffix.lower() != suffix:
            out = out.with_suffix(suffix)
        self.settings.setValue("lastExportFolder", str(out.parent))
        self.start_export(job, out, sheet=sheet)

    def start_export(self, job: ExportJob, out: Path, sheet: bool = False):
        """Write ``job`` to ``out`` in a worker; progress in the status bar, Stop cancels."""
        if self._export_worker is not None:
            self.show_message("An export is already running.")
            return None
        self.progress.setRange(0, job.count * 2)  # gathering frames, then writing them
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.show_message(f"Exporting {job.count} frames to {out}…")
        self._export_worker = self.workers.start(
            _export_steps,
            job,
            out,
            sheet,
            on_yield=self.progress.setValue,
            # Connected before the worker starts: a short export may end before start() returns.
            on_returned=lambda path: self.show_message(f"Exported {job.count} frames to {path}"),
            on_aborted=lambda: self.show_message("Export stopped; nothing was written."),
            on_finished=self._export_ended,
            name="export",
        )
        return self._export_worker

    def cancel_export(self) -> None:
        if self._export_worker is not None:
            self.workers.stop(self._export_worker)

    def _export_ended(self) -> None:
        self._export_worker = None
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)

    # ------------------------------------------------------------------- device
    def _fill_device_menu(self) -> None:
        self.device_menu.clear()
        for device in available_devices():
            action = self.device_menu.addAction(DEVICE_LABELS[device])
            action.setCheckable(True)
            action.setChecked(device == self.context.device)
            action.setToolTip("Where model chapters train and sample")
            action.triggered.connect(lambda _=False, device=device: self.set_device(device))
            self.device_group.addAction(action)

    def set_device(self, device: str) -> None:
        self.context.device = device
        self.settings.setValue("device", device)
        self.show_message(f"Models will run on {DEVICE_LABELS.get(device, device)}.")

    # ------------------------------------------------------------ status, about
    def show_message(self, text: str) -> None:
        self.statusBar().setStyleSheet("")
        self.statusBar().showMessage(text, STATUS_TIMEOUT_MS)

    def show_error(self, text: str) -> None:
        """One clear message; the application keeps running."""
        self.statusBar().setStyleSheet("QStatusBar { color: #b00020; font-weight: 600; }")
        self.statusBar().showMessage(text, 2 * STATUS_TIMEOUT_MS)

    def about_text(self) -> str:
        def version(distribution: str) -> str:
            try:
                return metadata.version(distribution)
            except metadata.PackageNotFoundError:
                return "not installed"

        from PySide6 import __version__ as pyside_version
        from PySide6.QtCore import qVersion

        rows = [
            ("Diffusion Explorer", __version__),
            ("Python", platform.python_version()),
            ("Qt / PySide6", f"{qVersion()} / {pyside_version}"),
            ("pyqtgraph", version("pyqtgraph")),
            ("superqt", version("superqt")),
            ("NumPy", version("numpy")),
            ("Pillow", version("Pillow")),
            ("PyTorch", version("torch") + ("" if "torch" in sys.modules else " (not loaded yet)")),
            ("Device", DEVICE_LABELS.get(self.context.device, self.context.device)),
        ]
        table = "".join(f"<tr><td><b>{name}</b></td><td>&nbsp;{value}</td></tr>" for name, value in rows)
        return (
            "<p>Diffusion Explorer teaches how image generators work: pixels, noise, latent spaces, "
            f"GANs and diffusion, each one you can see and touch.</p><table>{table}</table>"
        )

    def show_about(self) -> None:
        QMessageBox.about(self, "About Diffusion Explorer", self.about_text())

    # --------------------------------------------------------- settings, close
    def _restore_window(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 860)
        names = [entry.name for entry in CHAPTERS]
        last = str(self.settings.value("window/chapter", names[0]))
        self.show_chapter_at(names.index(last) if last in names else 0)

    def save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        chapter = self.current_chapter()
        if chapter is not None:
            self.settings.setValue("window/chapter", chapter.name)
        for name, chapter in self.chapters.items():
            self.settings.beginGroup(f"chapters/{name}")
            try:
                chapter.save_settings(self.settings)
            finally:
                self.settings.endGroup()
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        self.save_settings()
        for chapter in self.chapters.values():
            chapter.shutdown()
        self.workers.stop_all()
        super().closeEvent(event)


def _export_steps(job: ExportJob, out: Path, sheet: bool) -> Iterator[int]:
    """Worker generator: gather the job's frames, then write them; yields progress."""
    from explorer.export import iter_export

    frames = []
    for frame in job.iter_frames():
        frames.append(frame)
        yield len(frames)
    for written in iter_export(frames, out, job.params, sheet=sheet):
        yield len(frames) + written
    return out


def ensure_application() -> QApplication:
    """The QApplication, created once with the names QSettings uses."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setOrganizationName("DiffusionExplorer")
        app.setApplicationName("Diffusion Explorer")
        app.setApplicationVersion(__version__)
    return app
