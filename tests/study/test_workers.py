"""Local worker processes live for the whole run: their memos are bounded, so they are not recycled as leaks."""

import os
import time

import numpy as np

_HELD: list[np.ndarray] = []


def _grow_and_report(_: int) -> int:
    """Keep 150 MB more in this worker (as a memo would), wait past loky's 1 s check interval, return the pid."""
    _HELD.append(np.ones(150 * 2**20 // 8))
    time.sleep(1.2)
    return os.getpid()


def test_a_worker_that_keeps_bounded_memos_is_not_recycled():
    """loky's leak check recycled a worker once it held 300 MB more than after its first task (the default study's
    workers restarted every ~15 s, each new one re-importing torch and re-reading its data); 600 MB of growth now
    keeps both workers."""
    from lmbrain.study.executors import run_tasks

    pids = list(run_tasks(_grow_and_report, range(8), executor="processes", n_jobs=2))
    assert len(pids) == 8 and os.getpid() not in pids
    assert len(set(pids)) <= 2, f"workers were replaced: pids {pids}"
