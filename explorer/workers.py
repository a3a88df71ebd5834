"""The one bridge between the GUI thread and heavy work.

Heavy work runs on superqt ``GeneratorWorker``s in Qt's global thread pool. Long work
is a generator function that yields at least every ~100 ms, so it can be stopped; a
plain function, once begun, runs to its end. Every callback runs on the GUI thread.

Throttling of slider-driven recomputation is left to superqt's ``qthrottled`` /
``qdebounced`` in the chapters; ``LatestOnly`` then coalesces the requests so that at
most one job runs and stale results are dropped.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
import weakref
from collections.abc import Callable, Generator
from typing import Any

from qtpy.QtCore import (
    QCoreApplication,
    QDeadlineTimer,
    QEventLoop,
    QObject,
    QThread,
    QThreadPool,
    Signal,
)
from superqt.utils import GeneratorWorker

__all__ = ["LatestOnly", "Worker", "WorkerPool", "format_error", "limit_torch_threads"]

_log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 300
# Qt's pool defaults to one thread per core: on a 2-core machine a training run and an
# export would leave no thread for slider recomputation.
MIN_POOL_THREADS = 4


def format_error(exc: BaseException) -> str:
    """One readable line for the status bar, e.g. ``"ValueError: bad thing"``."""
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def limit_torch_threads() -> None:
    """Leave one core for the GUI: ``torch.set_num_threads(cores - 1)``, if torch is loaded.

    Never imports torch itself (the first chapters must not pay for it).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:
        cores = os.cpu_count() or 1
    torch.set_num_threads(max(1, cores - 1))


def _call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Generator[None, None, Any]:
    # A plain function runs as a generator that never yields: one kind of worker for
    # everything, and the arguments are released with the finished generator's frame
    # (PySide now and then never frees a finished runnable's Python object).
    return function(*args, **kwargs)
    yield  # unreachable; makes this a generator function


class Worker(GeneratorWorker):
    """superqt's GeneratorWorker with two fixes.

    A RuntimeError from the generator (torch raises many) is reported on ``errored``;
    superqt would swallow it and never emit ``finished``. The generator is closed on its
    own thread when the loop ends, so its ``finally`` / ``with`` blocks run there, at once.
    """

    def work(self) -> Any:
        try:
            result = super().work()
        finally:
            self._gen.close()
        if isinstance(result, RuntimeError):
            raise result
        return result


