"""Run a study: prepare features, compute every unit (resumably), collect tidy results and a manifest.

Layout of a results directory::

    results.parquet    one row per target x unit x metric (the tables and figures derive from it alone)
    units.parquet      one row per unit: what was selected inside the training folds, sizes, timings
    manifest.json      study hash, package versions, git commit, seeds, timings of every run into the folder, and
                       the sha256 of results.parquet and units.parquet (``files``), checked by every reader
    study.yaml         the study as run
    run.log            the log (appended by every run)
    _work/units/       one parquet + one json per finished unit (the json, written last, marks it done and
                       holds the parquet's sha256 and the study's hash)
    _work/runs.json    every run into the folder: start, executor, units computed, seconds, status
    _work/lock         held by the run writing into the folder (a second run refuses to start)

Every file is written to a temporary name and renamed, so a killed run leaves no half-written file and a
rerun of the same command recomputes only the units that had not finished. A unit whose files are damaged
(its parquet does not match the sha256 in its record, its record is unreadable) is reported and recomputed.
A folder is refused only when it holds finished units or results of another study.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import platform
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from lmbrain.errors import RunError, UsageError
from lmbrain.io import atomic_write_bytes, atomic_write_text, parquet_bytes, sha256_bytes
from lmbrain.progress import FILE_ONLY, PROGRESS, KindETA, duration, eta_text, progress
from lmbrain.results import RESULTS_FILE, UNITS_FILE, file_checksum, model_label
from lmbrain.study.compute import compute_unit
from lmbrain.study.context import Memo, StudyContext
from lmbrain.study.estimators import joint_description
from lmbrain.study.executors import check_executor, run_tasks, unit_threads
from lmbrain.study.folder import (
    check_folder,
    check_lock,
    claim_folder,
    end_of_run,
    git_commit,
    output_lock,
    package_versions,
    record_run,
    run_history,
    run_logging,
)
from lmbrain.study.plan import Unit, enumerate_units, unit_chains
from lmbrain.study.schema import Study
from lmbrain.study.stages import stage_table, sum_stages
from lmbrain.study.store import (
    DONE,
    TODO,
    check_unit,
    collect,
    read_record,
    report_damage,
    unit_done,
    unit_files,
    unit_timings,
)

log = logging.getLogger("lmbrain")


@contextlib.contextmanager
def thread_caps(threads: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP threads (threadpoolctl) and torch's intra-op threads to ``threads`` for a block."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    with threadpool_limits(threads):
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def run_unit(context: StudyContext, units_dir: Path, unit: Unit, blas_threads: int | None = None,
             run_id: str | None = None) -> tuple[str, float, bool]:
    """Compute one unit unless done; write its rows then its record. Returns (key, seconds, computed).

    ``blas_threads`` caps BLAS/torch threads while computing (every executor passes the same number, so
    results do not depend on the executor; oversubscribed OpenBLAS threads make LAPACK calls much slower).
    """
    digest = context.study.digest()
    if unit_done(units_dir, unit, digest):
        return unit.key, 0.0, False
    start = time.perf_counter()
    try:
        with thread_caps(blas_threads):
            table, record = compute_unit(context, unit)
    except Exception as error:
        error.add_note(f"while computing unit {unit.describe()} ({unit.key})")
        raise
    seconds = time.perf_counter() - start
    record_path, rows_path = unit_files(units_dir, unit)
    data = table.to_parquet(index=False)
    atomic_write_bytes(rows_path, data)
    record = {**asdict(unit), "key": unit.key, "seconds": seconds, **record, "study_hash": digest,
              "sha256": sha256_bytes(data), "bytes": len(data), "run": run_id, "finished_at": time.time()}
    atomic_write_text(record_path, json.dumps(record, sort_keys=True, default=str))
    return unit.key, seconds, True


#: a worker process's study contexts: the units a worker runs share what its first unit loaded (the one piece of
#: process state in ``lmbrain.study``; the process that plans a run passes its own context explicitly)
WORKER_CONTEXTS = Memo(2)


def run_chain(study: Study, units_dir: Path, chain: list[Unit], blas_threads: int | None = None,
              run_id: str | None = None, context: StudyContext | None = None) -> list[tuple[str, float, bool]]:
    """Run units that share an in-fold layer selection one after the other, in one worker (each unit is
    still written, and resumable, on its own), with ``context`` (in this process) or the worker's own."""
    context = context if context is not None else WORKER_CONTEXTS.get(study.digest(), lambda: StudyContext(study))
    return [run_unit(context, units_dir, unit, blas_threads, run_id) for unit in chain]


