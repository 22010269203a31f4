"""Inner cross-validation of ridge: every alpha's score on every inner fold from one decomposition per outer
training fold (the exact deletion formula, ``method="leave_out"``, or a refit per inner fold), the per-target
choice of alpha (best mean or one standard error), and out-of-fold predictions at the chosen alphas."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lmbrain.encoding.backend import Backend, get_backend
from lmbrain.encoding.ridge import (
    _MATRIX_BUDGET,
    ALPHA_CHOICES,
    CV_SCORES,
    DECOMPOSITIONS,
    SCORINGS,
    Decomposition,
    RidgeCVSolution,
    Split,
    _check_alphas,
    _check_method,
    _decomposition_key,
    _np_dtype,
    _target_batch,
    decompose,
    ridge_fit,
    standardize_rows,
    standardized_decomposition,
)
from lmbrain.errors import LmbrainError


def _held_out(train: np.ndarray, test: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows a split leaves out of its training set (E) and the positions of its test rows in E."""
    out = np.setdiff1d(np.arange(n), np.asarray(train))
    pos = np.searchsorted(out, np.asarray(test))
    if len(test) and (pos.max() >= len(out) or not np.array_equal(out[np.minimum(pos, len(out) - 1)], test)):
        raise LmbrainError("a split's test rows overlap its training rows")
    return out, pos


def _deletion_matrices(dec: Decomposition, out: np.ndarray, n: int, alphas: ArrayLike, fit_intercept: bool,
                       backend: Backend) -> tuple[Any, Any]:
    """``(I - H)_EE`` for every alpha (n_alphas, |E|, |E|) and the rows ``B_E`` of the basis."""
    BE = dec.B[backend.index(out)]
    base = backend.eye(len(out), BE) - BE @ BE.T
    if fit_intercept:
        base = base - 1.0 / n
    root = (alphas[:, None] / (dec.ev[None, :] + alphas[:, None])) ** 0.5  # sqrt(1 - ev / (ev + alpha))
    scaled = [BE * root[a] for a in range(len(alphas))]
    return backend.stack([base + W @ W.T for W in scaled]), BE  # W Wᵀ: a symmetric rank-k update (syrk)


def _deletion_inverse(M: Any, n_targets: int, backend: Backend) -> tuple[Any, bool]:
    """:func:`_deletion_matrices` as they are applied: their inverses when there are at least as many targets as
    held-out rows (formed once per split, then one product per target batch: ~6x a solve, which refactors and
    copies for every batch, at 10,000 targets), else the matrices themselves (solved per batch: cheaper for few
    targets). Returns (matrices, inverted)."""
    if n_targets < M.shape[-1]:
        return M, False
    return backend.solve(M, backend.stack([backend.eye(M.shape[-1], M)] * M.shape[0])), True


def _deletion_predictions(M: Any, BE: Any, BtY: Any, Yc_out: Any, Y_test: ArrayLike, pos: Any,
                          shrink: Any, backend: Backend, inverted: bool = False) -> Any:
    """Predictions (n_alphas, n_test, n_targets) of the test rows by the ridge refitted without E (``M``: the
    matrices of :func:`_deletion_matrices`, or their inverses when ``inverted``)."""
    n_alphas, n_out = shrink.shape[0], BE.shape[0]
    if BtY.shape[1] < n_out:  # ((I - H) Y)_E per alpha
        fitted = BE @ (shrink[:, :, None] * BtY[None])
    else:  # many targets: the alphas' scaled bases stacked into one product (no alphas x rank x targets temporary)
        fitted = ((BE[None] * shrink[:, None, :]).reshape(n_alphas * n_out, -1) @ BtY).reshape(n_alphas, n_out, -1)
    resid = Yc_out[None] - fitted
    e = M @ resid if inverted else backend.solve(M, resid)
    return Y_test[None] - e[:, pos]


