"""Bulk work in one process: a pool for page preparation, and the cyclic collector's tuning."""

from __future__ import annotations

import functools
import gc
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import spawn, util
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any, TypeVar

C = TypeVar("C")
R = TypeVar("R")


# Young-generation threshold while streaming: collections in hundreds, not thousands.
_GC_THRESHOLDS = (10_000, 50, 50)


@functools.cache
def tune_collector_for_bulk() -> None:
    """Once per process: keep the cyclic collector off long-lived objects, batch young ones."""
    # A sync allocates millions of short-lived rows; with the default thresholds the collector
    # ran about 2,000 times per 60,000 households, each full pass walking the whole heap of
    # imported modules (Prefect, SQLAlchemy, pydantic): GC was 1.6 s of 9 s of sync CPU,
    # 0.2 s after freezing what is alive at the first sync and raising the young threshold.
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)


_SPAWNING = threading.Lock()


class _LeanProcess(SpawnProcess):
    """A spawned process that does not import the parent's main module.

    A spawned child imports the parent's `__main__` first (for `cettar`, the command line
    and with it Prefect and every flow: 88 MB, 857 modules) in case a job refers to it.
    A page job refers only to `models` (56 MB, 434 modules): the worker imports that much.
    """

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        with _SPAWNING:
            original = spawn.get_preparation_data

            def lean(name: str) -> dict[str, Any]:
                data: dict[str, Any] = original(name)
                data.pop("init_main_from_name", None)
                data.pop("init_main_from_path", None)
                return data

            spawn.get_preparation_data = lean
            try:
                return SpawnProcess._Popen(process_obj)
            finally:
                spawn.get_preparation_data = original


class _LeanSpawnContext(SpawnContext):
    Process = _LeanProcess


@functools.cache
def worker_pool(processes: int) -> ProcessPoolExecutor:
    """The process-wide pool of `processes` workers, started on first use."""
    # spawn, not fork: the parent runs threads (Prefect, HTTP read-ahead) that fork would copy.
    pool = ProcessPoolExecutor(
        max_workers=processes,
        mp_context=_LeanSpawnContext(),
        # Workers allocate the page's models and rows: the same collector tuning applies.
        initializer=tune_collector_for_bulk,
    )
    # A multiprocessing finalizer, not atexit: a process of its own (a partition, with
    # CETTAR_SYNC_WORKERS > 1) runs no atexit handlers and joins its children on the way
    # out, where the pool's idle workers kept it waiting for ever. It runs before that join
    # (in the main process at interpreter exit), and before the finalizers (priority 10)
    # that close the pool's queues, through which it tells the workers to stop.
    util.Finalize(
        pool, pool.shutdown, kwargs={"wait": True, "cancel_futures": True}, exitpriority=100
    )
    return pool


def ordered_map(
    fn: Callable[..., R],
    jobs: Iterable[tuple[C, tuple[Any, ...]]],
    *,
    processes: int,
    ahead: int = 4,
) -> Iterator[tuple[C, R]]:
    """Yield (context, fn(*args)) for each job, in job order.

    With `processes` > 0 up to `ahead` jobs run in worker processes while the caller
    consumes earlier results; with 0 everything runs here, one job at a time.
    """
    if processes <= 0:
        for ctx, args in jobs:
            yield ctx, fn(*args)
        return
    pool = worker_pool(processes)
    window: deque[tuple[C, Future[R]]] = deque()
    try:
        for ctx, args in jobs:
            window.append((ctx, pool.submit(fn, *args)))
            if len(window) >= ahead:
                done_ctx, fut = window.popleft()
                yield done_ctx, fut.result()
        while window:
            done_ctx, fut = window.popleft()
            yield done_ctx, fut.result()
    finally:
        for _, fut in window:
            fut.cancel()