def prepare_features(context: StudyContext) -> dict[str, float]:
    """Extract (or find in the cache) every model's features on every dataset, in this process."""
    study = context.study
    timings: dict[str, float] = {}
    from lmbrain.features.cache import release_models

    # model-major: each model variant is loaded once (kept between its datasets), not once per dataset
    jobs = [(entry, model, seed) for model, seed in study.model_variants() for entry in study.datasets]
    if not jobs:
        return prepare_model_controls(context)
    with progress("features", len(jobs), "extraction", logger=log,
                  eta=lambda: (None, "each extraction logs its own")) as stage:
        for entry, model, seed in jobs:
            start = time.perf_counter()
            label = model_label(model, seed)
            stage.set_note(f"now: {label} on {entry.name}")
            log.info("features: %s on %s", label, entry.name)
            context.llm_layers(entry.name, model, seed)
            timings[f"{entry.name}/{label}"] = time.perf_counter() - start
            stage.update()
    release_models()
    timings.update(prepare_model_controls(context))
    return timings


def prepare_model_controls(context: StudyContext) -> dict[str, float]:
    """Compute (or find in the cache) every control built by a language model (surprisal, entropy) in this
    process, so that workers only read it from the cache."""
    from lmbrain.features.controls import control_features, control_info

    timings: dict[str, float] = {}
    for entry in context.study.datasets:
        names = dict.fromkeys(c for fs in entry.control_sets for c in fs.controls if control_info(c).model_kind)
        for name in names:
            start = time.perf_counter()
            log.info("control %s on %s", name, entry.name)
            control_features(context.dataset(entry.name), name, {name: context.control_options(entry.name, name)})
            timings[f"{entry.name}/control:{name}"] = time.perf_counter() - start
    return timings


def context_policies(context: StudyContext) -> dict[str, dict[str, dict[str, str]]]:
    """Per dataset and model label: the context policy requested, the one run, and why (manifest
    ``context_policies``)."""
    from lmbrain.features.static import lookup_text

    out: dict[str, dict[str, dict[str, str]]] = {}
    for entry in context.study.datasets:
        out[entry.name] = {}
        for model, seed in context.study.model_variants():
            chosen = context.context_policy(entry.name, model, seed)
            policy = chosen.as_dict()
            window = context.prefix_window(chosen, model, seed)
            if window is not None:
                policy["reason"] += f"; each prefix cut to its last {window} tokens (features.prefix_window)"
            lookup = lookup_text(model, context.dataset(entry.name).stimuli["text"].astype(str).tolist())
            if lookup:  # a static embedding: its out-of-vocabulary words, shown in the trust panel
                policy["reason"] += f"; {lookup}"
            out[entry.name][model_label(model, seed)] = policy
    return out


def roi_coordinates(study: Study) -> dict[str, dict[str, Any]]:
    """Per dataset whose spec locates its ROIs: their MNI centres and the source (manifest ``roi_coordinates``, the
    report's brain view)."""
    from lmbrain.data.specs import find_spec

    out = {}
    for entry in study.datasets:
        neuroids = find_spec(entry.name).neuroids
        if neuroids.roi_centres():
            out[entry.name] = {"centres": neuroids.roi_centres(), "source": neuroids.coordinates_source}
    return out


def model_catalog(study: Study) -> dict[str, dict[str, Any]]:
    """What each model of the study is (manifest ``models``): family, kind, training, quantisation, source."""
    from lmbrain.features.registry import describe_model

    return {model_label(model, seed): describe_model(model, seed) for model, seed in study.model_variants()}


def plan(study: Study, out_dir: Path, context: StudyContext | None = None) -> pd.DataFrame:
    """The units of a study and whether each is already done (a dry run); ``problem`` names damaged files."""
    from lmbrain.study.validate import validate_study

    context = own_context(study, context)
    validate_study(study, context=context)
    units_dir = Path(out_dir) / "_work" / "units"
    digest = study.digest()
    rows = []
    for unit in enumerate_units(context):
        state = check_unit(units_dir, unit, digest)
        rows.append({**asdict(unit), "key": unit.key, "done": state == DONE,
                     "problem": state if state not in (DONE, TODO) else ""})
    return pd.DataFrame(rows)


