"""User-controlled paths stay inside their roots: a spec's ``root`` under the data directory, its ``files`` and a
reader's paths under the dataset folder, names as slugs; ``data fetch`` needs a sha256 for every download and
copies ``file://`` URLs only when asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from lmbrain.data.fetch import ALLOW_FILE_URLS_VAR, download, fetch_dataset, url_problem
from lmbrain.data.registry import ReadContext
from lmbrain.data.specs import parse_spec, read_spec
from lmbrain.errors import DataError
from lmbrain.paths import inside, relative_problem, slug_problem

from .helpers import FIXTURES, fixture_spec


def _raw(**changes: object) -> dict:
    raw = yaml.safe_load(fixture_spec("fixture_tuckute").read_text())
    raw.update(changes)
    return raw


@pytest.mark.parametrize("root", ["/etc", "~/data", "../outside", "tuckute/../../outside", "", ".", "a/\x00b"])
def test_a_spec_root_outside_the_data_directory_is_refused(root: str) -> None:
    with pytest.raises(DataError, match=r"spec s\.yaml: root: .*root"):
        parse_spec(_raw(root=root), source="s.yaml")


@pytest.mark.parametrize("path", ["/etc/passwd", "../x.csv", "a/../../x.csv", "~/x.csv", "", "."])
def test_a_spec_file_outside_the_dataset_folder_is_refused(path: str) -> None:
    raw = _raw()
    raw["files"][0]["path"] = path
    with pytest.raises(DataError, match=r"files\.0\.path"):
        parse_spec(raw, source="s.yaml")


@pytest.mark.parametrize("name", ["../../x", "a/b", ".hidden", "", "x" * 129, "two words"])
def test_a_spec_name_must_be_a_slug(name: str) -> None:
    with pytest.raises(DataError, match=r"name: "):
        parse_spec(_raw(name=name), source="s.yaml")


def test_root_dir_and_file_paths_lie_under_the_data_directory(tmp_path: Path) -> None:
    spec = parse_spec(_raw(root="nested/tuckute"), source="s.yaml")
    assert spec.root_dir(tmp_path) == tmp_path / "nested" / "tuckute"
    assert spec.file_path(tmp_path, spec.files[0]) == tmp_path / "nested" / "tuckute" / spec.files[0].path


def test_a_reader_path_cannot_leave_the_dataset_folder(tmp_path: Path) -> None:
    spec = read_spec(fixture_spec("fixture_tuckute"))
    ctx = ReadContext(spec, tmp_path / "tuckute", None, {})
    (tmp_path / "secret.txt").write_text("x")
    with pytest.raises(DataError, match=r"must not contain '\.\.'"):
        ctx.path("../secret.txt")
    with pytest.raises(DataError, match="must be relative"):
        ctx.path(str(tmp_path / "secret.txt"))


def test_the_lexical_checks() -> None:
    assert slug_problem("byo_reading-2.v1") is None and slug_problem("..") and slug_problem("a b")
    assert relative_problem("a/b.csv", "p") is None and relative_problem("a/../../b", "p")
    assert inside(Path("/data"), "a/b", "p") == Path("/data/a/b")
    with pytest.raises(ValueError, match="must be relative"):
        inside(Path("/data"), "/data/a", "p")


def _spec_with(tmp_path: Path, **entry: object) -> Path:
    raw = _raw()
    raw["files"] = [{**raw["files"][0], **entry}]
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_fetch_needs_a_sha256_for_every_download(tmp_path: Path) -> None:
    spec = _spec_with(tmp_path, url="https://example.org/x.csv", sha256=None)
    with pytest.raises(DataError, match="no sha256"):
        fetch_dataset(read_spec(spec), data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_file_urls_are_fetched_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_FILE_URLS_VAR, raising=False)
    source = FIXTURES / "tuckute" / yaml.safe_load(fixture_spec("fixture_tuckute").read_text())["files"][0]["path"]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    spec = read_spec(_spec_with(tmp_path, url=source.as_uri(), sha256=digest))
    with pytest.raises(DataError, match="file:// URLs are fetched only on request"):
        fetch_dataset(spec, data_dir=tmp_path / "data")
    assert not (tmp_path / "data").exists()
    results = fetch_dataset(spec, data_dir=tmp_path / "data", allow_file_urls=True)
    assert [r.action for r in results] == ["downloaded"]
    assert results[0].path.read_bytes() == source.read_bytes()
    assert results[0].path.is_relative_to(tmp_path / "data" / "tuckute")
    monkeypatch.setenv(ALLOW_FILE_URLS_VAR, "1")
    assert [r.action for r in fetch_dataset(spec, data_dir=tmp_path / "data")] == ["present"]


def test_url_rules() -> None:
    assert url_problem("https://example.org/a", None) is None
    assert "unsupported URL scheme 'ftp'" in str(url_problem("ftp://example.org/a", "0" * 64))
    assert "needs the file's sha256" in str(url_problem("file:///etc/passwd", None, allow_file_urls=True))
    with pytest.raises(DataError, match="only on request"):
        download("file:///etc/passwd", Path("/nonexistent/never/written"))