def _leave_out_scores(X: ArrayLike, Y: ArrayLike, alphas: np.ndarray, splits: Sequence[Split], fit_intercept: bool,
                      standardize: bool | np.ndarray, scoring: str, solver: str, bk: Backend,
                      n_targets_batch: int | None) -> np.ndarray:
    """:func:`ridge_cv_scores` with ``method="leave_out"``: one decomposition, exact deletion per split (or a
    refit where cheaper); memoised by content per target column (:data:`CV_SCORES`, numpy only)."""
    Y = bk.asarray(Y, dtype=np.float64)
    key = _decomposition_key(X, fit_intercept, standardize, solver, bk)
    memo = None if key is None else _score_keys(key, Y, alphas, splits, scoring)
    if memo is not None:
        hits = [CV_SCORES.get(k) for k in memo]
        if all(h is not None for h in hits):
            return np.stack(hits, axis=-1)
    scores = _leave_out_compute(X, Y, alphas, splits, fit_intercept, standardize, scoring, solver, bk,
                                n_targets_batch, key)
    if memo is not None:
        for j, k in enumerate(memo):
            column = scores[:, :, j].copy()
            column.setflags(write=False)
            CV_SCORES.put(k, column, column.nbytes)
    return scores


def _score_keys(key: tuple, Y: np.ndarray, alphas: np.ndarray, splits: Sequence[Split], scoring: str) -> list:
    """Memo keys of the leave-out scores of every target column (:data:`CV_SCORES`)."""
    h = hashlib.blake2b(digest_size=20)
    for train, test in splits:
        for rows in (train, test):
            h.update(np.ascontiguousarray(rows, dtype=np.int64).view(np.uint8))
            h.update(b"|")
    common = (key, h.hexdigest(), np.asarray(alphas, dtype=np.float64).tobytes(), scoring)
    return [(common, hashlib.blake2b(np.ascontiguousarray(Y[:, j]).view(np.uint8), digest_size=20).hexdigest())
            for j in range(Y.shape[1])]


def _leave_out_compute(X: ArrayLike, Y: ArrayLike, alphas: np.ndarray, splits: Sequence[Split], fit_intercept: bool,
                       standardize: bool | np.ndarray, scoring: str, solver: str, bk: Backend,
                       n_targets_batch: int | None, key: tuple | None) -> np.ndarray:
    """The leave-out scores (float64 ``Y``), each split by the deletion formula or a refit, whichever is cheaper."""
    n, n_targets = Y.shape
    dtype = np.dtype(np.float64)
    scores = np.empty((len(splits), len(alphas), n_targets), dtype=np.float64)
    memoised = key is not None and key in DECOMPOSITIONS
    deletion = _deletion_splits(n, X.shape[1], splits, len(alphas), n_targets, memoised)
    if not all(deletion):  # the same models refitted on the once-scaled training rows (cheaper for large |E|)
        X64 = bk.asarray(X, dtype=dtype)
        Xs = standardize_rows(X64, bk.index(np.arange(n)), None, fit_intercept, standardize, bk)[0]
        refit = [f for f, d in enumerate(deletion) if not d]
        scores[refit] = ridge_cv_scores(Xs, Y, alphas, [splits[f] for f in refit], fit_intercept=fit_intercept,
                                        standardize=False, scoring=scoring, solver=solver, backend=bk,
                                        n_targets_batch=n_targets_batch, method="refit")
        if not any(deletion):
            return scores
    _, _, dec = standardized_decomposition(X, fit_intercept, standardize, solver, bk, key=key)
    alphas_b = bk.asarray(alphas, dtype=dtype)
    shrink = dec.ev[None, :] / (dec.ev[None, :] + alphas_b[:, None])
    held = []
    for f, (train, test) in enumerate(splits):
        if not deletion[f]:
            continue
        out, pos = _held_out(train, test, n)
        M, BE = _deletion_matrices(dec, out, n, alphas_b, fit_intercept, bk)
        held.append((f, bk.index(out), bk.index(pos), bk.index(np.asarray(train)), bk.index(np.asarray(test)),
                     *_deletion_inverse(M, n_targets, bk), BE))
    ymean = Y.mean(0) if fit_intercept else None
    width = max([dec.B.shape[1], *(len(h[1]) for h in held)])  # (n_alphas, width, batch) temporaries
    batch = _target_batch(n_targets, width * len(alphas), dtype.itemsize, n_targets_batch)
    for t0 in range(0, n_targets, batch):
        t1 = min(n_targets, t0 + batch)
        Yb = Y[:, t0:t1]
        Yc = Yb - ymean[t0:t1] if fit_intercept else Yb
        BtY = dec.B.T @ Yc
        for f, out, pos, train, test, M, inverted, BE in held:
            Yte = Yb[test]
            pred = _deletion_predictions(M, BE, BtY, Yc[out], Yte, pos, shrink, bk, inverted)
            ymean_tr = Yb[train].mean(0) if fit_intercept else 0.0 * Yte[0]
            Yte_c = Yte - ymean_tr
            d = Yte - Yte.mean(0)
            with np.errstate(invalid="ignore", divide="ignore"):  # constant targets: handled below
                s = _fold_scores(pred - ymean_tr, Yte_c, (d * d).sum(0), scoring, bk)
            scores[f, :, t0:t1] = bk.to_numpy(s).astype(np.float64)
    return scores


