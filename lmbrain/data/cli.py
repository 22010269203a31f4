"""``lmbrain data`` commands: list, info, verify, fetch, checksums (a typer sub-app named ``app``)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
import yaml

from lmbrain import config
from lmbrain.data.checks import check_files
from lmbrain.data.fetch import fetch_dataset
from lmbrain.data.registry import get_reader, load_dataset
from lmbrain.data.specs import find_spec, list_specs
from lmbrain.errors import LmbrainError

app = typer.Typer(
    help="Datasets: list, describe, verify and fetch the datasets lmbrain knows.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="Dataset name or path to a spec YAML.")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: $LMBRAIN_DATA_DIR).")
]


def _fail(err: Exception) -> None:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command("list")
def list_command() -> None:
    """List every dataset spec: name, modality, reader, stimulus unit and split unit."""
    for name in list_specs():
        try:
            spec = find_spec(name)
        except LmbrainError as err:
            typer.echo(f"{name:24s} INVALID SPEC: {err}")
            continue
        typer.echo(
            f"{spec.name:24s} {spec.modality:16s} reader={spec.reader:20s} "
            f"unit={spec.stimulus_unit:8s} split={spec.split_unit}"
        )


@app.command("info")
def info_command(name: NameArg) -> None:
    """Describe a dataset from its spec: citation, licence, files, subjects, timing, options."""
    try:
        spec = find_spec(name)
        reader = get_reader(spec.reader)
    except LmbrainError as err:
        _fail(err)
        return
    typer.echo(f"{spec.name} ({spec.modality}, reader {spec.reader}): {spec.description}".strip())
    typer.echo(f"citation: {spec.citation}")
    typer.echo(f"licence: {spec.licence}")
    if spec.source:
        typer.echo(f"source: {spec.source}")
    typer.echo(f"stimulus unit: {spec.stimulus_unit}; split unit: {spec.split_unit}")
    if spec.split_description:
        typer.echo(f"  {spec.split_description}")
    if spec.timing:
        typer.echo(f"timing: {spec.timing.model_dump(exclude_none=True)}")
    if spec.subjects is not None:
        typer.echo(f"subjects ({len(spec.subjects)}): {' '.join(spec.subjects)}")
    n_url = sum(f.url is not None for f in spec.files)
    n_sha = sum(f.sha256 is not None for f in spec.files)
    typer.echo(
        f"files: {len(spec.files)} under {spec.root}/ ({n_sha} with sha256, {n_url} with a download URL)"
    )
    typer.echo(f"reader options: { ({**reader.options, **spec.options}) }")


@app.command("verify")
def verify_command(
    name: NameArg,
    data_dir: DataDirOption = None,
    load: Annotated[bool, typer.Option(help="Also load the dataset and print its summary.")] = True,
) -> None:
    """Check every file (present, sha256) and, with --load, that the dataset loads; exit 1 on a problem."""
    try:
        spec = find_spec(name)
        root = spec.root_dir(data_dir if data_dir is not None else config.data_dir())
        statuses = check_files(spec, root)
    except LmbrainError as err:
        _fail(err)
        return
    bad = [s for s in statuses if s.status in ("missing", "mismatch")]
    counts = {k: sum(s.status == k for s in statuses) for k in ("ok", "unchecked", "missing", "mismatch")}
    for status in bad:
        typer.echo(f"{status.status.upper():9s} {status.detail}")
    typer.echo(
        f"{spec.name}: {counts['ok']} ok, {counts['unchecked']} without checksum, "
        f"{counts['missing']} missing, {counts['mismatch']} mismatched"
    )
    if bad:
        raise typer.Exit(code=1)
    if load:
        try:
            dataset = load_dataset(name, data_dir=data_dir)
        except LmbrainError as err:
            _fail(err)
            return
        typer.echo(dataset.summary())
        for subject, reason in dataset.excluded.items():
            typer.echo(f"excluded subject {subject}: {reason}")
        for neuroid, reason in dataset.masked.items():
            typer.echo(f"masked neuroid {neuroid}: {reason}")
        for key, value in dataset.meta.items():
            typer.echo(f"{key}: {value}")


@app.command("fetch")
def fetch_command(
    name: NameArg,
    data_dir: DataDirOption = None,
) -> None:
    """Download the dataset's missing files (resuming partial downloads), verifying each sha256."""
    try:
        results = fetch_dataset(name, data_dir=data_dir)
    except LmbrainError as err:
        _fail(err)
        return
    for result in results:
        typer.echo(f"{result.action:10s} {result.path}")


@app.command("checksums")
def checksums_command(
    folder: Annotated[Path, typer.Argument(help="Dataset folder whose files a new spec should list.")],
) -> None:
    """Print a spec's ``files:`` block (path, sha256, size) for every file under a folder."""
    if not folder.is_dir():
        _fail(FileNotFoundError(f"{folder} is not a directory"))
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        entries.append({"path": str(path.relative_to(folder)), "sha256": digest, "size": path.stat().st_size})
    typer.echo(yaml.safe_dump({"files": entries}, sort_keys=False, width=110), nl=False)
