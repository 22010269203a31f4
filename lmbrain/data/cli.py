"""``lmbrain data`` commands: list, info, verify, fetch, checksums (a typer sub-app named ``app``).

Errors propagate as :class:`lmbrain.errors.LmbrainError` to :func:`lmbrain.cli.main`, which prints one line and
exits with the code of the scheme in :mod:`lmbrain.errors`; modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmbrain.clitools import echo
from lmbrain.errors import DataError, LmbrainError

app = typer.Typer(
    help="Datasets: list, describe, verify and fetch the datasets lmbrain knows.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Dataset name or path to a spec YAML.")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: $LMBRAIN_DATA_DIR).")
]


def _check_data_dir(data_dir: Path | None) -> None:
    """Refuse a --data-dir that does not exist (else every file would merely be reported missing)."""
    if data_dir is not None and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a directory")


@app.command("list")
def list_command() -> None:
    """List every dataset spec: name, modality, reader, stimulus unit and split unit."""
    from lmbrain.data.specs import find_spec, list_specs

    for name in list_specs():
        try:
            spec = find_spec(name)
        except LmbrainError as err:
            echo(f"{name:24s} INVALID SPEC: {err}")
            continue
        echo(
            f"{spec.name:24s} {spec.modality:16s} reader={spec.reader:20s} "
            f"unit={spec.stimulus_unit:8s} split={spec.split_unit}"
        )


@app.command("info")
def info_command(name: NameArg) -> None:
    """Describe a dataset from its spec: citation, licence, files, subjects, timing, options."""
    from lmbrain.data.specs import find_spec

    spec = find_spec(name)
    from lmbrain.data.registry import get_reader

    reader = get_reader(spec.reader)
    echo(f"{spec.name} ({spec.modality}, reader {spec.reader}): {spec.description}".strip())
    echo(f"citation: {spec.citation}")
    echo(f"licence: {spec.licence}")
    if spec.source:
        echo(f"source: {spec.source}")
    echo(f"stimulus unit: {spec.stimulus_unit}; split unit: {spec.split_unit}")
    if spec.split_description:
        echo(f"  {spec.split_description}")
    if spec.timing:
        echo(f"timing: {spec.timing.model_dump(exclude_none=True)}")
    if spec.subjects is not None:
        echo(f"subjects ({len(spec.subjects)}): {' '.join(spec.subjects)}")
    n_url = sum(f.url is not None for f in spec.files)
    n_sha = sum(f.sha256 is not None for f in spec.files)
    echo(
        f"files: {len(spec.files)} under {spec.root}/ ({n_sha} with sha256, {n_url} with a download URL)"
    )
    echo(f"reader options: { ({**reader.options, **spec.options}) }")


@app.command("verify")
def verify_command(
    name: NameArg,
    data_dir: DataDirOption = None,
    load: Annotated[bool, typer.Option(help="Also load the dataset and print its summary.")] = True,
) -> None:
    """Check every file (present, sha256) and, with --load, that the dataset loads; exit 3 on a problem."""
    from lmbrain import config
    from lmbrain.data.specs import find_spec

    _check_data_dir(data_dir)
    spec = find_spec(name)
    from lmbrain.data.checks import check_files

    root = spec.root_dir(data_dir if data_dir is not None else config.data_dir())
    statuses = check_files(spec, root)
    bad = [s for s in statuses if s.status in ("missing", "mismatch")]
    counts = {k: sum(s.status == k for s in statuses) for k in ("ok", "unchecked", "missing", "mismatch")}
    for status in bad:
        echo(f"{status.status.upper():9s} {status.detail}")
    echo(
        f"{spec.name}: {counts['ok']} ok, {counts['unchecked']} without checksum, "
        f"{counts['missing']} missing, {counts['mismatch']} mismatched"
    )
    if bad:
        raise DataError(
            f"{spec.name}: {counts['missing']} file(s) missing and {counts['mismatch']} with a wrong sha256 "
            f"under {root}; run: lmbrain data fetch {name}"
        )
    if load:
        from lmbrain.data.registry import load_dataset

        dataset = load_dataset(name, data_dir=data_dir)
        echo(dataset.summary())
        for subject, reason in dataset.excluded.items():
            echo(f"excluded subject {subject}: {reason}")
        for neuroid, reason in dataset.masked.items():
            echo(f"masked neuroid {neuroid}: {reason}")
        for key, value in dataset.meta.items():
            echo(f"{key}: {value}")


@app.command("fetch")
def fetch_command(
    name: NameArg,
    data_dir: DataDirOption = None,
) -> None:
    """Download the dataset's missing files (resuming partial downloads), verifying each sha256."""
    from lmbrain.data.fetch import fetch_dataset

    _check_data_dir(data_dir)
    results = fetch_dataset(name, data_dir=data_dir)
    for result in results:
        echo(f"{result.action:10s} {result.path}")


@app.command("checksums")
def checksums_command(
    folder: Annotated[Path, typer.Argument(help="Dataset folder whose files a new spec should list.")],
) -> None:
    """Print a spec's ``files:`` block (path, sha256, size) for every file under a folder."""
    import hashlib

    import yaml

    if not folder.is_dir():
        raise DataError(f"{folder} is not a directory" if folder.exists() else f"{folder} does not exist")
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries.append({"path": str(path.relative_to(folder)), "sha256": digest, "size": path.stat().st_size})
    echo(yaml.safe_dump({"files": entries}, sort_keys=False, width=110), nl=False)
