"""Progress of long work and the flags of the run log's records.

``FILE_ONLY`` and ``PROGRESS`` are ``extra`` flags of log records: a record with ``FILE_ONLY`` goes to run.log only;
one with ``PROGRESS`` is also shown on a terminal without a progress bar (stderr not a TTY).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator

#: ``extra`` flag of a log record written to run.log only
FILE_ONLY = "lmbrain_file_only"
#: ``extra`` flag of a progress line, shown on stderr where no progress bar is (not a TTY) and always in run.log
PROGRESS = "lmbrain_progress"

#: seconds between two progress lines of a stage that is still running (at least one a minute); a test sets it small
INTERVAL_VAR = "LMBRAIN_PROGRESS_SECONDS"
DEFAULT_INTERVAL = 30.0


def progress_interval() -> float:
    """Seconds between a running stage's progress lines (``$LMBRAIN_PROGRESS_SECONDS``, default 30)."""
    try:
        value = float(os.environ.get(INTERVAL_VAR, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def eta_text(seconds: float | None, how: str = "") -> str:
    """``3m05s (how)``, or ``unknown (how)`` without an estimate."""
    text = duration(seconds) if seconds is not None else "unknown"
    return f"{text} ({how})" if how else text


def stderr_is_tty() -> bool:
    """Whether standard error is a terminal (then a bar is drawn, and progress lines go to run.log only)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """The progress of one stage of work: a bar on a terminal and plain lines in the log.

    A line is logged when the stage starts, every :func:`progress_interval` seconds while it runs (from a timer
    thread, so a step that takes minutes still shows the stage is alive) and when it ends: what is done of what,
    the time elapsed, and the ETA (by default the pace so far times what is left; ``eta``, when given, returns
    the seconds left and a note on how they were estimated, or None when there is no honest estimate yet). The bar
    (tqdm) is drawn only when standard error is a terminal and ``bar`` is true; the lines carry the ``PROGRESS``
    flag: in run.log always, on standard error only where no bar is drawn.
    """

    def __init__(self, what: str, total: int | None, unit: str = "item", *, logger: logging.Logger | None = None,
                 eta: Callable[[], tuple[float | None, str]] | None = None, bar: bool = True,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic,
                 level: int = logging.INFO) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.log = logger or logging.getLogger("lmbrain.progress")
        self.eta, self.clock, self.level = eta, clock, level
        self.interval = progress_interval() if interval is None else interval
        self.done, self.note = 0, ""
        self.start = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._bar = None
        if bar and stderr_is_tty():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=what, unit=unit, leave=False)
        self.emit("start")
        self._timer = threading.Thread(target=self._tick, name=f"lmbrain-progress-{what}", daemon=True)
        self._timer.start()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def update(self, n: int = 1, note: str | None = None) -> None:
        """Count ``n`` more items done; ``note`` (e.g. ``now: ...``) ends the next lines."""
        with self._lock:
            self.done += n
            if note is not None:
                self.note = note
        if self._bar is not None:
            self._bar.update(n)

    def set_note(self, note: str) -> None:
        """Set the note that ends the next lines (e.g. ``now: ...``)."""
        with self._lock:
            self.note = note

    def remaining(self) -> tuple[float | None, str]:
        """Seconds left and how they were estimated (None: no honest estimate yet)."""
        if self.eta is not None:
            return self.eta()
        if not self.done or self.total is None:
            return None, "no item done yet"
        elapsed = self.clock() - self.start
        return elapsed / self.done * max(self.total - self.done, 0), ""

    def line(self, state: str = "") -> str:
        """The progress line: ``what: done/total units; elapsed; ETA (how); note``."""
        with self._lock:
            done, note = self.done, self.note
        count = f"{done}/{self.total}" if self.total is not None else f"{done}"
        parts = [f"{self.what}: {count} {self.unit}s", f"elapsed {duration(self.clock() - self.start)}"]
        if state == "start":
            parts = [f"{self.what}: {self.total} {self.unit}s to do" if self.total is not None else
                     f"{self.what}: started"]
        elif state == "done":
            parts = [f"{self.what}: {count} {self.unit}s done in {duration(self.clock() - self.start)}"]
        else:
            parts.append(f"ETA {eta_text(*self.remaining())}")
            if note:
                parts.append(note)
        return "; ".join(parts)

    def emit(self, state: str = "") -> None:
        """Log the progress line (flagged ``PROGRESS``)."""
        self.log.log(self.level, "%s", self.line(state), extra={PROGRESS: True})

    def close(self, ok: bool = True) -> None:
        """Stop the timer and the bar; log the final line when the stage finished (``ok``)."""
        self._stop.set()
        if self._timer.is_alive() and self._timer is not threading.current_thread():
            self._timer.join(timeout=5)
        if self._bar is not None:
            self._bar.close()
        if ok:
            self.emit("done")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.close(ok=exc_type is None)


class KindETA:
    """The time left of work items of different kinds (a study's units: controls take a second, a joint unit
    minutes), estimated per kind: the mean seconds of the kind's items finished (in this run, else in ``prior``,
    earlier runs) times the kind's items left, summed over kinds and shared among ``workers``. Kinds with no item
    timed yet are not guessed at: the ETA is then a lower bound, and says which items it leaves out."""

    def __init__(self, kinds: dict[str, str], workers: int = 1, prior: dict[str, list[float]] | None = None) -> None:
        self.kinds = dict(kinds)
        self.workers = max(1, workers)
        self.prior = {kind: list(times) for kind, times in (prior or {}).items() if times}
        self.finished: dict[str, float] = {}
        self._lock = threading.Lock()

    def finish(self, key: str, seconds: float) -> None:
        """Record an item finished in ``seconds``."""
        with self._lock:
            self.finished[key] = seconds

    def mean(self, kind: str) -> float | None:
        """Mean seconds of an item of ``kind`` (this run's items first); None when none is timed."""
        with self._lock:
            times = [s for k, s in self.finished.items() if self.kinds.get(k) == kind] or self.prior.get(kind, [])
        return sum(times) / len(times) if times else None

    def left(self) -> dict[str, int]:
        """Items left per kind."""
        with self._lock:
            left: dict[str, int] = {}
            for key, kind in self.kinds.items():
                if key not in self.finished:
                    left[kind] = left.get(kind, 0) + 1
        return left

    def __call__(self) -> tuple[float | None, str]:
        """Seconds left (None when nothing left can be timed) and how they were estimated."""
        seconds, known, unknown = 0.0, [], []
        for kind, n in sorted(self.left().items()):
            mean = self.mean(kind)
            if mean is None:
                unknown.append(f"{n} {kind}")
            else:
                seconds += n * mean
                known.append(f"{n} {kind} x {duration(mean)}")
        how = ", ".join(known)
        if self.workers > 1 and known:
            how += f", over {self.workers} workers"
        if unknown:
            how = (f"{how}; at least: " if known else "") + f"{' + '.join(unknown)} not timed yet"
        if not known and unknown:
            return None, how
        return seconds / self.workers, how


_QUIET_DONE = False


def quiet_third_party_progress() -> None:
    """Turn off the progress bars of Hugging Face libraries (weights loading, downloads) and of transformers'
    GGUF conversion, which draw with carriage returns into whatever standard error is, logs included; lmbrain's
    own :class:`Progress` reports those stages."""
    global _QUIET_DONE
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if _QUIET_DONE:
        return
    with contextlib.suppress(ImportError):
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    with contextlib.suppress(ImportError):
        import functools

        from tqdm.auto import tqdm
        from transformers import modeling_gguf_pytorch_utils as gguf

        gguf.tqdm = functools.partial(tqdm, disable=True)  # it draws with tqdm directly, whatever the settings
    _QUIET_DONE = True


@contextlib.contextmanager
def progress(what: str, total: int | None, unit: str = "item", **options: object) -> Iterator[Progress]:
    """A :class:`Progress` for a ``with`` block (closed with its final line when the block ends normally)."""
    stage = Progress(what, total, unit, **options)  # type: ignore[arg-type]
    try:
        yield stage
    except BaseException:
        stage.close(ok=False)
        raise
    stage.close()
