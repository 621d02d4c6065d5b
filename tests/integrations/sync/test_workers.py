"""Ordered mapping over worker processes (and in-process when none are configured)."""

from __future__ import annotations

import concurrent.futures
import gc
import multiprocessing
import operator
import sys

import pytest

from integrations.sync.workers import ordered_map, tune_collector_for_bulk


@pytest.mark.parametrize("processes", [0, 1])
def test_results_come_back_in_job_order_with_their_context(processes: int) -> None:
    jobs = ((f"job-{i}", (i, i)) for i in range(20))
    got = list(ordered_map(operator.mul, jobs, processes=processes, ahead=3))
    assert got == [(f"job-{i}", i * i) for i in range(20)]


def test_a_worker_error_is_raised_for_its_job() -> None:
    jobs = [("a", (1, 1)), ("b", (1, 0))]
    with pytest.raises(ZeroDivisionError):
        list(ordered_map(operator.truediv, jobs, processes=1))


def test_collector_is_tuned_once_per_process() -> None:
    tune_collector_for_bulk()
    frozen = gc.get_freeze_count()
    # Everything alive at the first sync (imported modules) is out of the collector's way.
    assert frozen > 1_000
    assert gc.get_threshold() == (10_000, 50, 50)
    tune_collector_for_bulk()  # cached: a second call freezes nothing new
    assert gc.get_freeze_count() == frozen


def _collector_state(_: int) -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_worker_processes_tune_their_collector_too() -> None:
    [(_, (threshold, frozen))] = list(ordered_map(_collector_state, [("w", (0,))], processes=1))
    assert threshold == (10_000, 50, 50)
    assert frozen > 0


def _parent_main_file(_: int) -> str | None:
    # A spawned child imports the parent's main module as `__mp_main__` (otherwise an alias
    # of its own `-c` main, which has no file).
    return getattr(sys.modules["__mp_main__"], "__file__", None)


def test_worker_processes_do_not_import_the_parent_s_main_module() -> None:
    # The parent here is pytest's script; for `cettar` it is the whole command line.
    assert getattr(sys.modules["__main__"], "__file__", None)
    [(_, main)] = list(ordered_map(_parent_main_file, [("w", (0,))], processes=1))
    assert main is None


def _sync_in_a_child(_: int) -> int:
    # As a partition does in a process of its own (CETTAR_SYNC_WORKERS > 1).
    return sum(result for _, result in ordered_map(operator.mul, [("a", (2, 3))], processes=1))


def test_a_process_that_used_the_pool_exits_when_its_work_is_done() -> None:
    # A multiprocessing child never runs atexit handlers: it joins its own children on the
    # way out, and workers waiting for jobs would keep it (and the sync) waiting for ever.
    ctx = multiprocessing.get_context("spawn")
    outer = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx)
    try:
        assert outer.submit(_sync_in_a_child, 0).result(timeout=60) == 6
        [child] = list(outer._processes.values())
        outer.shutdown(wait=False)
        child.join(timeout=30)
        assert child.exitcode == 0, "the child still waits for its pool's workers"
    finally:
        for p in multiprocessing.active_children():
            p.kill()