#: an eigendecomposition of an m x m matrix costs about this many matrix-product multiply-adds per m³
#: (measured with one OpenBLAS thread: 10 at m = 200, 5 at 576, 4 at 1,000)
_EIGH_COST = 6.0


def _decomposition_cost(m: int, p: int) -> float:
    """Approximate multiply-adds of :func:`decompose` (covariance or kernel eigh) of an m x p matrix."""
    small, large = min(m, p), max(m, p)
    return 1.5 * small * small * large + _EIGH_COST * small**3


def _deletion_splits(n: int, p: int, splits: Sequence[Split], n_alphas: int, n_targets: int,
                     memoised: bool) -> list[bool]:
    """Per split of a leave-out inner CV, whether the deletion formula (True) or a refit of the once-scaled
    training rows (False) scores it with fewer flops; both give the same model.

    Deletion costs per split and alpha ``|E|² rank / 2`` (the matrix ``(I - H)_EE``) and ``|E|³`` (its solve)
    after one shared decomposition (free when memoised) and projection ``BᵀY`` (``n rank`` per target: with
    thousands of targets it decides); a refit costs a decomposition of the training rows.
    With 5 inner folds the deletion wins by far; with 2 (half the rows held out) the refits do.
    """
    rank = min(n, p)
    delete, refit = [], []
    for train, test in splits:
        e, n_train, n_test = n - len(train), len(train), len(test)
        delete.append(n_alphas * (e * e * rank / 2 + e**3 + e * (rank + e) * n_targets))
        r = min(n_train, p)
        refit.append(_decomposition_cost(n_train, p) + n_test * p * r + n_alphas * n_test * r * n_targets
                     + n_train * r * n_targets)
    # the deletion's shared parts: the decomposition of all rows and the projection B'Y of every target
    mixed = (0.0 if memoised else _decomposition_cost(n, p)) + n * rank * n_targets + sum(map(min, delete, refit))
    if mixed < sum(refit):
        return [d <= r for d, r in zip(delete, refit, strict=True)]
    return [False] * len(splits)




def _fold_scores(P: Any, Yte_c: Any, sst: Any, scoring: str, backend: Backend) -> Any:
    """Scores (n_alphas, n_targets) of stacked predictions P (n_alphas, n_test, n_targets).

    ``Yte_c`` are the test targets minus the training mean (what the centred predictions estimate).
    """
    n_test = Yte_c.shape[0]
    if scoring == "pearson":
        p_sum = P.sum(1)
        p_sq = backend.sum_of_products(P, P)
        py = backend.sum_of_products(P, Yte_c[None])
        y_sum = Yte_c.sum(0)
        cov = py - p_sum * y_sum / n_test
        var_p = p_sq - p_sum * p_sum / n_test
        denom = (var_p * sst) ** 0.5
        return cov / denom
    P -= Yte_c[None]
    sse = backend.sum_of_products(P, P)
    if scoring == "neg_mse":
        return -sse / n_test
    return 1.0 - sse / sst


