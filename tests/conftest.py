"""Shared test set-up: headless Qt, and no thread or worker may outlive a test."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before anything loads Qt

GRACE_S = 2.0  # a worker that was just told to stop may take this long to end


def _python_threads() -> set[threading.Thread]:
    # Dummy threads are Qt pool threads that once ran Python code; idle, they stay in the pool.
    return {t for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}


def _running_qt_work() -> tuple[int, list]:
    """Busy threads of Qt's global pool, and superqt workers not yet finished."""
    from PySide6.QtCore import QThreadPool

    qtthreading = sys.modules.get("superqt.utils._qthreading")
    workers = list(qtthreading.WorkerBase._worker_set) if qtthreading else []
    return QThreadPool.globalInstance().activeThreadCount(), workers


def _wait_for_qt_work(app, timeout_s: float) -> tuple[int, list]:
    deadline = time.monotonic() + timeout_s
    while True:
        app.processEvents()  # delivers finished signals and starts timer-queued workers
        busy, workers = _running_qt_work()
        if not (busy or workers) or time.monotonic() > deadline:
            return busy, workers
        time.sleep(0.005)


def _qt_leaks() -> list[str]:
    """Describe Qt work still running after a test, stopping it so later tests are unaffected."""
    if "PySide6.QtCore" not in sys.modules:
        return []
    from PySide6.QtCore import QCoreApplication

    app = QCoreApplication.instance()
    if app is None:
        return []
    busy, workers = _wait_for_qt_work(app, GRACE_S)
    if not (busy or workers):
        return []
    for worker in workers:
        worker.quit()
    _wait_for_qt_work(app, GRACE_S)
    return [f"{busy} Qt pool thread(s) busy, {len(workers)} superqt worker(s) unfinished"]


@pytest.fixture(autouse=True)
def _no_leaked_threads():
    """Fail a test that leaves a thread, a pool task or a superqt worker running."""
    before = _python_threads()
    yield
    problems = _qt_leaks()
    deadline = time.monotonic() + GRACE_S
    for thread in _python_threads() - before:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    leaked = [t.name for t in _python_threads() - before if t.is_alive()]
    if leaked:
        problems.append(f"thread(s) still running: {leaked}")
    if problems:
        pytest.fail("test leaked running work: " + "; ".join(problems), pytrace=False)
