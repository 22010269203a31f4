"""Validating a study before any work: everything that can be checked without extracting features.

:func:`validate_study` checks the executor, the feature, estimator and time-series options, every model (found
offline; its number of layers and hidden size read from its config or file metadata, never its weights), the
layer selection against each model's depth, every dataset (spec, reader options, subjects, ROIs, loadable), every
control set against its dataset (level, options, the columns it needs) and the cross-validation folds, outer and
inner, against each dataset's groups. Every problem found is reported in one StudyError, each naming its field
(``models.0.name: ...``). Datasets are loaded (cheap, and kept on the :class:`~lmbrain.study.context.StudyContext`
given, for the run to reuse); no model is loaded and nothing is written to the feature cache.
"""

from __future__ import annotations

import importlib.util
import inspect
import numbers
from typing import Any

import numpy as np

from lmbrain.data.dataset import Dataset
from lmbrain.errors import DataError, LmbrainError, ModelUnavailableError, StudyError
from lmbrain.study.context import StudyContext, cv_groups, load_entry, make_cv, subject_targets
from lmbrain.study.schema import DatasetEntry, Study

__all__ = ("study_problems", "validate_study")


def validate_study(study: Study, executor: str | None = None, n_jobs: int | None = None,
                   context: StudyContext | None = None) -> None:
    """Raise one StudyError listing every problem of a study found without extracting features (the datasets are
    loaded into ``context``, a new one if not given, for the run to reuse)."""
    problems = study_problems(study, executor, n_jobs, context)
    if problems:
        raise StudyError(f"study {study.name!r} is invalid ({len(problems)} problem(s)): " + "; ".join(problems))


def study_problems(study: Study, executor: str | None = None, n_jobs: int | None = None,
                   context: StudyContext | None = None) -> list[str]:
    """Every problem of a study, each as ``"field: message"`` (empty when the study can run)."""
    context = context if context is not None else StudyContext(study)
    problems = _executor_problems(executor, n_jobs) + _option_problems(study)
    shapes, model_problems = _model_shapes(study)
    problems += model_problems + _layer_problems(study, shapes)
    seen: dict[str, int] = {}
    for i, entry in enumerate(study.datasets):
        if entry.name in seen:
            problems.append(f"datasets.{i}.name: dataset {entry.name!r} is listed twice "
                            f"(also datasets.{seen[entry.name]})")
            continue
        seen[entry.name] = i
        problems += _dataset_problems(context, i, entry, shapes)
    return list(dict.fromkeys(problems))


# -- options ---------------------------------------------------------------------------------------------


def _executor_problems(executor: str | None, n_jobs: int | None) -> list[str]:
    from lmbrain.study.executors import EXECUTORS

    problems = []
    if executor is not None and executor not in EXECUTORS:
        problems.append(f"executor: unknown {executor!r}; choose one of {list(EXECUTORS)}")
    elif executor == "dask" and importlib.util.find_spec("distributed") is None:
        problems.append("executor: 'dask' needs the dask.distributed package (pip install 'dask[distributed]')")
    if n_jobs is not None and (isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1):
        problems.append(f"n_jobs: needs a positive number of workers, got {n_jobs!r}")
    return problems


def _is_index(item: object) -> bool:
    return isinstance(item, numbers.Integral) and not isinstance(item, bool)