def compute_units(context: StudyContext, units_dir: Path, todo: list[Unit], executor: str, n_jobs: int,
                  scheduler: str | None, run_id: str | None = None, times: dict[str, float] | None = None,
                  prior: dict[str, list[float]] | None = None) -> dict[str, float]:
    """Compute units with an executor (the same BLAS/torch thread cap whichever). Logs one line per finished unit
    and, while units run, a progress line at least every :func:`~lmbrain.progress.progress_interval` seconds; the
    ETA is estimated per unit kind (:class:`~lmbrain.progress.KindETA`, from this run's units of the kind, else
    ``prior``: earlier runs'), never from the fast control units alone. Returns the seconds of each unit computed
    (also filled into ``times`` as they finish, so that an interrupted run still counts them)."""
    units_dir = units_dir.absolute()  # a worker elsewhere resolves a relative path against its own folder
    here = context if executor == "sequential" else None  # workers in other processes build their own
    task = functools.partial(run_chain, context.study, units_dir, blas_threads=unit_threads(), run_id=run_id,
                             context=here)
    described = {u.key: u.describe() for u in todo}
    times = {} if times is None else times
    counted = 0
    workers = 1 if executor == "sequential" else n_jobs
    eta = KindETA({u.key: u.kind for u in todo}, workers, prior)
    with progress("units", len(todo), "unit", logger=log, eta=eta) as stage:
        shared = {"results folder": units_dir, "feature cache": None}  # checked on Dask workers before any unit
        for done in run_tasks(task, unit_chains(context, todo), executor=executor, n_jobs=n_jobs, scheduler=scheduler,
                              shared=shared):
            for key, seconds, computed in done:
                counted += 1
                eta.finish(key, seconds)
                stage.update(note=f"last: {described[key]}")
                if not computed:
                    continue
                times[key] = seconds
                left, how = eta()
                log.info("unit %d/%d done in %.1f s: %s; elapsed %s, ETA %s", counted, len(todo), seconds,
                         described[key], duration(stage.clock() - stage.start),
                         eta_text(left, how),
                         extra={PROGRESS: True})
    return times


def own_context(study: Study, context: StudyContext | None) -> StudyContext:
    """``context`` when it is the study's (a caller's, with its loaded datasets), else a new one."""
    if context is None:
        return StudyContext(study)
    if context.study.digest() != study.digest():
        raise UsageError(f"the context given is of study {context.study.name!r}, not of {study.name!r}")
    return context


def run_study(
    study: Study,
    out_dir: str | Path,
    executor: str = "sequential",
    n_jobs: int = 2,
    scheduler: str | None = None,
    study_source: str | None = None,
    context: StudyContext | None = None,
) -> Path:
    """Run every unit of a study not yet done, then write ``results.parquet``, ``units.parquet``, the manifest.

    ``n_jobs`` is the number of workers of a parallel executor; every unit runs with the same BLAS/torch threads
    whatever it is (:func:`~lmbrain.study.executors.unit_threads`), so that results are bit-identical whichever
    executor and however many workers ran them.

    Parameters
    ----------
    study : lmbrain.Study
        The validated study (``lb.load_study(path)``).
    out_dir : str or Path
        The results folder; a rerun resumes it (finished units are not recomputed).
    executor : {"sequential", "processes", "dask"}
        How units run; ``n_jobs`` workers for the parallel ones, ``scheduler`` a Dask scheduler's address.
    study_source : str, optional
        The study file's text, kept in the folder as it was written.
    context : StudyContext, optional
        The study's context when the caller already built one (e.g. to validate): its loaded datasets are reused.

    Returns
    -------
    Path
        ``out_dir``, holding ``results.parquet`` (one row per target × metric), ``units.parquet`` and
        ``manifest.json``.
    """
    from lmbrain.study.validate import validate_study

    check_executor(executor, n_jobs)
    context = own_context(study, context)
    out_dir = Path(out_dir)
    check_folder(study, out_dir)  # a folder of another study, or one another run writes, is refused untouched
    check_lock(out_dir)
    with run_logging(out_dir):
        try:
            validate_study(study, executor=executor, n_jobs=n_jobs, context=context)
            with output_lock(out_dir):
                return _run(context, out_dir, executor, n_jobs, scheduler, study_source)
        except BaseException as error:
            status, reason = end_of_run(error, out_dir)
            log.error("run %s: %s", status, reason, extra={FILE_ONLY: True})
            raise


def log_data_problems(context: StudyContext) -> None:
    """Every dataset's summary in the log, and a warning for each data problem (excluded subjects, masked
    neuroids, missing responses), so that ``run.log`` holds them even when the datasets were loaded (and
    their warnings printed) before the log was opened, e.g. by validation."""
    for entry in context.study.datasets:
        dataset = context.dataset(entry.name)
        log.info("dataset %s", dataset.summary())
        for subject, reason in sorted(dataset.excluded.items()):
            log.warning("dataset %s: subject %s excluded: %s", entry.name, subject, reason)
        for neuroid, reason in sorted(dataset.masked.items(), key=lambda kv: str(kv[0])):
            log.warning("dataset %s: neuroid %s masked: %s", entry.name, neuroid, reason)
        if dataset.missing:
            log.warning("dataset %s: %s", entry.name, dataset.missing.describe())