def _project_first(n_train: int, n_test: int, rank: int, n_alphas: int, n_targets: int | None = None) -> bool:
    """Whether ``stack(Xte R w) @ (B.T Y)`` costs fewer flops than ``stack(Xte R w B.T) @ Y``: per target, and,
    given ``n_targets``, counting the product that forms the second operator (it pays off only over many targets)."""
    first = n_train * rank + n_alphas * n_test * rank
    second = n_alphas * n_test * n_train
    if n_targets is None:
        return first < second
    return n_targets * first < n_alphas * n_test * rank * n_train + n_targets * second


def ridge_cv_scores(
    X: ArrayLike,
    Y: ArrayLike,
    alphas: Sequence[float] | np.ndarray,
    splits: Sequence[Split],
    *,
    fit_intercept: bool = True,
    standardize: bool | np.ndarray = True,
    scoring: str = "r2",
    solver: str = "auto",
    backend: str | Backend = "numpy",
    n_targets_batch: int | None = None,
    method: str = "refit",
) -> np.ndarray:
    """Validation scores (n_splits, n_alphas, n_targets) of ridge for every alpha, fold and target.

    ``method`` is ``"refit"`` (each split standardised and decomposed on its training rows) or
    ``"leave_out"`` (for inner CV on training rows: one decomposition, exact deletion; module docstring).
    """
    bk = get_backend(backend)
    if scoring not in SCORINGS:
        raise LmbrainError(f"unknown scoring {scoring!r}; expected one of {SCORINGS}")
    _check_method(method)
    X = bk.asarray(X)
    Y = bk.asarray(Y, dtype=_np_dtype(X, bk))
    alphas_np = _check_alphas(alphas)
    if method == "leave_out":
        scores = _leave_out_scores(X, Y, alphas_np, splits, fit_intercept, standardize, scoring, solver, bk,
                                   n_targets_batch)
        if scoring in ("r2", "pearson"):
            scores[~np.isfinite(scores)] = 0.0
        return scores
    scores = np.empty((len(splits), len(alphas_np), Y.shape[1]), dtype=np.float64)
    alphas_b = bk.asarray(alphas_np, dtype=_np_dtype(X, bk))
    for f, (train, test) in enumerate(splits):
        _refit_fold_scores(X, Y, alphas_b, train, test, fit_intercept, standardize, scoring, solver, bk,
                           n_targets_batch, scores[f])
    if scoring in ("r2", "pearson"):
        # a constant validation target has no defined r2 / r; score it 0 like himalaya
        scores[~np.isfinite(scores)] = 0.0
    return scores


