"""fetch: download from a local HTTP server on 127.0.0.1 with Range resume; refuse a checksum mismatch."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from lmbrain.data import load_dataset
from lmbrain.data.fetch import download, fetch_dataset
from lmbrain.data.specs import read_spec
from lmbrain.errors import DataError

from .helpers import FIXTURES, fixture_spec


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support (``bytes=N-``); records the Range headers it saw."""

    ranges: ClassVar[list[str | None]] = []

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        if header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    served = tmp_path / "served"
    served.mkdir()
    RangeHandler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(RangeHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_resumes_a_partial_file(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    payload = bytes(range(256)) * 400
    (served / "blob.bin").write_bytes(payload)
    dest = tmp_path / "data" / "blob.bin"
    dest.parent.mkdir()
    (dest.parent / "blob.bin.part").write_bytes(payload[:40000])
    download(f"{url}/blob.bin", dest, sha256=hashlib.sha256(payload).hexdigest())
    assert dest.read_bytes() == payload and not (dest.parent / "blob.bin.part").exists()
    assert RangeHandler.ranges == ["bytes=40000-"]


def test_download_refuses_a_checksum_mismatch(server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = server
    (served / "blob.bin").write_bytes(b"tampered content")
    dest = tmp_path / "blob.bin"
    with pytest.raises(DataError, match=r"checksum mismatch for .*blob\.bin.*nothing written"):
        download(f"{url}/blob.bin", dest, sha256="0" * 64)
    assert not dest.exists() and not (tmp_path / "blob.bin.part").exists()


def test_download_http_error_is_clear(server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = server
    with pytest.raises(DataError, match="HTTP 404"):
        download(f"{url}/absent.bin", tmp_path / "absent.bin")


def test_fetch_dataset_then_load(server: tuple[str, Path], tmp_path: Path) -> None:
    """Serve the Tuckute fixture, fetch it through its spec (one file half-downloaded), then load it."""
    url, served = server
    raw = yaml.safe_load(fixture_spec("fixture_tuckute").read_text())
    for entry in raw["files"]:
        (served / entry["path"]).write_bytes((FIXTURES / "tuckute" / entry["path"]).read_bytes())
        entry["url"] = f"{url}/{entry['path']}"
    spec_path = tmp_path / "fixture_tuckute.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    data_dir = tmp_path / "data"
    first = raw["files"][0]["path"]
    (data_dir / "tuckute").mkdir(parents=True)
    (data_dir / "tuckute" / f"{first}.part").write_bytes((served / first).read_bytes()[:100])
    results = fetch_dataset(read_spec(spec_path), data_dir=data_dir)
    assert [r.action for r in results] == ["downloaded", "downloaded"]
    assert "bytes=100-" in RangeHandler.ranges
    assert load_dataset(spec_path, data_dir=data_dir).responses.shape == (3, 4)
    assert [r.action for r in fetch_dataset(read_spec(spec_path), data_dir=data_dir)] == [
        "present",
        "present",
    ]


def test_fetch_refuses_a_served_file_with_the_wrong_checksum(
    server: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = server
    raw = yaml.safe_load(fixture_spec("fixture_tuckute").read_text())
    for entry in raw["files"]:
        (served / entry["path"]).write_text("not the file the spec describes\n")
        entry["url"] = f"{url}/{entry['path']}"
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataError, match="checksum mismatch"):
        fetch_dataset(read_spec(spec_path), data_dir=tmp_path / "data")
    assert not any((tmp_path / "data").rglob("*.csv*"))


def test_fetch_without_url_says_where_to_get_files(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"no download URL for missing file\(s\) \['brain-lang-data_participant_848"
    ):
        fetch_dataset(read_spec(fixture_spec("fixture_tuckute")), data_dir=tmp_path)
