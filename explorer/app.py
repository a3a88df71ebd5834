"""Start the application, or render one chapter to a PNG without showing a window."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from explorer.settings import SETTINGS_FILE_VARIABLE

SCREENSHOT_PATIENCE_S = 60.0  # longest wait for a chapter's model views before the picture is taken


def run_app(argv: list[str] | None = None) -> int:
    """Open the main window; ``argv`` may name an image file to open first."""
    from explorer.main_window import MainWindow, ensure_application

    app = ensure_application()
    window = MainWindow()
    # Closing the window stops its workers; this covers quitting by other paths.
    app.aboutToQuit.connect(window.workers.stop_all)
    window.show()
    if argv:
        window.open_image(argv[0])
    return app.exec()


def render_screenshot(
    chapter: str,
    out: Path,
    size: tuple[int, int] = (1400, 860),
    image: str | None = None,
    tab: str | None = None,
) -> Path:
    """Render the whole window on ``chapter`` (and its ``tab``, by title) offscreen and save
    it as a PNG. Raises ValueError for a tab the chapter does not have.

    Uses throw-away settings so the picture does not depend on the user's.
    """
    if not os.environ.get("QT_QPA_PLATFORM"):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    from explorer.chapters import chapter_entry
    from explorer.main_window import MainWindow, ensure_application
    from models.images import open_image

    chapter_entry(chapter)  # unknown names fail before any window exists
    picture = open_image(image) if image else None
    app = ensure_application()
    with tempfile.TemporaryDirectory() as scratch:
        previous = os.environ.get(SETTINGS_FILE_VARIABLE)
        os.environ[SETTINGS_FILE_VARIABLE] = str(Path(scratch) / "settings.ini")
        try:
            window = MainWindow()
        finally:
            if previous is None:
                del os.environ[SETTINGS_FILE_VARIABLE]
            else:
                os.environ[SETTINGS_FILE_VARIABLE] = previous
        try:
            window.resize(*size)
            if picture is not None:
                window.set_image(picture)
            window.show_chapter(chapter)
            page = window.chapters[chapter]
            if tab is not None:
                select_tab(page, tab)
            window.show()
            _wait(app, 300)  # let layouts settle and throttled views draw
            deadline = time.monotonic() + SCREENSHOT_PATIENCE_S
            while getattr(page, "busy", False) and time.monotonic() < deadline:
                _wait(app, 50)  # model views still computing
            pixmap = window.grab()
            out = Path(out)
            if not pixmap.save(str(out), "PNG"):
                raise OSError(f"could not write {out}")
        finally:
            for name in list(window.chapters):
                window.chapters[name].shutdown()
            window.workers.stop_all()
            window.deleteLater()
            app.processEvents()
    return out


def tab_titles(page) -> list[str]:
    """The titles of a chapter's tabs, lower case (none for a chapter without tabs)."""
    tabs = getattr(page, "tabs", None)
    return [tabs.tabText(i).replace("&", "").lower() for i in range(tabs.count())] if tabs is not None else []


def select_tab(page, title: str) -> None:
    """Show the tab whose title is ``title`` or starts with it (any case)."""
    titles = tab_titles(page)
    wanted = title.lower()
    matches = [i for i, t in enumerate(titles) if t == wanted] or [i for i, t in enumerate(titles) if t.startswith(wanted)]
    if len(matches) != 1:
        choices = ", ".join(repr(t) for t in titles) if titles else "it has none"
        raise ValueError(f"chapter {page.name!r} has no tab {title!r} (tabs: {choices})")
    page.tabs.setCurrentIndex(matches[0])


def _wait(app, milliseconds: int) -> None:
    """Run the event loop for a while (timers fire, layouts settle)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(milliseconds, loop.quit)
    loop.exec()
    app.processEvents()
