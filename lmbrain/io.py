"""Files, the ground floor: atomic writes (text, bytes, parquet), sha256 (with a fingerprint memo), staging folders
published by rename, free-space checks. The only home of these helpers: every other module imports them from here."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lmbrain.config import cache_dir
from lmbrain.errors import RunError

if TYPE_CHECKING:
    import pandas as pd

_CHUNK = 1 << 22
#: free space left over after a large cache write, at least (other writers, manifests, the file system's own needs)
SPACE_MARGIN = 64 * 2**20


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's content, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


#: sha256 of files already hashed by this process, by (real path, size, mtime): :func:`memoised_sha256`
_PROCESS_HASHES: dict[tuple[str, int, int], str] = {}


def memoised_sha256(path: Path) -> str:
    """sha256 of a file, memoised in this process by (real path, size, mtime): data files are verified on every load,
    and nothing is written (validation must not touch the cache folder)."""
    real = Path(path).resolve()
    stat = real.stat()
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    if key not in _PROCESS_HASHES:
        _PROCESS_HASHES[key] = sha256_file(real)
    return _PROCESS_HASHES[key]


def _memo_path() -> Path:
    return cache_dir() / "file_hashes.json"


def cached_sha256(path: str | Path) -> str:
    """sha256 of a (large, rarely changing) file, memoised by (real path, size, mtime) in the cache dir."""
    real = Path(path).resolve()
    stat = real.stat()
    fingerprint = f"{real}|{stat.st_size}|{stat.st_mtime_ns}"
    memo_file = _memo_path()
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    if isinstance(memo, dict) and isinstance(memo.get(fingerprint), str):
        return memo[fingerprint]
    digest = sha256_file(real)
    memo = memo if isinstance(memo, dict) else {}
    memo[fingerprint] = digest
    with contextlib.suppress(OSError):
        atomic_write_text(memo_file, json.dumps(memo, indent=1, sort_keys=True))
    return digest


def combined_sha256(paths: Iterable[Path]) -> str:
    """One sha256 over several files (name and content hash of each, in name order)."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(f"{path.name}:{cached_sha256(path)}\n".encode())
    return digest.hexdigest()


def canonical_json(value: object) -> str:
    """Deterministic JSON (sorted keys, no spaces) used for content addressing."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def umask() -> int:
    """The process's umask (read from /proc where possible: setting it to read it back races other threads)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a new file under the user's umask (``mkstemp`` alone creates them 0600)."""
    return 0o666 & ~umask()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename (mode per umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), file_mode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and error.filename is None:  # a full disk fails a write naming no file
            error.filename = str(path)
        raise


#: zstd level of the study's parquet files: 19 compresses results.parquet (200k rows) in about 0.3 s; higher
#: levels gain nothing measurable
PARQUET_ZSTD_LEVEL = 19


def parquet_bytes(table: pd.DataFrame) -> bytes:
    """A DataFrame as compact, lossless parquet: float columns byte-stream-split (their exponent and mantissa bytes
    compress apart; the values stay bit-exact), every other column dictionary-encoded, all zstd-compressed.

    pandas reads it back as the same frame (same dtypes, no categoricals): nothing downstream changes.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    floats = [f.name for f in arrow.schema if pa.types.is_floating(f.type)]
    buffer = io.BytesIO()
    pq.write_table(arrow, buffer, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL,
                   use_dictionary=[name for name in arrow.column_names if name not in floats],
                   column_encoding=dict.fromkeys(floats, "BYTE_STREAM_SPLIT"))
    return buffer.getvalue()


def atomic_write_parquet(path: Path, table: pd.DataFrame) -> None:
    """Write a DataFrame as parquet (:func:`parquet_bytes`) atomically."""
    atomic_write_bytes(path, parquet_bytes(table))


def atomic_write_text(path: Path, text: str) -> None:
    """Write a text file (UTF-8) so readers see either the old or the new content, never a partial one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def staging_dir(root: Path, name: str) -> Path:
    """A fresh private folder next to ``root/name`` in which to build an entry before publishing it."""
    staging = root / ".staging"
    staging.mkdir(parents=True, exist_ok=True)
    path = staging / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    path.mkdir()
    return path


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except (OverflowError, ValueError):
        return False
    return True


def clean_staging(root: Path) -> list[Path]:
    """Remove the staging folders (``root/.staging/<name>.<pid>.<tag>``) of processes no longer alive;
    returns those removed."""
    removed = []
    with contextlib.suppress(OSError):
        for folder in (root / ".staging").iterdir():
            parts = folder.name.rsplit(".", 2)
            if len(parts) == 3 and parts[1].isdigit() and not pid_alive(int(parts[1])):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed


def publish_dir(staged: Path, final: Path) -> bool:
    """Atomically rename a written folder into place; False (staged removed) if one already exists."""
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staged, final)
        return True
    except OSError:
        if final.exists():
            shutil.rmtree(staged, ignore_errors=True)
            return False
        raise


def remove_dir(path: Path) -> None:
    """Remove a cache entry folder: first renamed aside (atomic), then deleted."""
    if not path.exists():
        return
    trash = path.with_name(f".trash.{path.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.rename(path, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def human_bytes(n: float) -> str:
    """``1.2 GiB``, ``350 MiB``, ``12 KiB`` or ``512 B``."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def no_space(folder: Path, needed: int, free: int, what: str) -> RunError:
    """The one-line error of a cache write that does not fit on its disk."""
    return RunError(f"not enough free space in {folder} for {what}: it needs {human_bytes(needed)} (with a margin), "
                    f"{human_bytes(free)} are free; free some space or set LMBRAIN_CACHE_DIR to a larger disk")


def ensure_space(folder: Path, needed: int, what: str) -> None:
    """Refuse (RunError, one line) to write ``needed`` bytes under ``folder`` unless the disk has them free plus a
    margin: a memory-mapped write to a full disk kills the process with SIGBUS instead of raising."""
    wanted = needed + max(SPACE_MARGIN, needed // 20)
    free = shutil.disk_usage(folder).free
    if free < wanted:
        raise no_space(folder, wanted, free, what)


def reserve(path: Path, size: int, what: str) -> None:
    """Allocate a file's ``size`` bytes on disk now (``posix_fallocate``), so that writing it through a memory map
    cannot meet a full disk later; a full disk is a RunError naming the file. Where the file system cannot
    preallocate, :func:`ensure_space`'s check stands alone."""
    if not hasattr(os, "posix_fallocate") or size <= 0:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as error:
        if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
            raise no_space(path.parent, size, shutil.disk_usage(path.parent).free, what) from None
        if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)):
            raise
    finally:
        os.close(fd)
