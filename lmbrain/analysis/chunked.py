"""A unit's control analysis over chunks of targets (voxels), for whole-brain data.

The analysis is the study's (:mod:`lmbrain.study.compute`): the LLM with its layer chosen inside each
training fold (per group of targets, e.g. a subject: the mean over its targets of the best-alpha inner-CV
R²), the controls alone, the joint LLM + controls model (``stacked_simplex``: per-target stacking of the two
single-space ridges, :class:`lmbrain.encoding.joint.StackedRidgeCV`) and the unique-variance test (paired
block sign flips, :func:`lmbrain.analysis.permutation.paired_sign_flip_test`). The results equal the
unchunked library path (``tests/encoding/test_chunked.py``, to 1e-10) whatever the chunking: alphas and
stacking weights are per target, and a group's layer is chosen from all of its targets' scores.
One difference from a study's joint unit: the unique-variance flips are not widened by the two-role inflation
κ (:func:`lmbrain.analysis.permutation.gain_inflation`), which needs ~200 refits of three models per target
(about 9 GFlop per voxel at 3,000 scans x 2,304 features: out of reach at 50,000 voxels), so whole-brain
``p_unique`` is the plain block sign-flip test, slightly liberal at its boundary (docs/statistics.md).

Memory does not grow with the number of targets except for a few numbers per target: the decompositions
(per outer fold, inner fold and layer) are computed once and applied to one chunk of targets at a time;
responses are read chunk by chunk from a :class:`TargetSource` (e.g. :class:`NpyTargets`, one ``.npy`` file
per chunk, read without memory mapping), and out-of-fold predictions are spilled per (fold, chunk) to a
folder when ``spill_dir`` is given. Two passes: :func:`block_inner_scores` (inner-CV scores of every layer,
reduced to each target's best score and alpha), then, after :func:`select_layers`, :func:`block_results`
(refits, the joint model, scores and the test). A block is a range of targets; blocks can run on different
workers (:func:`lmbrain.study.executors.run_chunked`) with the same results.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from numpy.typing import ArrayLike

from lmbrain.encoding.backend import get_backend
from lmbrain.encoding.estimators import RidgeCV, check_xy
from lmbrain.encoding.inner_cv import select_alphas
from lmbrain.encoding.joint import stacking_weights
from lmbrain.encoding.metrics import mean_fold_r, pearson_r_folds, r2_oos
from lmbrain.encoding.ridge import check_standardize, decompose, standardize_rows
from lmbrain.encoding.splits import check_splits
from lmbrain.errors import LmbrainError

CONTROLS = "controls"


class TargetSource(Protocol):
    """Responses (n_samples, n_targets) read a range of targets at a time."""

    n_samples: int
    n_targets: int

    def read(self, t0: int, t1: int) -> np.ndarray:
        """Targets ``t0:t1`` as an (n_samples, t1 - t0) array."""


@dataclass
class ArrayTargets:
    """Responses held in memory (or a memory map)."""

    Y: np.ndarray

    @property
    def n_samples(self) -> int:
        """Number of samples (rows)."""
        return self.Y.shape[0]

    @property
    def n_targets(self) -> int:
        """Number of targets (columns)."""
        return self.Y.shape[1]

    def read(self, t0: int, t1: int) -> np.ndarray:
        """Targets ``t0:t1`` (a copy)."""
        return np.array(self.Y[:, t0:t1])


@dataclass
class NpyTargets:
    """Responses stored as consecutive column blocks, one ``.npy`` file each, read without memory mapping."""

    files: list[str]
    widths: list[int] = field(default_factory=list)
    n_samples: int = 0

    def __post_init__(self) -> None:
        if not self.files:
            raise LmbrainError("NpyTargets needs at least one file")
        if not self.widths:
            shapes = [np.load(f, mmap_mode="r").shape for f in self.files]  # header only
            if len({s[0] for s in shapes}) != 1 or any(len(s) != 2 for s in shapes):
                found = dict(zip(self.files, shapes, strict=True))
                raise LmbrainError(f"target files must be 2-D with the same number of rows: {found}")
            self.widths = [s[1] for s in shapes]
            self.n_samples = shapes[0][0]
        self._starts = np.concatenate([[0], np.cumsum(self.widths)])

    @property
    def n_targets(self) -> int:
        """Total number of targets."""
        return int(self._starts[-1])

    def read(self, t0: int, t1: int) -> np.ndarray:
        """Targets ``t0:t1``, loaded from the files they lie in."""
        parts = []
        for j, path in enumerate(self.files):
            a, b = int(self._starts[j]), int(self._starts[j + 1])
            if b <= t0 or a >= t1:
                continue
            parts.append(np.load(path)[:, max(t0, a) - a : min(t1, b) - a])
        return parts[0] if len(parts) == 1 else np.hstack(parts)


@dataclass
class ControlProblem:
    """Everything one unit's chunked control analysis needs (picklable: blocks can go to other processes).

    ``candidates``: LLM layer name -> (n_samples, n_features) scan-level design (FIR delays included);
    ``controls``: (n_samples, n_control_features); ``targets``: the responses; ``target_groups``: one label per
    target (its subject: the layer is chosen per group); ``groups``: the split unit of every sample;
    ``cv``: the outer splitter; ``ridge``: the :class:`RidgeCV` whose alphas, inner ``cv``, solver, backend,
    dtype and intercept are used (its ``standardize`` for the LLM, ``control_standardize`` for the controls);
    ``blocks``: what the unique-variance test flips together (default: ``groups``).
    """

    candidates: Mapping[str, np.ndarray]
    controls: np.ndarray
    targets: Any
    target_groups: np.ndarray
    groups: np.ndarray
    cv: Any
    ridge: RidgeCV
    control_standardize: bool | np.ndarray = True
    blocks: np.ndarray | None = None
    n_permutations: int = 1000
    seed: int = 0
    chunk_size: int = 4096
    spill_dir: str | None = None

    def __post_init__(self) -> None:
        if not hasattr(self.targets, "read"):
            self.targets = ArrayTargets(np.asarray(self.targets))
        if self.ridge.cv_method != "refit":
            raise LmbrainError("the chunked analysis scores inner folds by refitting each (RidgeCV(cv_method='refit'));"
                               f" the ridge has cv_method={self.ridge.cv_method!r}")
        if self.ridge.scoring != "r2":
            raise LmbrainError("the chunked analysis selects by inner-CV R²; the ridge has "
                               f"scoring={self.ridge.scoring!r}")
        if getattr(self.ridge, "alpha_choice", "best") != "best":
            raise LmbrainError("the chunked analysis takes each target's best inner-CV alpha (its joint model reuses "
                               f"them); the ridge has alpha_choice={self.ridge.alpha_choice!r}")
        if self.chunk_size < 1:
            raise LmbrainError(f"chunk_size must be >= 1, got {self.chunk_size}")
        self.target_groups = np.asarray(self.target_groups)
        if self.target_groups.shape != (self.targets.n_targets,):
            raise LmbrainError(f"target_groups needs one label per target ({self.targets.n_targets}), "
                               f"got shape {self.target_groups.shape}")

    @property
    def names(self) -> list[str]:
        """The LLM candidates' names, in order."""
        return list(self.candidates)

    @property
    def n_targets(self) -> int:
        """Number of targets."""
        return self.targets.n_targets

    def splits(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The outer (train, test) splits."""
        n = self.targets.n_samples
        return check_splits(self.cv, np.empty((n, 0)), None, np.asarray(self.groups))

    def chunks(self, t0: int, t1: int) -> list[tuple[int, int]]:
        """Target ranges of at most ``chunk_size`` covering ``t0:t1``."""
        return [(a, min(t1, a + self.chunk_size)) for a in range(t0, t1, self.chunk_size)]


@dataclass
class InnerScores:
    """Inner-CV results of a block of targets: per outer fold and candidate (LLM layers, then the controls),
    each target's best mean inner-CV R² (``best``, (n_folds, n_candidates, n_targets)) and its alpha
    (``alpha_index`` into the ridge's alphas, same shape)."""

    best: np.ndarray
    alpha_index: np.ndarray

    @staticmethod
    def concat(parts: list[InnerScores]) -> InnerScores:
        """Blocks side by side (in target order)."""
        return InnerScores(np.concatenate([p.best for p in parts], axis=2),
                           np.concatenate([p.alpha_index for p in parts], axis=2))


@dataclass
class Selection:
    """The in-fold choices: ``layer`` (n_folds, n_targets) index of each target's group's layer per fold,
    ``llm_alpha`` / ``controls_alpha`` (n_folds, n_targets) alpha indices, ``selected`` per fold
    {group: layer name} as :func:`lmbrain.encoding.cross_validate_select` reports it."""

    layer: np.ndarray
    llm_alpha: np.ndarray
    controls_alpha: np.ndarray
    selected: list[dict[Any, str]]

    def block(self, t0: int, t1: int) -> Selection:
        """The choices of targets ``t0:t1``."""
        return Selection(self.layer[:, t0:t1], self.llm_alpha[:, t0:t1], self.controls_alpha[:, t0:t1], self.selected)


@dataclass
class ChunkedResult:
    """Per target: r (mean over test folds) and pooled out-of-sample R² of the LLM, the controls and the joint
    model, the unique LLM R² (joint − controls) and its p-value; per fold and target: stacking weights
    (n_folds, 2, n_targets: LLM, controls); the selection; out-of-fold predictions only if kept."""

    llm_r: np.ndarray
    llm_r2: np.ndarray
    controls_r: np.ndarray
    controls_r2: np.ndarray
    joint_r: np.ndarray
    joint_r2: np.ndarray
    unique_r2: np.ndarray
    p_unique: np.ndarray
    joint_weights: np.ndarray
    selection: Selection | None = None
    predictions: dict[str, np.ndarray] | None = None

    _PER_TARGET = ("llm_r", "llm_r2", "controls_r", "controls_r2", "joint_r", "joint_r2", "unique_r2", "p_unique")

    @staticmethod
    def concat(parts: list[ChunkedResult], selection: Selection | None = None) -> ChunkedResult:
        """Blocks side by side (in target order)."""
        values = {k: np.concatenate([getattr(p, k) for p in parts]) for k in ChunkedResult._PER_TARGET}
        predictions = None
        if all(p.predictions is not None for p in parts):
            predictions = {k: np.hstack([p.predictions[k] for p in parts]) for k in parts[0].predictions}
        return ChunkedResult(**values, joint_weights=np.concatenate([p.joint_weights for p in parts], axis=2),
                             selection=selection, predictions=predictions)


# -- the two passes --------------------------------------------------------------------------------------


class _Ops:
    """One training matrix's decomposition, applied to any chunk of targets (the backend's arrays)."""

    def __init__(self, problem: ControlProblem, X: ArrayLike, train: np.ndarray, test: np.ndarray,
                 standardize: bool | np.ndarray, bk: Any) -> None:
        ridge = problem.ridge
        Xtr, Xte, _, _ = standardize_rows(X, bk.index(train), bk.index(test), ridge.fit_intercept, standardize, bk)
        dec = decompose(Xtr, ridge.solver, bk)
        self.bk, self.train, self.test = bk, train, test
        self.A, self.B, self.intercept = Xte @ dec.R, dec.B, ridge.fit_intercept
        alphas = bk.asarray(np.asarray(ridge.alphas, dtype=np.float64), dtype=_dtype(X, bk))
        self.weights = 1.0 / (dec.ev[None, :] + alphas[:, None])  # (n_alphas, rank)

    def _centre(self, Ytr: Any) -> tuple[Any, Any]:
        ymean = Ytr.mean(0) if self.intercept else Ytr[:1] * 0.0
        return Ytr - ymean, ymean.reshape(-1)

    def scores(self, Ytr: Any, Yte: Any) -> np.ndarray:
        """Validation R² (n_alphas, n_targets) of every alpha (as :func:`lmbrain.encoding.ridge_cv_scores`, in
        the cheaper of its two contraction orders; the stacked per-alpha operator is built on first use)."""
        bk = self.bk
        Yc, ymean = self._centre(Ytr)
        n_alphas, (n_test, rank), n_train = self.weights.shape[0], self.A.shape, self.B.shape[0]
        if not hasattr(self, "_op"):
            self._project_first = n_train * rank + n_alphas * n_test * rank < n_alphas * n_test * n_train
            stacked = (self.A[None] * self.weights[:, None, :]).reshape(-1, rank)
            self._op = stacked if self._project_first else stacked @ self.B.T
        P = self._op @ (self.B.T @ Yc if self._project_first else Yc)
        P = P.reshape(n_alphas, n_test, -1) - (Yte - ymean)[None]
        d = Yte - Yte.mean(0)
        sst = (d * d).sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = bk.to_numpy(1.0 - bk.sum_of_products(P, P) / sst).astype(np.float64)
        s[~np.isfinite(s)] = 0.0  # a constant validation target scores 0, as in ridge_cv_scores
        return s

    def predict(self, Ytr: Any, alpha_index: np.ndarray) -> Any:
        """Predictions of the test rows at each target's alpha, refitted on the training rows."""
        Yc, ymean = self._centre(Ytr)
        C = (self.B.T @ Yc) * self.weights.T[:, self.bk.index(alpha_index)]
        return self.A @ C + ymean[None, :]


def _dtype(X: ArrayLike, bk: Any) -> np.dtype:
    return bk.to_numpy(X[:1, :1]).dtype


def _designs(problem: ControlProblem) -> tuple[dict[str, Any], Any, Any, np.dtype]:
    """The candidates and controls as backend arrays of the working dtype (float32 kept, else float64)."""
    bk = get_backend(problem.ridge.backend)
    Xs = {k: check_xy(v, None, problem.ridge.dtype)[0] for k, v in problem.candidates.items()}
    dtype = next(iter(Xs.values())).dtype
    C = check_xy(problem.controls, None, dtype)[0]
    return {k: bk.asarray(v) for k, v in Xs.items()}, bk.asarray(C), bk, dtype


def _inner_splits(problem: ControlProblem, train: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The ridge's inner splits of an outer training fold, as rows of the whole series."""
    inner = check_splits(problem.ridge.cv, np.empty((len(train), 0)), None, np.asarray(problem.groups)[train])
    return [(train[a], train[b]) for a, b in inner]


def _llm_standardize(problem: ControlProblem, n_features: int) -> bool | np.ndarray:
    return check_standardize(problem.ridge.standardize, n_features)


def block_inner_scores(problem: ControlProblem, t0: int = 0, t1: int | None = None) -> InnerScores:
    """Pass 1 for targets ``t0:t1``: every candidate's inner-CV scores in every outer fold (one decomposition
    per inner fold and candidate, applied to each chunk), kept as each target's best score and alpha."""
    t1 = problem.n_targets if t1 is None else t1
    Xs, C, bk, dtype = _designs(problem)
    designs = [*((Xs[k], _llm_standardize(problem, Xs[k].shape[1])) for k in problem.names),
               (C, check_standardize(problem.control_standardize, C.shape[1]))]
    splits = problem.splits()
    alphas = np.asarray(problem.ridge.alphas, dtype=np.float64)
    best = np.empty((len(splits), len(designs), t1 - t0))
    index = np.empty((len(splits), len(designs), t1 - t0), dtype=np.intp)
    for k, (train, _) in enumerate(splits):
        inner = _inner_splits(problem, train)
        total = np.zeros((len(designs), len(alphas), t1 - t0))
        for a, v in inner:
            ops = [_Ops(problem, X, a, v, std, bk) for X, std in designs]
            for c0, c1 in problem.chunks(t0, t1):
                Y = problem.targets.read(c0, c1).astype(dtype, copy=False)
                Ytr, Yte = bk.asarray(Y[a]), bk.asarray(Y[v])
                for j, op in enumerate(ops):
                    total[j, :, c0 - t0 : c1 - t0] += op.scores(Ytr, Yte)
            del ops
        mean = total / len(inner)
        best[k] = mean.max(1)
        for j in range(len(designs)):
            index[k, j] = select_alphas(mean[j], alphas)
    return InnerScores(best, index)


def select_layers(problem: ControlProblem, scores: InnerScores) -> Selection:
    """Per outer fold, each target group's layer: the best mean over its targets of their best inner-CV R²
    (ties to the earlier layer), as :func:`lmbrain.encoding.cross_validate_select` with ``target_groups``."""
    names = problem.names
    labels = list(dict.fromkeys(problem.target_groups.tolist()))
    members = [np.flatnonzero(problem.target_groups == g) for g in labels]
    n_folds, n_targets = scores.best.shape[0], scores.best.shape[2]
    layer = np.empty((n_folds, n_targets), dtype=np.intp)
    selected = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for k in range(n_folds):
            choice = {}
            for label, cols in zip(labels, members, strict=True):
                means = [float(np.nanmean(scores.best[k, j, cols])) for j in range(len(names))]
                layer[k, cols] = int(np.argmax(means))
                choice[label] = names[int(np.argmax(means))]
            selected.append(choice)
    columns = np.arange(n_targets)
    llm_alpha = np.stack([scores.alpha_index[k, layer[k], columns] for k in range(n_folds)])
    return Selection(layer, llm_alpha, scores.alpha_index[:, -1, :], selected)


class _Spill:
    """Out-of-fold predictions of a block, per (name, fold, chunk): in memory, or as ``.npy`` files."""

    def __init__(self, folder: str | None) -> None:
        self._tmp = tempfile.TemporaryDirectory(dir=folder, prefix="lmbrain-chunks-") if folder else None
        self._mem: dict[tuple, np.ndarray] = {}

    def put(self, key: tuple, value: np.ndarray) -> None:
        if self._tmp is None:
            self._mem[key] = value
        else:
            np.save(Path(self._tmp.name) / ("_".join(map(str, key)) + ".npy"), value)

    def get(self, key: tuple) -> np.ndarray:
        if self._tmp is None:
            return self._mem.pop(key)
        path = Path(self._tmp.name) / ("_".join(map(str, key)) + ".npy")
        value = np.load(path)
        path.unlink()
        return value

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def _oof(ops: list[_Ops], Ytr_all: Any, alpha_index: np.ndarray, n: int, bk: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inner out-of-fold predictions at each target's alpha and their baselines (rows of the whole series)."""
    width = Ytr_all.shape[1]
    pred = np.full((n, width), np.nan)
    base = np.full((n, width), np.nan)
    for op in ops:
        Ytr = Ytr_all[bk.index(op.train)]
        pred[op.test] = bk.to_numpy(op.predict(Ytr, alpha_index))
        base[op.test] = bk.to_numpy(Ytr.mean(0))[None, :]
    return pred, base


def _refit_fold(problem: ControlProblem, sel: Selection, designs: tuple, ctrl_std: Any, k: int, train: np.ndarray,
                test: np.ndarray, t0: int, t1: int, spill: _Spill, weights: np.ndarray) -> None:
    """Outer fold ``k``, chunk by chunk: refit the chosen layer and the controls, stack them (``weights``), spill."""
    Xs, C, bk, dtype = designs
    names, n = problem.names, problem.targets.n_samples
    inner, used = _inner_splits(problem, train), np.unique(sel.layer[k])
    outer = {j: _Ops(problem, Xs[names[j]], train, test, _llm_standardize(problem, Xs[names[j]].shape[1]), bk)
             for j in used}
    inner_ops = {j: [_Ops(problem, Xs[names[j]], a, v, _llm_standardize(problem, Xs[names[j]].shape[1]), bk)
                     for a, v in inner] for j in used}
    ctrl_outer = _Ops(problem, C, train, test, ctrl_std, bk)
    ctrl_inner = [_Ops(problem, C, a, v, ctrl_std, bk) for a, v in inner]
    for c0, c1 in problem.chunks(t0, t1):
        Y = problem.targets.read(c0, c1).astype(dtype, copy=False)
        Yb = bk.asarray(Y)
        Ytr, local = Yb[bk.index(train)], slice(c0 - t0, c1 - t0)
        ymean = bk.to_numpy(Ytr.mean(0)).astype(np.float64)
        llm_te, llm_oof = np.empty((len(test), c1 - c0)), np.empty((n, c1 - c0))
        for j in used:
            cols = np.flatnonzero(sel.layer[k, local] == j)
            if not len(cols):
                continue
            Yj = Yb[:, bk.index(cols)]
            alpha = sel.llm_alpha[k, local][cols]
            llm_te[:, cols] = bk.to_numpy(outer[j].predict(Yj[bk.index(train)], alpha))
            llm_oof[:, cols], base = _oof(inner_ops[j], Yj, alpha, n, bk)
        calpha = sel.controls_alpha[k, local]
        ctrl_te = bk.to_numpy(ctrl_outer.predict(Ytr, calpha)).astype(np.float64)
        ctrl_oof, base = _oof(ctrl_inner, Yb, calpha, n, bk)
        rows = train[np.isfinite(base[train]).all(1)]  # training rows in some inner validation fold
        P = np.stack([llm_oof[rows] - base[rows], ctrl_oof[rows] - base[rows]], axis=1)
        z = stacking_weights(P, Y[rows].astype(np.float64) - base[rows], "simplex")
        weights[:, local] = z
        joint_te = ymean + z[0] * (llm_te - ymean) + z[1] * (ctrl_te - ymean)
        for name, value in (("llm", llm_te), ("controls", ctrl_te), ("joint", joint_te)):
            spill.put((name, k, c0), value.astype(dtype))
        spill.put(("base", k, c0), ymean.astype(dtype))


def _score_block(problem: ControlProblem, splits: list[tuple[np.ndarray, np.ndarray]], folds: np.ndarray, spill: _Spill,
                 t0: int, t1: int, dtype: np.dtype, keep_predictions: bool) -> tuple[dict[str, list], dict[str, list]]:
    """Per chunk, r, R², unique R² and its test from the spilled predictions: (per-target scores, kept predictions)."""
    from lmbrain.analysis.signflip import paired_sign_flip_test

    per_target: dict[str, list[np.ndarray]] = {key: [] for key in ChunkedResult._PER_TARGET}
    kept: dict[str, list[np.ndarray]] = {"llm": [], "controls": [], "joint": [], "baseline": []}
    tested, blocks = folds >= 0, np.asarray(problem.groups if problem.blocks is None else problem.blocks)
    for c0, c1 in problem.chunks(t0, t1):
        Y = problem.targets.read(c0, c1).astype(dtype, copy=False)
        pred = {}
        for name in ("llm", "controls", "joint", "base"):
            full = np.full((len(folds), c1 - c0), np.nan, dtype=dtype)
            for k, (_, test) in enumerate(splits):
                full[test] = spill.get((name, k, c0))
            pred[name] = full
        for name in ("llm", "controls", "joint"):
            per_target[f"{name}_r"].append(mean_fold_r(pearson_r_folds(Y, pred[name], folds)))
            per_target[f"{name}_r2"].append(r2_oos(Y[tested], pred[name][tested], pred["base"][tested]))
        test = paired_sign_flip_test(Y, pred["joint"], pred["controls"], pred["base"], blocks,
                                     problem.n_permutations, seed=problem.seed, tested=tested, folds=folds)
        per_target["unique_r2"].append(test.delta_r2)
        per_target["p_unique"].append(test.p)
        if keep_predictions:
            for name in ("llm", "controls", "joint"):
                kept[name].append(pred[name])
            kept["baseline"].append(pred["base"])
    return per_target, kept


def block_results(problem: ControlProblem, selection: Selection, t0: int = 0, t1: int | None = None,
                  keep_predictions: bool = False) -> ChunkedResult:
    """Pass 2 for targets ``t0:t1`` (``selection`` of all targets): per outer fold the chosen layer, the controls
    and their stacking refitted; then r, R², the unique R² and its test, chunk by chunk."""
    t1 = problem.n_targets if t1 is None else t1
    sel = selection.block(t0, t1)
    Xs, C, bk, dtype = _designs(problem)
    ctrl_std = check_standardize(problem.control_standardize, C.shape[1])
    splits = problem.splits()
    folds = np.full(problem.targets.n_samples, -1, dtype=np.intp)
    weights = np.full((len(splits), 2, t1 - t0), np.nan)
    spill = _Spill(problem.spill_dir)
    try:
        for k, (train, test) in enumerate(splits):
            folds[test] = k
            _refit_fold(problem, sel, (Xs, C, bk, dtype), ctrl_std, k, train, test, t0, t1, spill, weights[k])
        per_target, kept = _score_block(problem, splits, folds, spill, t0, t1, dtype, keep_predictions)
    finally:
        spill.close()
    return ChunkedResult(**{k: np.concatenate(v) for k, v in per_target.items()}, joint_weights=weights, selection=sel,
                         predictions={k: np.hstack(v) for k, v in kept.items()} if keep_predictions else None)


def chunked_control_analysis(problem: ControlProblem, keep_predictions: bool = False) -> ChunkedResult:
    """The whole analysis in this process: inner scores of all targets, the selection, then the results."""
    selection = select_layers(problem, block_inner_scores(problem))
    result = block_results(problem, selection, keep_predictions=keep_predictions)
    result.selection = selection
    return result