def _option_problems(study: Study) -> list[str]:
    from lmbrain.features.extract import CONTEXTS

    problems = []
    features = study.features
    if features.context not in CONTEXTS:
        problems.append(f"features.context: unknown {features.context!r}; choose one of {list(CONTEXTS)}")
    if features.batch_size < 1:
        problems.append(f"features.batch_size: needs at least 1, got {features.batch_size}")
    if features.layers != "all":
        if not features.layers:
            problems.append("features.layers: empty list (give 'all', layer indices or relative depths)")
        for item in features.layers:
            if not _is_index(item) and not 0.0 <= float(item) <= 1.0:
                problems.append(f"features.layers: relative depth {item} is outside [0, 1] "
                                "(0.0 = embeddings, 1.0 = last layer; an int is a layer index)")
    if not study.estimator.alphas:
        problems.append("estimator.alphas: empty list")
    bad = [a for a in study.estimator.alphas if not a > 0]
    if bad:
        problems.append(f"estimator.alphas: ridge penalties must be positive, got {bad}")
    negative = [d for d in study.timeseries.delays if d < 0]
    if negative:
        problems.append(f"timeseries.delays: delays are scans after the stimulus, >= 0; got {negative}")
    if study.timeseries.high_pass_s is not None and not study.timeseries.high_pass_s > 0:
        problems.append(f"timeseries.high_pass_s: needs a positive cut-off or null, got {study.timeseries.high_pass_s}")
    names: dict[str, int] = {}
    for i, entry in enumerate(study.models):
        if entry.name in names:
            problems.append(f"models.{i}.name: model {entry.name!r} is listed twice (also models.{names[entry.name]})")
        names.setdefault(entry.name, i)
        if not entry.trained and not entry.untrained_seeds:
            problems.append(f"models.{i}: trained is false and no untrained_seeds are given: nothing would run")
        if len(set(entry.untrained_seeds)) != len(entry.untrained_seeds):
            problems.append(f"models.{i}.untrained_seeds: a seed is listed twice: {entry.untrained_seeds}")
        if any(seed < 0 for seed in entry.untrained_seeds):
            problems.append(f"models.{i}.untrained_seeds: seeds must be >= 0, got {entry.untrained_seeds}")
    return problems


# -- models and layers -----------------------------------------------------------------------------------


def _model_problem(name: str, error: LmbrainError) -> str:
    """The message for a model that cannot be resolved offline."""
    from lmbrain.features.models import list_models, parse_model_name
    from lmbrain.features.registry import registered

    try:
        base, _ = parse_model_name(name)
    except LmbrainError:
        return str(error)
    if registered(base) is not None:
        return f"model {name!r} is not available offline: {error}"
    if base.endswith(".gguf") or base.startswith((".", "/", "~")) or not isinstance(error, ModelUnavailableError):
        return str(error)
    return (f"unknown model {name!r} (known: {', '.join(list_models())}; or a local folder, a .gguf file or a "
            "hub id in the offline Hugging Face cache)")


def _model_shapes(study: Study) -> tuple[dict[str, Any], list[str]]:
    """Each model's :class:`~lmbrain.features.registry.ModelShape` (None: size unknown until loaded)."""
    from lmbrain.features.models import model_shape
    from lmbrain.features.registry import registered

    shapes: dict[str, Any] = {}
    problems = []
    for i, entry in enumerate(study.models):
        if entry.name in shapes:
            continue
        try:
            shape = model_shape(entry.name)
        except LmbrainError as error:
            problems.append(f"models.{i}.name: {_model_problem(entry.name, error)}")
            continue
        shapes[entry.name] = shape
        built = (reg := registered(entry.name.split(":")[0])) is not None and reg.config_built
        if shape is not None and entry.trained and not shape.has_weights and not built:
            problems.append(f"models.{i}.name: {entry.name!r} has a config but no weights offline; only untrained "
                            "variants can run (set trained: false)")
    return shapes, problems


def _layer_problems(study: Study, shapes: dict[str, Any]) -> list[str]:
    spec = study.features.layers
    if spec == "all":
        return []
    problems = []
    for name, shape in shapes.items():
        if shape is None:
            continue
        for item in spec:
            if _is_index(item) and not -shape.n_layers <= int(item) < shape.n_layers:
                problems.append(f"features.layers: layer {item} out of range for {name} ({shape.layers_text})")
    return problems


# -- datasets --------------------------------------------------------------------------------------------


