"""Where units run: in this process, in local worker processes (joblib), or on a Dask cluster.

Every executor gives each unit the same number of BLAS/torch threads (:func:`unit_threads`: 1, whatever
``--n-jobs``), so the results depend neither on which executor computed them nor on how many workers it had.
Local workers never outlive the process that started them: loky workers get a parent-death signal and watch their
parent; a LocalCluster's worker processes exit when their nanny's pipe closes.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from lmbrain.errors import RunError, UsageError, one_line, sigterm_deferred
from lmbrain.progress import FILE_ONLY

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
    unit_threads()  # a bad $LMBRAIN_UNIT_THREADS is refused before any work


#: BLAS/torch threads of every unit (``$LMBRAIN_UNIT_THREADS`` overrides it)
UNIT_THREADS_VAR = "LMBRAIN_UNIT_THREADS"
DEFAULT_UNIT_THREADS = 1


def unit_threads() -> int:
    """BLAS/torch threads of every unit, whatever the executor and ``--n-jobs``: 1 unless ``$LMBRAIN_UNIT_THREADS``
    says otherwise. A multithreaded BLAS sums in an order that depends on its thread count, so a count derived from
    ``--n-jobs`` (cores // n_jobs, as before) made ``--n-jobs 1`` and ``--n-jobs 2`` differ in the last bits of
    r and further in p-values and CIs; a fixed count gives bit-identical results (docs/benchmarks.md: the cost)."""
    value = os.environ.get(UNIT_THREADS_VAR, "").strip()
    if not value:
        return DEFAULT_UNIT_THREADS
    try:
        threads = int(value)
    except ValueError:
        raise UsageError(f"{UNIT_THREADS_VAR}={value!r}: give a whole number of threads (at least 1)") from None
    if threads < 1:
        raise UsageError(f"{UNIT_THREADS_VAR}={value!r}: give a whole number of threads (at least 1)")
    return threads


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    executor: str = "sequential",
    n_jobs: int = 2,
    scheduler: str | None = None,
    shared: dict[str, Path | None] | None = None,
) -> Iterator[R]:
    """Apply ``fn`` to every item and yield results as they complete (order not guaranteed). On Dask, the workers
    must first see the folders of ``shared`` (:func:`check_shared`)."""
    check_executor(executor, n_jobs)
    if executor == "sequential":
        return (fn(item) for item in items)
    if executor == "processes":
        return _joblib(fn, items, n_jobs)
    return _dask(fn, items, n_jobs, scheduler, shared or {})


def die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker as soon as the process ``parent`` is gone (kill -9 included)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)
    # the signal follows the thread that started the worker; this also covers the whole parent process
    threading.Thread(target=_watch_parent, args=(parent,), name="lmbrain-parent-watch", daemon=True).start()


#: growth of a loky worker's resident memory (bytes over its size after the first task) taken for a leak. loky's own
#: threshold (300 MB) recycled the study's workers every ~15 s: their memos (decompositions, inner-CV scores: each at
#: most LMBRAIN_DECOMPOSITION_CACHE_MB) and loaded datasets are bounded and meant to live, and every new worker
#: re-imports torch and re-reads its data (~15 % of the default study's worker time)
WORKER_MEMORY_GROWTH = 6 * 2**30


def init_worker(parent: int) -> None:
    """Worker initializer: die with ``parent`` (:func:`die_with_parent`) and let the worker keep its bounded memos
    (loky's leak check allows :data:`WORKER_MEMORY_GROWTH`; a real leak beyond it still recycles the worker)."""
    die_with_parent(parent)
    with contextlib.suppress(ImportError):
        from joblib.externals.loky import process_executor

        if hasattr(process_executor, "_MAX_MEMORY_LEAK_SIZE"):  # a private knob: absent, workers are only recycled
            process_executor._MAX_MEMORY_LEAK_SIZE = max(process_executor._MAX_MEMORY_LEAK_SIZE, WORKER_MEMORY_GROWTH)


def _watch_parent(parent: int) -> None:
    """Exit the process when it is re-parented (its parent died)."""
    while os.getppid() == parent:
        time.sleep(WATCH_SECONDS)
    os._exit(1)


def _joblib(fn: Callable[[T], R], items: Iterable[T], n_jobs: int) -> Iterator[R]:
    from joblib import Parallel, delayed, parallel_config

    with parallel_config(backend="loky", inner_max_num_threads=unit_threads(),
                         initializer=init_worker, initargs=(os.getpid(),)):
        parallel = Parallel(n_jobs=n_jobs, return_as="generator_unordered")
        yield from parallel(delayed(fn)(item) for item in items)


class _ToRunLog(logging.Handler):
    """Passes Dask's log records to lmbrain's logger, for run.log only (not the terminal); dropped where nothing
    listens (no run log open)."""

    def emit(self, record: logging.LogRecord) -> None:
        """Log ``record`` as ``lmbrain.dask``, run.log only."""
        target = logging.getLogger("lmbrain.dask")
        if target.hasHandlers():
            target.log(record.levelno, "%s: %s", record.name, record.getMessage(), exc_info=record.exc_info,
                       extra={FILE_ONLY: True})


#: Dask's loggers whose records (reconnection tracebacks, a nanny killing a worker) go to run.log, not the terminal
DASK_LOGGERS = ("distributed", "dask")


def redirect_dask_logs() -> None:
    """Send Dask's log records (warnings and errors) to run.log instead of the terminal, for the rest of the process:
    its client and nannies keep logging from their own threads after a session is closed."""
    forward = _ToRunLog(logging.WARNING)
    names = [name for name in logging.root.manager.loggerDict if name.split(".")[0] in DASK_LOGGERS]
    for name in {*DASK_LOGGERS, *names}:
        logger = logging.getLogger(name)
        if name in DASK_LOGGERS or logger.handlers:  # Dask gives some children their own handler (distributed.client)
            logger.handlers = [forward]
            logger.propagate = False


@contextlib.contextmanager
def dask_session(n_jobs: int, scheduler: str | None) -> Iterator[tuple[Any, str]]:
    """A Dask client (on a local cluster of ``n_jobs`` worker processes, or ``scheduler``) and the scheduler's address,
    with Dask's log records sent to run.log only (:func:`redirect_dask_logs`) and a local cluster's worker processes
    quiet below errors.
    An unreachable scheduler is a one-line RunError."""
    from dask.distributed import Client, LocalCluster

    redirect_dask_logs()
    quiet = "DASK_LOGGING__DISTRIBUTED"
    env_before = os.environ.get(quiet)
    os.environ.setdefault(quiet, "critical")  # read by the worker processes a local cluster spawns (their errors
    # reach the client through the futures; a shutdown logs heartbeat tracebacks at error level)
    cluster = client = None
    try:
        if scheduler is None:
            # nannies live in this process; each worker process exits when its nanny's pipe closes. A SIGTERM while
            # the cluster starts waits until it has (then it is closed below): a half-started one cannot be
            with sigterm_deferred():
                cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=":0")  # any free port: no clash, no warning
                client = Client(cluster)
        else:
            try:
                client = Client(scheduler)
            except OSError as error:
                raise RunError(f"cannot reach the dask scheduler at {scheduler} ({one_line(error)}); start it (`dask "
                               "scheduler`, docs/cli.md) or check --scheduler") from None
        yield client, scheduler or str(cluster.scheduler_address)
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()
        if env_before is None:
            os.environ.pop(quiet, None)


def scheduler_lost(client: Any, error: BaseException) -> bool:
    """Whether ``error``, raised while waiting for Dask results, means the client lost its scheduler."""
    if "scheduler-connection-lost" in str(error):
        return True
    return getattr(client, "status", "running") not in ("running", "newly-created")


def lost_scheduler_error(address: str) -> RunError:
    """The one-line error of a run whose Dask scheduler went away."""
    return RunError(f"the dask scheduler at {address} went away (stopped, crashed or unreachable); start it and its "
                    "workers again and rerun the same command: finished units are kept")


#: name prefix of the marker files by which the client checks that its workers see the folders it writes to
MARKER_PREFIX = ".lmbrain-shared-"
#: seconds to wait for a first worker to join a scheduler
WORKER_WAIT_SECONDS = 60.0


def _find_markers(wanted: dict[str, tuple[str | None, str]]) -> dict[str, str]:
    """On a worker: for each label, the problem with its marker (missing, or another run's), '' when it is there.
    A folder of None is this worker's own feature cache (``$LMBRAIN_CACHE_DIR/features`` as the worker sees it)."""
    from lmbrain.config import cache_dir

    found = {}
    for label, (folder, token) in wanted.items():
        root = Path(folder) if folder is not None else cache_dir() / "features"
        path = root / f"{MARKER_PREFIX}{token}"
        try:
            found[label] = "" if path.read_text(encoding="utf-8") == token else f"{path} holds another run's marker"
        except OSError:
            found[label] = f"it looked for {path} and found nothing"
    return found


def check_shared(client: Any, address: str, shared: dict[str, Path | None]) -> None:
    """Check that every Dask worker sees ``shared`` folders as this process does: a marker file written here is
    read back by a task on each worker (a folder of None: the feature cache, ``$LMBRAIN_CACHE_DIR/features`` here and
    as each worker resolves it). A worker that does not is a one-line RunError saying what must be shared: lmbrain
    never extracts features again on a worker, nor loses the units it would write elsewhere."""
    import uuid

    from lmbrain.config import cache_dir

    if not shared:
        return
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
    except (TimeoutError, OSError):
        raise RunError(f"no dask worker joined the scheduler at {address} within {WORKER_WAIT_SECONDS:.0f} s; start "
                       f"workers (`dask worker {address}`, docs/cli.md)") from None
    token = uuid.uuid4().hex
    written: list[Path] = []
    wanted: dict[str, tuple[str | None, str]] = {}
    try:
        for label, folder in shared.items():
            root = Path(folder).absolute() if folder is not None else cache_dir() / "features"
            root.mkdir(parents=True, exist_ok=True)
            marker = root / f"{MARKER_PREFIX}{token}"
            marker.write_text(token, encoding="utf-8")
            written.append(marker)
            wanted[label] = (str(root) if folder is not None else None, token)
        answers = client.run(_find_markers, wanted)
    finally:
        for marker in written:
            marker.unlink(missing_ok=True)
    for worker, problems in sorted(answers.items()):
        missing = {label: problem for label, problem in problems.items() if problem}
        if missing:
            label, problem = next(iter(missing.items()))
            here = dict(zip(shared, (w.parent for w in written), strict=True))[label]
            raise RunError(
                f"the dask worker {worker} does not see the {label} this process uses ({here}): {problem}; "
                f"{' and '.join(f'the {name}' for name in shared)} must be on storage every worker mounts at the same "
                "path (with LMBRAIN_CACHE_DIR and LMBRAIN_DATA_DIR set alike): lmbrain does not extract features "
                "again on a worker nor let it write units elsewhere"
            )


def _dask(fn: Callable[[T], R], items: Sequence[T], n_jobs: int, scheduler: str | None,
          shared: dict[str, Path | None]) -> Iterator[R]:
    from dask.distributed import as_completed

    with dask_session(n_jobs, scheduler) as (client, address):
        try:
            check_shared(client, address, shared)
            futures = client.map(fn, list(items), pure=False)
            for future in as_completed(futures):
                yield future.result()
        except Exception as error:
            if scheduler_lost(client, error):
                raise lost_scheduler_error(address) from None
            raise


# -- one unit's targets in blocks, on any executor ----------------------------------------------------------


@contextlib.contextmanager
def task_map(executor: str = "sequential", n_jobs: int = 2,
             scheduler: str | None = None) -> Iterator[Callable[..., list]]:
    """A ``map(fn, items, **shared)`` that runs on ``executor`` and returns results in the order of ``items``;
    ``shared`` arguments (e.g. a large problem) go to every call, sent once to a Dask cluster. One pool or
    cluster serves every map inside the ``with`` block."""
    check_executor(executor, n_jobs)
    threads = unit_threads()
    if executor == "sequential":
        yield lambda fn, items, **shared: [fn(item, **shared) for item in items]
        return
    if executor == "processes":
        from joblib import Parallel, delayed, parallel_config

        with parallel_config(backend="loky", inner_max_num_threads=threads, initializer=init_worker,
                             initargs=(os.getpid(),)):
            parallel = Parallel(n_jobs=n_jobs)
            yield lambda fn, items, **shared: parallel(delayed(fn)(item, **shared) for item in items)
        return
    with dask_session(n_jobs, scheduler) as (client, address):

        def dask_map(fn: Callable, items: Sequence, **shared: object) -> list:
            try:
                sent = {k: client.scatter(v, broadcast=True, hash=False) for k, v in shared.items()}  # unique keys
                futures = client.map(_limited, list(items), fn=fn, threads=threads, pure=False, **sent)
                return client.gather(futures)
            except Exception as error:
                if scheduler_lost(client, error):
                    raise lost_scheduler_error(address) from None
                raise

        yield dask_map


def _limited(item: object, fn: Callable, threads: int, **shared: object) -> object:
    """``fn(item, **shared)`` with BLAS/torch capped at ``threads`` (Dask workers do not inherit loky's caps)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads):
        return fn(item, **shared)


def target_blocks(n_targets: int, n_blocks: int, align: int = 1) -> list[tuple[int, int]]:
    """``n_blocks`` contiguous target ranges of near-equal size, cut at multiples of ``align`` (a chunk size)."""
    units = -(-n_targets // align)
    cuts = sorted({min(n_targets, round(units * b / max(1, n_blocks)) * align) for b in range(n_blocks + 1)})
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def _inner_block(block: tuple[int, int], problem: object) -> object:
    from lmbrain.analysis.chunked import block_inner_scores

    return block_inner_scores(problem, *block)


def _result_block(block: tuple[int, int], problem: object, selection: object) -> object:
    from lmbrain.analysis.chunked import block_results

    return block_results(problem, selection, *block)


def run_chunked(problem: object, n_blocks: int | None = None, executor: str = "sequential", n_jobs: int = 2,
                scheduler: str | None = None) -> object:
    """One unit's chunked control analysis (:mod:`lmbrain.analysis.chunked`) with its targets split into
    ``n_blocks`` blocks (default ``n_jobs``) that run on the executor's workers: every block's inner scores,
    the layer selection from all of them (here), then every block's refits and tests. Equal to
    :func:`lmbrain.analysis.chunked.chunked_control_analysis` in one process."""
    from lmbrain.analysis.chunked import ChunkedResult, InnerScores, select_layers

    blocks = target_blocks(problem.n_targets, n_blocks or n_jobs, problem.chunk_size)
    with task_map(executor, n_jobs, scheduler) as pmap:
        selection = select_layers(problem, InnerScores.concat(pmap(_inner_block, blocks, problem=problem)))
        parts = pmap(_result_block, blocks, problem=problem, selection=selection)
    return ChunkedResult.concat(parts, selection)
