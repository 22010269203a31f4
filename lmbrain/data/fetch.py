"""Download dataset files into the data directory: HTTP Range resume, sha256 check, atomic rename."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lmbrain import config
from lmbrain.data.specs import DataSpec, find_spec
from lmbrain.errors import DataError
from lmbrain.io import sha256_file

log = logging.getLogger(__name__)

#: Set to 1 to let ``data fetch`` copy ``file://`` URLs (each still needs its sha256); ``--allow-file-urls`` too.
ALLOW_FILE_URLS_VAR = "LMBRAIN_ALLOW_FILE_URLS"
#: URL schemes fetched without asking (``file`` only on request: a spec must not read the local disk unasked).
SCHEMES = ("https", "http")


def file_urls_allowed(flag: bool = False) -> bool:
    """Whether ``file://`` URLs may be fetched: ``flag`` (``--allow-file-urls``) or ``$LMBRAIN_ALLOW_FILE_URLS=1``."""
    return flag or os.environ.get(ALLOW_FILE_URLS_VAR, "").strip().lower() in ("1", "true", "yes")


def url_problem(url: str, sha256: str | None, *, allow_file_urls: bool = False) -> str | None:
    """Why a URL may not be fetched, or None: an http(s) URL, or a ``file://`` URL with a sha256 when allowed."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme == "file":
        if not allow_file_urls:
            return (f"{url}: file:// URLs are fetched only on request (--allow-file-urls or "
                    f"{ALLOW_FILE_URLS_VAR}=1)")
        if sha256 is None:
            return f"{url}: a file:// URL needs the file's sha256 in the spec"
        return None
    if scheme not in SCHEMES:
        return f"{url}: unsupported URL scheme {scheme or '(none)'!r}; use https (or http)"
    return None


def _sha256_prefix(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest


def download(url: str, dest: Path, *, sha256: str | None = None, timeout: float = 60.0,
             allow_file_urls: bool = False) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part`` (resumed with a Range request), verify, rename.

    Only http(s) URLs, and ``file://`` ones with a sha256 when ``allow_file_urls``. A checksum mismatch deletes
    the partial file and raises a DataError; ``dest`` is never half-written.
    """
    problem = url_problem(url, sha256, allow_file_urls=allow_file_urls)
    if problem:
        raise DataError(problem)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have > 0 and response.status == 206
            if resumed:
                content_range = response.headers.get("Content-Range", "")
                if not content_range.startswith(f"bytes {have}-"):
                    raise DataError(
                        f"{url}: server answered Range {have}- with Content-Range {content_range!r}"
                    )
            digest = _sha256_prefix(part) if resumed else hashlib.sha256()
            with part.open("ab" if resumed else "wb") as out:
                while block := response.read(1 << 16):
                    out.write(block)
                    digest.update(block)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to send: the partial file is complete
            digest = _sha256_prefix(part)
        else:
            raise DataError(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise DataError(f"{url}: cannot download ({err.reason}); partial data kept in {part}") from None
    except OSError as err:
        raise DataError(f"{url}: download interrupted ({err}); partial data kept in {part}") from None
    got = digest.hexdigest()
    if sha256 is not None and got != sha256:
        part.unlink(missing_ok=True)
        raise DataError(
            f"{url}: checksum mismatch for {dest}: got sha256 {got}, expected {sha256}; nothing written"
        )
    os.replace(part, dest)
    return dest


@dataclass(frozen=True)
class FetchResult:
    """What ``fetch_dataset`` did with one file."""

    path: Path
    action: str  # "present", "downloaded"


def fetch_dataset(name_or_spec: str | Path | DataSpec, *, data_dir: Path | None = None,
                  allow_file_urls: bool = False) -> list[FetchResult]:
    """Download every missing file of a dataset (URL + sha256 from its spec) into the data directory.

    Every file to download is checked first: it needs a URL and a sha256, an http(s) URL (``file://`` only with
    ``allow_file_urls`` or ``$LMBRAIN_ALLOW_FILE_URLS=1``), and lands inside the dataset's folder under the data
    directory. Files already present are checked; one with a wrong checksum is an error (delete it to re-fetch).
    """
    spec = name_or_spec if isinstance(name_or_spec, DataSpec) else find_spec(name_or_spec)
    base = Path(data_dir) if data_dir is not None else config.data_dir()
    root = spec.root_dir(base)
    allow = file_urls_allowed(allow_file_urls)
    targets = [(entry, spec.file_path(base, entry)) for entry in spec.files]
    missing_url = [f.path for f, dest in targets if f.url is None and not dest.is_file()]
    if missing_url:
        raise DataError(
            f"dataset {spec.name}: no download URL for missing file(s) {missing_url}; "
            f"obtain them as the spec's source says ({spec.source or 'see citation'}) "
            f"and place them under {root}"
        )
    for entry, dest in targets:
        if dest.is_file():
            continue
        if entry.sha256 is None:
            raise DataError(f"dataset {spec.name}: file {entry.path!r} has a URL but no sha256 in the spec; "
                            "a downloaded file is never trusted unchecked (add its sha256)")
        problem = url_problem(str(entry.url), entry.sha256, allow_file_urls=allow)
        if problem:
            raise DataError(f"dataset {spec.name}: {problem}")
    results = []
    for entry, dest in targets:
        if dest.is_file():
            if entry.sha256 is not None and sha256_file(dest) != entry.sha256:
                raise DataError(
                    f"dataset {spec.name}: {dest} exists with a wrong checksum; delete it to re-fetch"
                )
            results.append(FetchResult(dest, "present"))
            continue
        assert entry.url is not None
        log.info("downloading %s -> %s", entry.url, dest)
        download(entry.url, dest, sha256=entry.sha256, allow_file_urls=allow)
        results.append(FetchResult(dest, "downloaded"))
    return results
