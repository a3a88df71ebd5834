"""The worker bridge: values, stopping, errors, shutdown and leaks."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
import types
import weakref
from pathlib import Path

import pytest
from qtpy.QtCore import QThread, QTimer

from explorer.workers import LatestOnly, WorkerPool, format_error, limit_torch_threads


@pytest.fixture
def pool(qtbot):
    pool = WorkerPool()
    yield pool
    assert pool.stop_all(3000)


def count_forever(tick_s: float = 0.01):
    value = 0
    while True:
        time.sleep(tick_s)
        yield value
        value += 1


def wait_until_idle(qtbot, pool: WorkerPool) -> None:
    qtbot.waitUntil(lambda: not pool.active(), timeout=3000)


def test_yielded_values_arrive_in_order_on_the_gui_thread(qtbot, pool):
    received, threads, finished = [], set(), []

    def on_yield(value):
        received.append(value)
        threads.add(threading.get_ident())

    def squares(n):
        for i in range(n):
            yield i * i
        return "done"

    returned = []
    pool.start(
        squares,
        50,
        on_yield=on_yield,
        on_returned=returned.append,
        on_finished=lambda: finished.append(1),
    )
    qtbot.waitUntil(lambda: len(finished) > 0, timeout=3000)

    assert received == [i * i for i in range(50)]
    assert returned == ["done"]
    assert threads == {threading.main_thread().ident}
    assert pool.active() == []


def test_stopped_generator_finishes_within_200_ms_and_yields_nothing_more(qtbot, pool):
    ticks, aborted = [], []
    worker = pool.start(count_forever, on_yield=ticks.append, on_aborted=lambda: aborted.append(1))
    qtbot.waitUntil(lambda: len(ticks) >= 3, timeout=3000)
    assert pool.active() == [worker]

    with qtbot.waitSignal(worker.finished, timeout=200):
        pool.stop(worker)
        ticks_at_stop = len(ticks)

    assert aborted == [1]
    assert len(ticks) == ticks_at_stop  # values queued before stop() are dropped
    assert ticks == list(range(ticks_at_stop))
    assert pool.active() == []


def test_stopped_generator_cleans_up_on_its_own_thread(qtbot, pool):
    cleanup_threads = []

    def guarded():
        try:
            yield from count_forever()
        finally:
            cleanup_threads.append(threading.get_ident())

    ticks = []
    worker = pool.start(guarded, on_yield=ticks.append)
    qtbot.waitUntil(lambda: len(ticks) > 0, timeout=3000)
    with qtbot.waitSignal(worker.finished, timeout=1000):
        pool.stop(worker)

    assert len(cleanup_threads) == 1
    assert cleanup_threads[0] != threading.main_thread().ident


@pytest.mark.parametrize("error", [ValueError("bad thing"), RuntimeError("bad thing")])
def test_error_reaches_error_occurred_and_the_pool_keeps_working(qtbot, pool, error):
    errors, finished = [], []

    def fails():
        yield 1
        raise error

    with qtbot.waitSignal(pool.errorOccurred, timeout=3000) as blocker:
        pool.start(fails, on_error=errors.append, on_finished=lambda: finished.append(1))
    qtbot.waitUntil(lambda: len(finished) > 0, timeout=3000)

    assert blocker.args == [f"{type(error).__name__}: bad thing"]
    assert errors == [error]
    assert pool.active() == []

    results = []
    pool.start(sum, [1, 2, 3], on_returned=results.append)
    qtbot.waitUntil(lambda: len(results) > 0, timeout=3000)
    assert results == [6]


def test_error_message_names_the_job_and_plain_functions_report_errors(qtbot, pool):
    def divide(a, b):
        return a / b

    with qtbot.waitSignal(pool.errorOccurred, timeout=3000) as blocker:
        pool.start(divide, 1, b=0, name="Export")

    assert blocker.args == ["Export: ZeroDivisionError: division by zero"]
    wait_until_idle(qtbot, pool)


def test_plain_function_returns_its_value(qtbot, pool):
    results = []
    pool.start(divmod, 17, 5, on_returned=results.append)
    qtbot.waitUntil(lambda: len(results) > 0, timeout=3000)
    assert results == [(3, 2)]
    with pytest.raises(TypeError, match="generator"):
        pool.start(divmod, 17, 5, on_yield=print)


def test_stop_all_ends_several_workers(qtbot, pool):
    finished = []
    # More workers than pool threads, so some are still queued when stop_all() is called.
    for _ in range(6):
        pool.start(count_forever, on_finished=lambda: finished.append(1))
    qtbot.waitUntil(lambda: any(w.is_running for w in pool.active()), timeout=3000)

    assert pool.stop_all(timeout_ms=3000)
    assert pool.active() == []
    assert len(finished) == 6


def test_stop_all_ends_a_worker_whose_start_is_still_queued(qtbot, pool):
    outcome = []

    def start_then_stop_all():
        # Inside a running event loop superqt queues the start on a timer.
        outcome.append(QThread.currentThread().loopLevel())
        pool.start(count_forever)
        outcome.append(pool.stop_all(timeout_ms=3000))

    QTimer.singleShot(0, start_then_stop_all)
    qtbot.waitUntil(lambda: len(outcome) == 2, timeout=3000)

    assert outcome[0] > 0
    assert outcome[1] is True
    assert pool.active() == []


def test_finished_workers_release_their_arguments(qtbot, pool):
    class Payload:
        pass

    def job(payload):
        return 1

    def gen_job(payload):
        yield 1

    refs = []
    for function in (job, gen_job):
        payload = Payload()
        refs.append(weakref.ref(payload))
        pool.start(function, payload, on_returned=lambda result: None, on_finished=lambda: None)
        del payload
    wait_until_idle(qtbot, pool)
    gc.collect()

    assert [ref() for ref in refs] == [None, None]


def test_latest_only_skips_superseded_requests(qtbot, pool):
    results, ran = [], []
    gate = threading.Event()

    def job(value):
        ran.append(value)
        if value == 0:
            gate.wait(3)
        return value

    latest = LatestOnly(pool, results.append)
    for value in range(6):
        latest.submit(job, value)
    assert latest.busy
    gate.set()
    qtbot.waitUntil(lambda: not latest.busy, timeout=3000)

    assert ran == [0, 5]
    assert results == [0, 5]


def test_latest_only_cancel_drops_the_running_result(qtbot, pool):
    results = []
    gate = threading.Event()

    def job(value):
        gate.wait(3)
        return value

    latest = LatestOnly(pool, results.append)
    latest.submit(job, 1)
    latest.submit(job, 2)
    latest.cancel()
    gate.set()
    qtbot.waitUntil(lambda: not latest.busy, timeout=3000)
    assert results == []

    latest.submit(job, 3)
    qtbot.waitUntil(lambda: len(results) > 0, timeout=3000)
    assert results == [3]


def test_format_error_is_one_short_line():
    assert format_error(ValueError("bad thing")) == "ValueError: bad thing"
    assert format_error(OSError("first line\n  second\tline")) == "OSError: first line second line"
    assert format_error(RuntimeError()) == "RuntimeError"
    long = format_error(ValueError("x" * 10_000))
    assert "\n" not in long and len(long) <= 300 and long.endswith("…")


def test_limit_torch_threads_leaves_a_core_for_the_gui(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(set_num_threads=calls.append))
    limit_torch_threads()
    assert calls == [max(1, len(os.sched_getaffinity(0)) - 1)]


def test_workers_module_does_not_import_torch():
    code = "import sys, explorer.workers as w; w.limit_torch_threads(); print('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