def _dataset_problems(context: StudyContext, i: int, entry: DatasetEntry, shapes: dict[str, Any]) -> list[str]:
    from lmbrain.data.registry import get_reader, resolve_options
    from lmbrain.data.specs import find_spec

    study = context.study
    field = f"datasets.{i}"
    try:
        spec = find_spec(entry.name)
    except DataError as error:
        return [f"{field}.name: {error}"]
    try:
        resolve_options(spec, get_reader(spec.reader), dict(entry.options))
    except DataError as error:
        return [f"{field}.options: {error}"]
    problems = []
    wanted = None if entry.subjects == "all" else list(entry.subjects)
    if wanted is not None and spec.subjects is not None:
        unknown = [s for s in wanted if s not in spec.subjects]
        if unknown:
            problems.append(f"{field}.subjects: unknown subject(s) {unknown} in dataset {spec.name} "
                            f"(subjects: {spec.subjects})")
            wanted = [s for s in wanted if s in spec.subjects] or None
            entry = entry.model_copy(update={"subjects": wanted or "all"})  # check the rest on the known ones
    loaded_alone = bool(problems)  # with a corrected subject list: not the study's own inputs
    try:
        dataset = load_entry(entry) if loaded_alone else context.dataset(entry.name)
    except KeyError as error:
        if entry.rois is None:
            raise
        return [*problems, f"{field}.rois: dataset {spec.name} has no ROI labels to select from ({error})"]
    except LmbrainError as error:
        return [*problems, f"{field}: {error}"]
    if wanted is not None:
        absent = [s for s in wanted if s not in dataset.subjects and s not in dataset.excluded]
        if absent:
            problems.append(f"{field}.subjects: no subject(s) {absent} in dataset {spec.name} "
                            f"(subjects: {dataset.subjects})")
    if entry.rois is not None:
        present = set(np.asarray(dataset.responses["roi"].values).astype(str))
        unknown = [r for r in entry.rois if r not in present]
        if unknown:
            problems.append(f"{field}.rois: no ROI {unknown} in dataset {spec.name} (ROIs: {_all_rois(entry)})")
    if dataset.responses.sizes["neuroid"] == 0:
        return problems or [f"{field}: no neuroid left after the subject / ROI selection"]
    problems += _context_problems(study, field, dataset, shapes)
    problems += _control_problems(study, field, entry, dataset, shapes)
    problems += _fold_problems(context, dataset, field, None if loaded_alone else entry.name)
    return problems


def _context_problems(study: Study, field: str, dataset: Dataset, shapes: dict[str, Any]) -> list[str]:
    """A context policy that would show a model the words to the right on incremental data."""
    from lmbrain.features.context import context_policy

    problems = []
    for name, shape in shapes.items():
        if shape is None:
            continue
        try:
            context_policy(study.features.context, shape.kind, dataset.modality)
        except LmbrainError as error:
            problems.append(f"features.context: model {name} on dataset {dataset.name} ({field}): {error}")
    return problems


def _all_rois(entry: DatasetEntry) -> list[str]:
    """Every ROI of a dataset, for messages (loaded again without the ROI selection)."""
    from lmbrain.data.registry import load_dataset

    subjects = None if entry.subjects == "all" else list(entry.subjects)
    dataset = load_dataset(entry.name, subjects=subjects, **dict(entry.options))
    return sorted({str(r) for r in dataset.responses["roi"].values})


# -- controls --------------------------------------------------------------------------------------------


def _accepted_options(info: Any) -> list[str]:
    """Keyword options of a control function (its dataset and subject arguments excepted)."""
    params = list(inspect.signature(info.fn).parameters)[1:]
    return [p for p in params if p != "subject"]


def _control_problems(study: Study, field: str, entry: DatasetEntry, dataset: Dataset,
                      shapes: dict[str, Any]) -> list[str]:
    from lmbrain.features.controls import control_info

    problems = []
    for name, options in entry.control_options.items():
        accepted = _accepted_options(control_info(name))
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            problems.append(f"{field}.control_options.{name}: unknown option(s) {unknown} for control {name!r}; "
                            f"accepted: {accepted}")
    checked: set[str] = set()
    for k, features in enumerate(entry.control_sets):
        names = features.controls
        if len(names) > 1 and any(control_info(n).candidates for n in names):
            problems.append(f"{field}.controls.{k}: control set {features.label!r}: a candidate-valued control "
                            "(oasm) cannot be combined with others")
        for name in names:
            if name in checked:
                continue
            checked.add(name)
            problem = _control_problem(dataset, name, dict(entry.control_options.get(name, {})))
            if problem:
                problems.append(f"{field}.controls.{k}: {problem}")
    if "random" in checked and "dim" not in entry.control_options.get("random", {}):
        sizes = sorted({shape.hidden_size for shape in shapes.values() if shape is not None})
        if len(sizes) > 1:
            problems.append(f"{field}.control_options.random: control 'random' should match the LLM layer's "
                            f"dimension, but the study's models have hidden sizes {sizes}; "
                            "set control_options: {random: {dim: N}}")
    return problems