def _compute_all(context: StudyContext, units_dir: Path, units: list[Unit], executor: str, n_jobs: int,
                 scheduler: str | None, run_id: str, unit_times: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Compute every unit not yet done (damaged ones again), then collect all of them: (results, unit table)."""
    digest = context.study.digest()
    todo = []
    for unit in units:
        state = check_unit(units_dir, unit, digest)
        if state not in (DONE, TODO):
            report_damage(units_dir, unit, state)
        if state != DONE:
            todo.append(unit)
    log.info("%d units, %d to compute", len(units), len(todo), extra={PROGRESS: True})
    prior = unit_timings(units_dir, units, digest)
    compute_units(context, units_dir, todo, executor, n_jobs, scheduler, run_id, unit_times, prior)
    results, unit_table, bad = collect(units, units_dir, digest)
    if bad:  # damaged since they were checked: once more, here
        for unit, reason in bad:
            report_damage(units_dir, unit, reason)
        redo = [unit for unit, _ in bad]
        compute_units(context, units_dir, redo, "sequential", n_jobs, None, run_id, unit_times)
        results, unit_table, bad = collect(units, units_dir, digest)
        if bad:
            raise RunError(f"unit files damaged again right after recomputing them: {bad[0][1]}")
    return results, unit_table


def _manifest(context: StudyContext, out_dir: Path, n_units: int, n_computed: int, timings: dict, records: list[dict],
              checksums: dict[str, str]) -> dict[str, Any]:
    """The run's ``manifest.json``: study, code, platform, seeds, timings, run history, data, models, checksums."""
    study = context.study
    return {
        "study": study.name,
        "study_hash": study.digest(),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "platform": platform.platform(),
        "argv": sys.argv,
        "seeds": {"cv": study.cv.seed, "statistics": study.statistics.seed},
        "statistics": study.statistics.model_dump(),
        "n_units": n_units,
        "n_units_computed_this_run": n_computed,
        "timings_seconds": timings,
        "runs": run_history(out_dir, study.digest(), records),
        "datasets": {e.name: context.dataset(e.name).summary() for e in study.datasets},
        "context_policies": context_policies(context),
        "roi_coordinates": roi_coordinates(study),
        "joint_models": {e.name: joint_description(study, context.dataset(e.name).is_timeseries)
                         for e in study.datasets},
        "models": model_catalog(study),
        "files": checksums,  # verified by every reader (lmbrain.results.read_checked)
    }


def _run(context: StudyContext, out_dir: Path, executor: str, n_jobs: int, scheduler: str | None,
         study_source: str | None) -> Path:
    study = context.study
    digest = study.digest()
    claim_folder(study, out_dir, study_source or yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False))
    units_dir = out_dir / "_work" / "units"
    for stale in units_dir.glob(".*.tmp"):  # left by a killed run (this run holds the folder's lock)
        stale.unlink(missing_ok=True)
    started = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(started))
    run = {"run": f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}", "study_hash": digest,
           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "started_at": started,
           "executor": executor, "n_jobs": n_jobs, "host": socket.gethostname(), "status": "running"}
    record_run(out_dir, run)
    start = time.perf_counter()
    unit_times: dict[str, float] = {}
    try:
        log.info("study %s (%s): start, executor=%s, n_jobs=%d", study.name, digest, executor, n_jobs,
                 extra={PROGRESS: True})
        log_data_problems(context)
        feature_times = prepare_features(context)
        units = enumerate_units(context)
        results, unit_table = _compute_all(context, units_dir, units, executor, n_jobs, scheduler, run["run"],
                                           unit_times)
        checksums = {}
        for name, table in ((RESULTS_FILE, results), (UNITS_FILE, unit_table)):
            data = parquet_bytes(table)
            atomic_write_bytes(out_dir / name, data)
            checksums[name] = file_checksum(data)
        total = time.perf_counter() - start
        run.update(status="done", units_computed=len(unit_times), seconds=total)
        record_run(out_dir, run)
        records = [read_record(unit_files(units_dir, u)[0]) for u in units]
        stages = sum_stages([r.get("stage_seconds") or {} for r in records if r.get("run") == run["run"]])
        if stages:
            log.info("where this run's unit time went (summed over units and workers):\n%s",
                     stage_table(stages, sum(feature_times.values())), extra={FILE_ONLY: True})
        timings = {"total_this_run": total, "features": feature_times, "units_this_run": sum(unit_times.values()),
                   "stages_this_run": stages}
        manifest = _manifest(context, out_dir, len(units), len(unit_times), timings, records, checksums)
        atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str))
        log.info("study %s: done in %.1f s (%d units computed)", study.name, total, len(unit_times),
                 extra={PROGRESS: True})
        return out_dir
    except BaseException as error:
        status, reason = end_of_run(error, out_dir)
        run.update(status=status, reason=reason, units_computed=len(unit_times), seconds=time.perf_counter() - start)
        with contextlib.suppress(OSError):
            record_run(out_dir, run)
        raise
