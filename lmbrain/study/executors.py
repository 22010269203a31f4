"""Where units run: in this process, in local worker processes (joblib), or on a Dask cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal, TypeVar

from lmbrain.errors import LmbrainError

T = TypeVar("T")
R = TypeVar("R")

ExecutorName = Literal["sequential", "processes", "dask"]
EXECUTORS: tuple[str, ...] = ("sequential", "processes", "dask")


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    executor: str = "sequential",
    n_jobs: int = 2,
    scheduler: str | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to every item and yield results as they complete (order not guaranteed)."""
    if executor == "sequential":
        return (fn(item) for item in items)
    if executor == "processes":
        return _joblib(fn, items, n_jobs)
    if executor == "dask":
        return _dask(fn, items, n_jobs, scheduler)
    raise LmbrainError(f"unknown executor {executor!r}; choose one of {EXECUTORS}")


def _joblib(fn: Callable[[T], R], items: Iterable[T], n_jobs: int) -> Iterator[R]:
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    yield from parallel(delayed(fn)(item) for item in items)


def _dask(fn: Callable[[T], R], items: Sequence[T], n_jobs: int, scheduler: str | None) -> Iterator[R]:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler is None:
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
