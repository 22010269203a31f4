"""The ``lmbrain`` command line: run studies, build reports, manage data and features."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import click
import typer

from lmbrain.errors import LmbrainError

app = typer.Typer(
    help="lmbrain: language-model-to-brain encoding studies with leakage-proof CV and controls built in.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _register_subapps() -> None:
    from lmbrain.data.cli import app as data_app
    from lmbrain.features.cli import app as features_app

    app.add_typer(data_app, name="data", help="List, describe, verify and fetch datasets.")
    app.add_typer(features_app, name="features", help="Extract and cache language-model features.")
    for command in features_app.registered_commands:  # `lmbrain extract` as a top-level command too
        if command.name == "extract" or (command.callback and command.callback.__name__ == "extract"):
            app.command("extract", help=command.help)(command.callback)


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="Study YAML file (see analyses/).")],
    out: Annotated[Path | None, typer.Option(help="Results directory (default: reports/<study name>).")] = None,
    executor: Annotated[str, typer.Option(help="sequential | processes | dask")] = "sequential",
    n_jobs: Annotated[int, typer.Option(help="Worker processes for 'processes' or a local Dask cluster.")] = 2,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:port); default: a LocalCluster.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the units and which are done; run nothing.")] = False,
    report: Annotated[bool, typer.Option(help="Write the report after the run.")] = True,
) -> None:
    """Run a study (resumable: finished units are not recomputed), then write its report."""
    from lmbrain.report.build import write_report
    from lmbrain.study.runner import plan, run_study
    from lmbrain.study.schema import load_study

    spec = load_study(study)
    out = out or Path("reports") / spec.name
    if dry_run:
        table = plan(spec, out)
        typer.echo(table.to_string(index=False))
        typer.echo(f"{len(table)} units, {int(table['done'].sum())} done, {int((~table['done']).sum())} to run")
        return
    run_study(spec, out, executor=executor, n_jobs=n_jobs, scheduler=scheduler, study_source=study.read_text())
    if report:
        for path in write_report(out, formats=list(spec.outputs.formats)):
            typer.echo(f"wrote {path}")


@app.command()
def fit(
    dataset: Annotated[str, typer.Argument(help="Dataset name (see `lmbrain data list`) or spec path.")],
    model: Annotated[str | None, typer.Option(help="Language model (registry name, hub id, folder, .gguf).")] = None,
    controls: Annotated[list[str] | None, typer.Option("--control", help="Control feature set (repeatable).")] = None,
    subject: Annotated[list[str] | None, typer.Option(help="Subject(s) to fit (default: all).")] = None,
    scheme: Annotated[str, typer.Option(help="grouped (default) or shuffled (a leaky audit)")] = "grouped",
    layers: Annotated[str, typer.Option(help="'all' or comma-separated indices / relative depths")] = "all",
    out: Annotated[Path | None, typer.Option(help="Write the per-target rows to this parquet file.")] = None,
) -> None:
    """Fit and score one dataset with one model and/or controls, printing mean r and R² per subject."""
    import pandas as pd

    from lmbrain.study.compute import compute_unit
    from lmbrain.study.plan import enumerate_units
    from lmbrain.study.schema import Study

    if model is None and not controls:
        raise typer.BadParameter("give --model and/or at least one --control")
    layer_spec: object = "all" if layers == "all" else [float(v) if "." in v else int(v) for v in layers.split(",")]
    spec = Study.model_validate({
        "name": "fit", "datasets": [{"name": dataset, "controls": list(controls or []),
                                     "subjects": list(subject) if subject else "all"}],
        "models": [{"name": model}] if model else [], "features": {"layers": layer_spec},
        "cv": {"schemes": [scheme]}, "estimator": {"layer_curves": False}, "statistics": {"ceiling": False},
    })
    tables = [compute_unit(spec, unit)[0] for unit in enumerate_units(spec)]
    rows = pd.concat(tables, ignore_index=True)
    summary = rows.pivot_table(index=["subject", "model", "feature_set", "layer"], columns="metric",
                               values="value", aggfunc="mean")
    typer.echo(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if out is not None:
        from lmbrain.study.runner import atomic_write_parquet

        atomic_write_parquet(out, rows)
        typer.echo(f"wrote {out}")


@app.command("report")
def report_cmd(
    results_dir: Annotated[Path, typer.Argument(help="A study's results directory (holds results.parquet).")],
) -> None:
    """Regenerate tables (and figures) from a results directory's parquet files alone."""
    from lmbrain.report.build import write_report

    for path in write_report(results_dir):
        typer.echo(f"wrote {path}")


def main() -> None:
    """Entry point: one clear message and a non-zero exit on bad input."""
    _register_subapps()
    try:
        result = app(standalone_mode=False)
    except LmbrainError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    if isinstance(result, int) and result:
        sys.exit(result)


if __name__ == "__main__":
    main()