class WorkerPool(QObject):
    """Starts, tracks and stops workers; reports every worker error on ``errorOccurred``."""

    errorOccurred = Signal(str)  # one readable line for the status bar

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: dict[Worker, str] = {}  # running workers -> label for the log
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), MIN_POOL_THREADS))

    def start(
        self,
        function: Callable[..., Any],
        *args: Any,
        on_yield: Callable[[Any], None] | None = None,
        on_returned: Callable[[Any], None] | None = None,
        on_finished: Callable[[], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_aborted: Callable[[], None] | None = None,
        name: str = "",
        **kwargs: Any,
    ) -> Worker:
        """Run ``function(*args, **kwargs)`` on a worker thread.

        ``on_yield`` (generator functions only) gets each yielded value and ``on_returned``
        the return value, both on the GUI thread and never after ``stop()``. ``on_error``
        gets the exception, which is also reported on ``errorOccurred`` (prefixed by
        ``name``). ``on_aborted`` runs when a stopped worker quit before its end;
        ``on_finished`` runs last in every case. Other keyword arguments go to ``function``.
        """
        if inspect.isgeneratorfunction(function):
            worker = Worker(function, *args, **kwargs)
        elif on_yield is not None:
            raise TypeError(f"on_yield needs a generator function, got {function!r}")
        else:
            worker = Worker(_call, function, *args, **kwargs)
        # The slots hold the worker weakly: a strong reference would be a cycle through Qt
        # that the garbage collector cannot see, keeping every worker and its arguments.
        ref = weakref.ref(worker)

        def live(callback: Callable[[Any], None]) -> Callable[[Any], None]:
            def deliver(value: Any) -> None:
                current = ref()
                # Values still queued when stop() was called are dropped.
                if current is not None and not current.abort_requested:
                    callback(value)

            return deliver

        if on_yield is not None:
            worker.yielded.connect(live(on_yield))
        if on_returned is not None:
            worker.returned.connect(live(on_returned))
        if on_aborted is not None:
            worker.aborted.connect(on_aborted)
        label = name or getattr(function, "__qualname__", "worker")
        worker.errored.connect(lambda exc: self._report(name, label, exc, on_error))
        worker.finished.connect(lambda: self._forget(ref(), on_finished))
        self._workers[worker] = label
        worker.start()
        return worker

    def stop(self, worker: Worker) -> None:
        """Ask ``worker`` to quit: a generator stops at its next yield; a plain function
        that has begun runs to its end, but its result is dropped."""
        worker.quit()

    def stop_all(self, timeout_ms: int = 3000) -> bool:
        """Stop every worker and wait until they have finished; True if all ended in time."""
        for worker in list(self._workers):
            worker.quit()
        deadline = QDeadlineTimer(timeout_ms)
        while self._workers and not deadline.hasExpired():
            # Finished signals arrive as queued events; user input waits until we are done.
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents)
            QThread.msleep(2)
        return not self._workers

    def active(self) -> list[Worker]:
        """Workers started and not yet finished."""
        return list(self._workers)

    def _report(
        self, name: str, label: str, exc: Exception, on_error: Callable[[Exception], None] | None
    ) -> None:
        _log.error("worker %s failed", label, exc_info=exc)
        self.errorOccurred.emit(f"{name}: {format_error(exc)}" if name else format_error(exc))
        if on_error is not None:
            on_error(exc)

    def _forget(self, worker: Worker | None, on_finished: Callable[[], None] | None) -> None:
        self._workers.pop(worker, None)
        if on_finished is not None:
            on_finished()


class LatestOnly:
    """At most one job at a time for one control; requests made meanwhile are coalesced.

    Use it behind a ``qthrottled`` slider handler: ``submit()`` while a job runs replaces
    any waiting request, so intermediate values are skipped rather than queued. Finished
    results are handed to ``on_result`` (they are newer than what is on screen) unless
    ``cancel()`` was called after their request, e.g. because the image changed.
    """

    def __init__(
        self,
        pool: WorkerPool,
        on_result: Callable[[Any], None],
        on_error: Callable[[Exception], None] | None = None,
        name: str = "",
    ) -> None:
        self._pool = pool
        self._on_result = on_result
        self._on_error = on_error
        self._name = name
        self._generation = 0  # bumped by every submit()
        self._dropped_up_to = 0  # results of requests up to this generation are stale
        self._worker: Worker | None = None
        self._waiting: tuple[int, Callable[..., Any], tuple, dict] | None = None

    def submit(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Compute ``function(*args, **kwargs)``, whose return value is the result, soon."""
        self._generation += 1
        self._waiting = (self._generation, function, args, kwargs)
        if self._worker is None:
            self._start_waiting()

    def cancel(self) -> None:
        """Forget the waiting request and drop the running job's result."""
        self._waiting = None
        self._dropped_up_to = self._generation
        if self._worker is not None:
            self._pool.stop(self._worker)

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self._worker is not None

    def _start_waiting(self) -> None:
        generation, function, args, kwargs = self._waiting
        self._waiting = None

        def deliver(result: Any) -> None:
            if generation > self._dropped_up_to:
                self._on_result(result)

        self._worker = self._pool.start(
            function,
            *args,
            on_returned=deliver,
            on_error=self._on_error,
            on_finished=self._job_finished,
            name=self._name,
            **kwargs,
        )

    def _job_finished(self) -> None:
        self._worker = None
        if self._waiting is not None:
            self._start_waiting()
