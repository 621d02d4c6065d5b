"""A process pool for CPU-bound page preparation, mapped in order with bounded look-ahead."""

from __future__ import annotations

import atexit
import functools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

C = TypeVar("C")
R = TypeVar("R")


@functools.cache
def worker_pool(processes: int) -> ProcessPoolExecutor:
    """The process-wide pool of `processes` workers, started on first use."""
    # spawn, not fork: the parent runs threads (Prefect, HTTP read-ahead) that fork would copy.
    pool = ProcessPoolExecutor(
        max_workers=processes, mp_context=multiprocessing.get_context("spawn")
    )
    atexit.register(pool.shutdown, wait=True, cancel_futures=True)
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