def _control_problem(dataset: Dataset, name: str, options: dict[str, Any]) -> str | None:
    """Why a control cannot be built on a dataset, or None: its level, then (when cheap) building it."""
    from lmbrain.features.controls import control_features, control_info

    info = control_info(name)
    if info.level == "word" and dataset.stimulus_unit != "word":
        return (f"control {name!r} describes words (level 'word') but dataset {dataset.name} has "
                f"{dataset.stimulus_unit} stimuli")
    if info.level == "scan" and not dataset.is_timeseries:
        return f"control {name!r} is scan-level (time series only) but dataset {dataset.name} is {dataset.modality}"
    if set(options) - set(_accepted_options(info)):
        return None  # reported with its control_options
    params = inspect.signature(info.fn).parameters
    if "model" in params:  # built with a model's tokenizer: that model must be available, not loaded here
        model = options.get("model", params["model"].default)
        from lmbrain.features.models import model_shape

        try:
            shape = model_shape(str(model))
        except LmbrainError as error:
            return f"control {name!r}: option model: {_model_problem(str(model), error)}"
        if info.model_kind and shape is not None and shape.kind != info.model_kind:
            return f"control {name!r}: option model: {model} is {shape.kind}; {name} needs a {info.model_kind} model"
        return None
    if info.level == "sample":  # built from the number of samples alone (OASM, random): always possible
        return None
    for subject in dataset.subjects if info.subject_specific else [None]:
        try:
            control_features(dataset, name, {name: options}, subject=subject)
        except (LmbrainError, ImportError, KeyError, TypeError, ValueError) as error:
            who = f" for subject {subject}" if subject is not None else ""
            return f"control {name!r} cannot be built on dataset {dataset.name}{who}: {error}"
    return None


# -- folds -----------------------------------------------------------------------------------------------


def _fold_problems(context: StudyContext, dataset: Dataset, field: str, entry_name: str | None) -> list[str]:
    """Outer and inner splits of every scheme on every set of usable rows, and on the pool ceiling's rows when
    the dataset is the study's own (``entry_name``: its name in the study)."""
    import functools

    from lmbrain.study.plan import has_ceiling

    study = context.study

    groups = cv_groups(dataset)
    row_sets: dict[bytes, tuple[np.ndarray, list[str]]] = {}
    for subject in dataset.subjects:
        rows = subject_targets(dataset, subject)[0]
        row_sets.setdefault(rows.tobytes(), (rows, []))[1].append(subject)
    problems = []
    for scheme in study.cv.schemes:
        for rows, subjects in row_sets.values():
            who = f" for subject(s) {', '.join(subjects)}" if len(row_sets) > 1 else ""
            problem = _split_problem(study, scheme, dataset, groups[rows], f" ({field}){who}")
            if problem:
                problems.append(problem)
                break
    if entry_name and not problems and study.statistics.ceiling and has_ceiling(context, entry_name):
        common = functools.reduce(np.intersect1d, [rows for rows, _ in row_sets.values()])
        problem = _split_problem(study, "grouped", dataset, groups[common], f" ({field}, pool ceiling: the rows "
                                 "every subject has)")
        if problem:
            problems.append(problem)
    return problems


def _split_problem(study: Study, scheme: str, dataset: Dataset, groups: np.ndarray, who: str) -> str | None:
    """The first problem of the outer splits, then of the inner splits of each training fold, or None."""
    from lmbrain.encoding.splits import check_splits
    cv, ts = study.cv, dataset.is_timeseries
    unit = "run" if ts else dataset.split_unit
    n_groups = len(np.unique(groups.astype(str)))
    outer = make_cv(scheme, cv.n_splits, cv.seed, ts, study.timeseries.gap)
    try:
        splits = check_splits(outer, np.empty((len(groups), 0)), None, groups)
    except ValueError as error:
        if scheme == "grouped" and not ts and n_groups < cv.n_splits:
            return (f"cv.n_splits: {cv.n_splits} folds but dataset {dataset.name}{who} has only {n_groups} groups "
                    f"(split by {unit})")
        return f"cv.n_splits: {cv.n_splits} {scheme} folds on dataset {dataset.name}{who}: {error}"
    inner = make_cv(scheme, cv.inner_splits, cv.seed, ts, study.timeseries.gap)
    for train, _ in splits:
        try:
            check_splits(inner, np.empty((len(train), 0)), None, groups[train])
        except ValueError as error:
            left = len(np.unique(groups[train].astype(str)))
            if scheme == "grouped" and not ts and left < cv.inner_splits:
                return (f"cv.inner_splits: {cv.inner_splits} inner folds but a training fold of dataset "
                        f"{dataset.name}{who} has only {left} groups (split by {unit})")
            return f"cv.inner_splits: {cv.inner_splits} inner {scheme} folds on dataset {dataset.name}{who}: {error}"
    return None