def _refit_fold_scores(X: ArrayLike, Y: ArrayLike, alphas_b: Any, train: np.ndarray, test: np.ndarray,
                       fit_intercept: bool,
                       standardize: bool | np.ndarray, scoring: str, solver: str, bk: Backend,
                       n_targets_batch: int | None, out: np.ndarray) -> None:
    """One split of ``method="refit"``: standardise and decompose its training rows, and write its validation
    scores (n_alphas, n_targets) into ``out``."""
    n_targets, n_alphas = Y.shape[1], len(alphas_b)
    itemsize = _np_dtype(X, bk).itemsize
    train_b, test_b = bk.index(train), bk.index(test)
    Xtr, Xte, _, _ = standardize_rows(X, train_b, test_b, fit_intercept, standardize, bk)
    dec = decompose(Xtr, solver, bk)
    A = Xte @ dec.R
    n_train, n_test, rank = len(train), len(test), A.shape[1]
    # stacked validation operator per alpha, in the cheaper contraction order
    project_first = _project_first(n_train, n_test, rank, n_alphas, n_targets)
    width = rank if project_first else n_train
    alpha_batch = max(1, min(n_alphas, _MATRIX_BUDGET // max(1, n_test * width * itemsize)))
    weights = 1.0 / (dec.ev[None, :] + alphas_b[:, None])  # (n_alphas, rank)
    ops = []
    for a0 in range(0, n_alphas, alpha_batch):
        w = weights[a0 : a0 + alpha_batch]
        Aw = (A[None] * w[:, None, :]).reshape(w.shape[0] * n_test, rank)  # rank 0: a constant feature band
        ops.append((a0, w.shape[0], Aw if project_first else Aw @ dec.B.T))
    batch = _target_batch(n_targets, n_test * min(alpha_batch, n_alphas), itemsize, n_targets_batch)
    for t0 in range(0, n_targets, batch):
        t1 = min(n_targets, t0 + batch)
        Ytr = Y[train_b, t0:t1]
        Yte = Y[test_b, t0:t1]
        if fit_intercept:
            ymean = Ytr.mean(0)
            Ytr -= ymean
            Yte_c = Yte - ymean
        else:
            Yte_c = Yte
        d = Yte - Yte.mean(0)
        sst = (d * d).sum(0)
        rhs = dec.B.T @ Ytr if project_first else Ytr
        for a0, na, op in ops:
            P = (op @ rhs).reshape(na, n_test, t1 - t0)
            with np.errstate(invalid="ignore", divide="ignore"):  # constant targets: handled below
                s = bk.to_numpy(_fold_scores(P, Yte_c, sst, scoring, bk)).astype(np.float64)
            out[a0 : a0 + na, t0:t1] = s


def target_group_members(target_groups: ArrayLike, n_targets: int) -> tuple[np.ndarray, list, list[np.ndarray]]:
    """(a label per target, the distinct labels in order of appearance, each label's target indices); None: one
    group of all targets."""
    labels = np.zeros(n_targets, dtype=int) if target_groups is None else np.asarray(target_groups)
    if labels.shape != (n_targets,):
        raise LmbrainError(f"target_groups needs one label per target ({n_targets}), got shape {labels.shape}")
    tgroups = list(dict.fromkeys(labels.tolist()))
    return labels, tgroups, [np.flatnonzero(labels == g) for g in tgroups]


def alpha_scores(fold_scores: np.ndarray, alphas: Sequence[float] | np.ndarray, choice: str = "best",
                 target_groups: ArrayLike | None = None) -> np.ndarray:
    """The inner-CV scores (n_alphas, n_targets) that choose each target's alpha, from per-fold scores
    (n_folds, n_alphas, n_targets): their mean over folds (``choice="best"``: :func:`select_alphas` takes the
    best alpha), or (``"one_se"``) that mean with every alpha smaller than the target's one-standard-error choice
    set to -inf -- the largest alpha whose mean is within one standard error (over folds) of the best one's
    (Hastie, Tibshirani & Friedman, ESL 7.10), so that its argmax is that alpha and its maximum that alpha's mean.
    ``"shared_one_se"``: one penalty for every target of a group (``target_groups``, a label per target, e.g. the
    subject; None: all targets), the one-SE choice on the group's mean curve (its per-fold mean over the group's
    targets), returned for each of them -- scikit-learn's ``RidgeCV(alpha_per_target=False)`` with the one-SE rule.

    Why: with far more features than samples the small alphas nearly interpolate, and their inner-CV scores swing
    by whole R² units from fold to fold; the best mean of a few such folds is often luck, and a luck-chosen small
    alpha predicts wildly wherever the test rows differ from the training rows (issue 23: untrained SmolLM2 on
    Brennan2016; ``tests/encoding/test_alpha_choice.py``). One target's curve from 5 contiguous blocks of ~56 scans
    is still noise-dominated: Brennan2016's six ROIs per subject share one penalty under ``shared_one_se``, which
    averages six curves (``docs/statistics.md``, "The LLM-alone penalty on time series").
    """
    if choice not in ALPHA_CHOICES:
        raise LmbrainError(f"unknown alpha choice {choice!r}; expected one of {ALPHA_CHOICES}")
    fold_scores = np.asarray(fold_scores, dtype=np.float64)
    if choice == "shared_one_se":
        out = np.empty(fold_scores.shape[1:])
        for cols in target_group_members(target_groups, fold_scores.shape[2])[2]:
            out[:, cols] = alpha_scores(fold_scores[:, :, cols].mean(2, keepdims=True), alphas, "one_se")
        return out
    mean = fold_scores.mean(0)
    n_folds = fold_scores.shape[0]
    if choice == "best" or n_folds < 2:
        return mean
    alphas_np = np.asarray(alphas, dtype=np.float64)
    se = fold_scores.std(0, ddof=1) / np.sqrt(n_folds)
    columns = np.arange(mean.shape[1])
    best = select_alphas(mean, alphas_np)
    within = mean >= (mean[best, columns] - se[best, columns])[None, :]
    chosen = np.where(within, alphas_np[:, None], -np.inf).max(0)  # the largest alpha within one SE
    return np.where(alphas_np[:, None] < chosen[None, :], -np.inf, mean)


def select_alphas(cv_scores: np.ndarray, alphas: Sequence[float] | np.ndarray) -> np.ndarray:
    """Index of the best alpha per target from mean CV scores (n_alphas, n_targets); ties -> larger alpha."""
    alphas_np = np.asarray(alphas, dtype=np.float64)
    # the same epsilon slope as himalaya, so that equal scores pick the larger alpha
    return np.argmax(cv_scores + 1e-10 * np.log(alphas_np)[:, None], axis=0)


def _leave_out_predictions(X: ArrayLike, Y: ArrayLike, alphas_np: np.ndarray, alpha_index: np.ndarray,
                           splits: Sequence[Split],
                           fit_intercept: bool, standardize: bool | np.ndarray, solver: str, bk: Backend,
                           pred: np.ndarray, baseline: np.ndarray) -> None:
    """``ridge_cv_predictions`` with ``method="leave_out"``: one decomposition of all rows, each split's
    predictions by exact deletion; written into ``pred`` and ``baseline``."""
    n_samples, n_targets = Y.shape
    _, _, dec = standardized_decomposition(X, fit_intercept, standardize, solver, bk)
    Y = bk.asarray(Y, dtype=np.float64)
    ymean = Y.mean(0) if fit_intercept else None
    Yc = Y - ymean if fit_intercept else Y
    BtY = dec.B.T @ Yc
    used = np.unique(alpha_index)
    alphas_b = bk.asarray(alphas_np[used], dtype=np.float64)
    shrink = dec.ev[None, :] / (dec.ev[None, :] + alphas_b[:, None])
    for train, test in splits:
        out, pos = _held_out(train, test, n_samples)
        M, BE = _deletion_matrices(dec, out, n_samples, alphas_b, fit_intercept, bk)
        M, inverted = _deletion_inverse(M, n_targets, bk)
        out_b, pos_b, test_b = bk.index(out), bk.index(pos), bk.index(np.asarray(test))
        for a, ai in enumerate(used):
            cols = np.flatnonzero(alpha_index == ai)
            cols_b = bk.index(cols)
            p = _deletion_predictions(M[a : a + 1], BE, BtY[:, cols_b], Yc[out_b][:, cols_b],
                                      Y[test_b][:, cols_b], pos_b, shrink[a : a + 1], bk, inverted)[0]
            pred[np.ix_(test, cols)] = bk.to_numpy(p)
        ymean_tr = Y[bk.index(np.asarray(train))].mean(0) if fit_intercept else Y[0] * 0.0
        baseline[test] = bk.to_numpy(ymean_tr)[None, :]


def ridge_cv_predictions(
    X: ArrayLike,
    Y: ArrayLike,
    alphas: Sequence[float] | np.ndarray,
    alpha_index: np.ndarray,
    splits: Sequence[Split],
    *,
    fit_intercept: bool = True,
    standardize: bool | np.ndarray = True,
    solver: str = "auto",
    backend: str | Backend = "numpy",
    method: str = "refit",
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions over ``splits`` at each target's alpha ``alphas[alpha_index]``, and baselines.

    Returns ``(pred, baseline)``, both (n_samples, n_targets): a row's validation prediction and the mean
    of its fold's training targets (NaN for rows in no validation fold; a row validated twice keeps the
    last fold). With ``method="refit"`` each fold is standardised and centred on its own training rows;
    with ``"leave_out"`` once on all rows (inner CV), as in :func:`ridge_cv_scores`.
    """
    bk = get_backend(backend)
    _check_method(method)
    X = bk.asarray(X)
    dtype = _np_dtype(X, bk)
    Y = bk.asarray(Y, dtype=dtype)
    alphas_np = _check_alphas(alphas)
    alpha_index = np.asarray(alpha_index, dtype=np.intp)
    n_samples, n_targets = Y.shape
    if alpha_index.shape != (n_targets,):
        raise LmbrainError(f"alpha_index must have one entry per target ({n_targets}), got {alpha_index.shape}")
    pred = np.full((n_samples, n_targets), np.nan, dtype=dtype)
    baseline = np.full((n_samples, n_targets), np.nan, dtype=dtype)
    if method == "leave_out":
        _leave_out_predictions(X, Y, alphas_np, alpha_index, splits, fit_intercept, standardize, solver, bk, pred,
                               baseline)
        return pred, baseline
    index = bk.index(alpha_index)
    alphas_b = bk.asarray(alphas_np, dtype=dtype)
    for train, test in splits:
        train_b, test_b = bk.index(train), bk.index(test)
        Xtr, Xte, _, _ = standardize_rows(X, train_b, test_b, fit_intercept, standardize, bk)
        dec = decompose(Xtr, solver, bk)
        Ytr = Y[train_b]
        ymean = Ytr.mean(0) if fit_intercept else bk.asarray(np.zeros(n_targets), dtype=dtype)
        C = dec.B.T @ (Ytr - ymean)
        C = C * (1.0 / (dec.ev[:, None] + alphas_b[None, :]))[:, index]
        pred[test] = bk.to_numpy((Xte @ dec.R) @ C + ymean)
        baseline[test] = bk.to_numpy(ymean)[None, :]
    return pred, baseline


def solve_ridge_cv(
    X: ArrayLike,
    Y: ArrayLike,
    alphas: Sequence[float] | np.ndarray,
    splits: Sequence[Split],
    *,
    fit_intercept: bool = True,
    standardize: bool | np.ndarray = True,
    scoring: str = "r2",
    solver: str = "auto",
    backend: str | Backend = "numpy",
    n_targets_batch: int | None = None,
    method: str = "refit",
) -> RidgeCVSolution:
    """Per-target alpha by CV over ``splits`` (``method`` as in :func:`ridge_cv_scores`), then a refit on all
    rows with each target's alpha."""
    bk = get_backend(backend)
    common = dict(fit_intercept=fit_intercept, standardize=standardize, solver=solver, backend=bk,
                  n_targets_batch=n_targets_batch)
    fold_scores = ridge_cv_scores(X, Y, alphas, splits, scoring=scoring, method=method, **common)
    cv_scores = fold_scores.mean(0)
    index = select_alphas(cv_scores, alphas)
    alphas_np = np.asarray(alphas, dtype=np.float64)
    factors = ridge_fit(X, Y, alphas_np, index, **common)
    return RidgeCVSolution(alphas=alphas_np[index], alpha_index=index, factors=factors,
                           cv_scores=cv_scores, fold_scores=fold_scores)
