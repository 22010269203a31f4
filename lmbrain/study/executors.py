"""Where units run: in this process, in local worker processes (joblib), or on a Dask cluster.

Every executor gives each unit the same number of BLAS/torch threads (:func:`worker_threads`), so the
results do not depend on which executor computed them. Local workers never outlive the process that
started them: loky workers get a parent-death signal and watch their parent; a LocalCluster's worker
processes exit when their nanny's pipe closes.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal, TypeVar

from lmbrain.errors import UsageError

T = TypeVar("T")
R = TypeVar("R")

ExecutorName = Literal["sequential", "processes", "dask"]
EXECUTORS: tuple[str, ...] = ("sequential", "processes", "dask")
PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 0.2


def check_executor(executor: str, n_jobs: int) -> None:
    """Raise a clear error for an unknown executor or a worker count below 1 (before anything is written)."""
    if executor not in EXECUTORS:
        raise UsageError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise UsageError(f"--n-jobs must be a whole number of at least 1, got {n_jobs!r}")


def worker_threads(n_jobs: int) -> int:
    """BLAS/torch threads per unit: the cores shared among ``n_jobs`` workers, whatever the executor."""
    from joblib import cpu_count

    return max(1, cpu_count() // max(n_jobs, 1))


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    executor: str = "sequential",
    n_jobs: int = 2,
    scheduler: str | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to every item and yield results as they complete (order not guaranteed)."""
    check_executor(executor, n_jobs)
    if executor == "sequential":
        return (fn(item) for item in items)
    if executor == "processes":
        return _joblib(fn, items, n_jobs)
    return _dask(fn, items, n_jobs, scheduler)


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker as soon as the process ``parent`` is gone (kill -9 included)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    # the signal follows the thread that started the worker; this also covers the whole parent process
    threading.Thread(target=_watch_parent, args=(parent,), name="lmbrain-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    """Exit the process when it is re-parented (its parent died)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)


def _joblib(fn: Callable[[T], R], items: Iterable[T], n_jobs: int) -> Iterator[R]:
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", inner_max_num_threads=worker_threads(n_jobs),
                         initializer=die_with_parent, initargs=(os.getpid(),)):
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield from parallel(delayed(fn)(item) for item in items)


def _dask(fn: Callable[[T], R], items: Sequence[T], n_jobs: int, scheduler: str | None) -> Iterator[R]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
        # nannies live in this process; each worker process exits when its nanny's pipe closes
        cluster = LocalCluster(
            n_workers=n_jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        futures = client.map(fn, list(items), pure=False)
        for future in as_completed(futures):
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
