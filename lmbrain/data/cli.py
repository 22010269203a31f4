"""``lmbrain data`` commands: list, info, verify, fetch, checksums, init, check (a typer sub-app named ``app``).

Errors propagate as :class:`lmbrain.errors.LmbrainError` to :func:`lmbrain.cli.main`, which prints one line and
exits with the code of the scheme in :mod:`lmbrain.errors`; modules are imported inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmbrain.clitools import DATA_LOAD_LOGGERS, PATH, echo, nonempty_path, quiet_loggers
from lmbrain.errors import DataError, LmbrainError, UsageError

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

        with quiet_loggers(*DATA_LOAD_LOGGERS):  # the summary and lines below state every data problem, once
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
    allow_file_urls: Annotated[bool, typer.Option(
        "--allow-file-urls", help="Also copy file:// URLs (each with its sha256; also: LMBRAIN_ALLOW_FILE_URLS=1)."
    )] = False,
) -> None:
    """Download the dataset's missing files into its folder under the data directory (resuming partial
    downloads), verifying each sha256 (required); http(s) URLs only, file:// with --allow-file-urls."""
    from lmbrain.data.fetch import fetch_dataset

    _check_data_dir(data_dir)
    results = fetch_dataset(name, data_dir=data_dir, allow_file_urls=allow_file_urls)
    for result in results:
        echo(f"{result.action:10s} {result.path}")


@app.command("checksums")
def checksums_command(
    folder: Annotated[Path, typer.Argument(help="Dataset folder whose files a new spec should list.")],
    role: Annotated[
        str, typer.Option(help="Role written on every entry (what the reader expects; edit per file after).")
    ] = "data",
) -> None:
    """Print a spec's ``files:`` block (path, sha256, size, role) for every file under a folder."""
    import yaml

    from lmbrain.io import sha256_file

    if not folder.is_dir():
        raise DataError(f"{folder} is not a directory" if folder.exists() else f"{folder} does not exist")
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = sha256_file(path)
        entries.append(
            {"path": str(path.relative_to(folder)), "sha256": digest, "size": path.stat().st_size, "role": role}
        )
    echo("# role: what each file is to the reader (data_specs/README.md lists each reader's roles)")
    echo(yaml.safe_dump({"files": entries}, sort_keys=False, width=110), nl=False)


@app.command("init")
def init_command(
    table: Annotated[Path, typer.Argument(
        help="The table (CSV, TSV or parquet) to write a spec for, in a folder under the data directory.",
        parser=nonempty_path, metavar="TABLE")],
    name: Annotated[str | None, typer.Option(
        help="Dataset name (default: the file name): letters, digits, '_', '-', '.' (not first).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Spec file to write (default: NAME.yaml in the current folder).", **PATH)
    ] = None,
    data_dir: DataDirOption = None,
    modality: Annotated[str, typer.Option(help="reading_times, eeg_words, ecog_words or fmri_sentences.")]
    = "reading_times",
    unit: Annotated[str | None, typer.Option(help="word or sentence (default: guessed from the text).")] = None,
    text: Annotated[str | None, typer.Option(help="Column with the word / sentence.")] = None,
    context: Annotated[str | None, typer.Option(help="Column naming the text each unit is read in.")] = None,
    position: Annotated[str | None, typer.Option(help="Column with the order inside the context.")] = None,
    sentence: Annotated[str | None, typer.Option(help="Column naming each word's sentence.")] = None,
    split: Annotated[str | None, typer.Option(help="Column of cross-validation groups (default: context).")]
    = None,
    subject: Annotated[str | None, typer.Option(help="Column naming the subject (long format).")] = None,
    response: Annotated[
        list[str] | None, typer.Option(help="Response column (repeat for several; default: guessed).")
    ] = None,
    citation: Annotated[str, typer.Option(help="How to cite the corpus.")] = "TODO: cite the corpus",
    licence: Annotated[str, typer.Option(help="The corpus licence.")] = "TODO: the corpus licence",
    force: Annotated[bool, typer.Option(help="Overwrite an existing spec file.")] = False,
) -> None:
    """Write a ``table``-reader spec for a table in a folder under the data directory: columns guessed (or
    named), file checksummed with its role, ``root`` relative to the data directory."""
    import yaml

    from lmbrain.clitools import check_writable
    from lmbrain.data.scaffold import scaffold_spec, trial_load
    from lmbrain.io import atomic_write_text

    _check_init_options(modality, unit)
    _check_data_dir(data_dir)
    name = _spec_name(table, name)
    out = out or Path(f"{name}.yaml")
    if out.exists() and not force:
        raise DataError(f"{out} exists; pass --force to overwrite it")
    check_writable(out, "--out")
    given = {"text": text, "context": context, "position": position, "sentence": sentence, "split": split,
             "subject": subject, "responses": response}
    spec, notes = scaffold_spec(table, name=name, modality=modality, unit=unit, given=given, citation=citation,
                                licence=licence, data_dir=data_dir)
    with quiet_loggers(*DATA_LOAD_LOGGERS):  # `data check` states the data problems; here only refusals count
        trial_load(spec, data_dir, source=str(out))  # what is written is a valid spec that loads
    atomic_write_text(out, yaml.safe_dump(spec, sort_keys=False, width=110, allow_unicode=True))
    _echo_next_steps(out, name, notes)


def _check_init_options(modality: str, unit: str | None) -> None:
    """Refuse a modality the table reader does not read and a unit other than word or sentence."""
    from lmbrain.data.specs import MODALITIES

    if modality not in MODALITIES or modality == "fmri_timeseries":
        raise DataError(f"--modality {modality!r}: the table reader takes {[m for m in MODALITIES if 'time' not in m]}")
    if unit not in (None, "word", "sentence"):
        raise DataError(f"--unit {unit!r}: choose word or sentence")


def _spec_name(table: Path, name: str | None) -> str:
    """The dataset name: the one given, else made from the file name; a UsageError when it is no valid name."""
    import re

    from lmbrain.paths import slug_problem

    given_name = name is not None
    name = name if given_name else re.sub(r"[^A-Za-z0-9_]+", "_", table.stem).strip("_").lower()
    problem = slug_problem(name)
    if problem:
        how = "" if given_name else f" (made from the file name {table.name!r}; give --name)"
        raise UsageError(f"--name: {problem}{how}")
    return name


def _echo_next_steps(out: Path, name: str, notes: list[str]) -> None:
    """Print the assumptions made and how to check the new spec."""
    for note in notes:
        echo(f"assumed {note}")
    echo(f"wrote {out}; check the assumptions above (edit the options or rerun with --text/--context/...), then:")
    folder = out.resolve().parent
    echo(f"  export LMBRAIN_SPECS_DIR={folder}   # so that the name {name!r} is found")
    echo(f"  lmbrain data check {name}")


@app.command("check")
def check_command(
    name: NameArg,
    data_dir: DataDirOption = None,
    rows: Annotated[int, typer.Option(help="How many stimulus rows to show with their responses.")] = 5,
) -> None:
    """Load a dataset and print what to eyeball: counts, groups, missing values, the first rows aligned."""
    from lmbrain.data.registry import load_dataset
    from lmbrain.data.scaffold import check_summary

    _check_data_dir(data_dir)
    with quiet_loggers(*DATA_LOAD_LOGGERS):  # the summary below states every data problem, once
        dataset = load_dataset(name, data_dir=data_dir)
    echo(check_summary(dataset, rows))
