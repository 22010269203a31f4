"""Outer cross-validation: out-of-fold predictions, their scores, and nested candidate selection.

* :func:`cross_validate` -- fit a clone of the estimator on each training fold (passing that fold's
  groups for the inner CV), predict the test fold, and score the out-of-fold predictions: Pearson r
  within every test fold, averaged over the folds, and out-of-sample R² against each sample's
  training-fold mean, pooled over all tested samples.
* :func:`cross_validate_select` -- the same, but in every outer training fold each candidate feature
  matrix (one per LM layer, say) is scored by inner CV on that training fold only; the best one is refit
  and predicts the test fold. The test fold never influences which candidate, alpha or scaling is used.

Why r is averaged over folds and R² pooled: every fold's model predicts around its own training mean,
so pooling the out-of-fold predictions of all folds mixes fold-specific means into the correlation. A
fold whose test samples are high has a training mean that is low (and vice versa), so the pooled
predictions are anti-correlated with the responses even when a model has no signal at all: intercept-only
or no-signal predictions score a pooled r of about -0.1 on grouped data (audits: -0.09 and -0.07 for
the OASM control on Fedorenko2016 and Pereira2018, -0.10 for SmolLM2's layer 0 on Pereira2018).
Brain-Score and most of the encoding literature correlate within each test split and average over the
splits, which removes the fold means; ``r`` does the same (``r_pooled`` keeps the pooled value for
audits). R² needs no such correction: its baseline is the very training-fold mean each sample's model
knew, so an intercept-only model scores exactly 0, and it stays defined where a fold's predictions are
constant (where the per-fold r is not).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import clone

from lmbrain.encoding.estimators import RidgeCV, check_xy
from lmbrain.encoding.inner_cv import target_group_members
from lmbrain.encoding.metrics import mean_fold_r, pearson_r, pearson_r_folds, r2_oos
from lmbrain.encoding.splits import SplitError, check_splits
from lmbrain.errors import LmbrainError

CRITERIA = ("r2", "pearson")


@dataclass
class EncodingResult:
    """Out-of-fold predictions and scores of one encoding analysis.

    ``predictions``/``baseline``: (n_samples, n_targets); the baseline is the training-fold mean that a
    sample's fold knew. ``folds``: test-fold index of every sample (-1: never tested, scored nowhere).
    ``r``: per target, the mean over outer folds of ``r_folds``, (n_folds, n_targets) Pearson r within each
    test fold (a fold where the target or its prediction is constant is skipped; NaN without any finite
    fold r). ``r2``: per target, out-of-sample R² pooled over all tested samples. ``r_pooled``: Pearson r
    of the pooled out-of-fold predictions (biased negative for weak models; for audits only).
    ``alphas``: per-fold ``alpha_`` of the estimator stacked on axis 0 ((n_folds, n_targets) for RidgeCV,
    (n_folds, n_bands, n_targets) for BandedRidgeCV; None without ``alpha_``). ``selected``: chosen
    candidate per fold (``cross_validate_select``), ``inner_scores``: candidate -> inner-CV score averaged
    over outer folds (for reporting only), ``inner_scores_folds``: (n_folds, n_candidates) in the order of
    ``candidates``. ``weights``: per-fold ``weights_`` of a stacked joint model, (n_folds, n_bands, n_targets).
    """

    predictions: np.ndarray
    baseline: np.ndarray
    folds: np.ndarray
    r: np.ndarray
    r2: np.ndarray
    alphas: np.ndarray | None
    selected: list[str] | None = None
    inner_scores: dict[str, float] | None = None
    r_folds: np.ndarray | None = None
    inner_scores_folds: np.ndarray | None = None
    candidates: list[str] | None = None
    cv_scores_folds: list[dict[str, np.ndarray]] | None = None
    r_pooled: np.ndarray | None = None
    weights: np.ndarray | None = None

    @property
    def n_folds(self) -> int:
        """Number of outer folds."""
        return int(self.folds.max()) + 1


def _outer_splits(cv: Any, n_samples: int, groups: np.ndarray | None) -> list[tuple[np.ndarray, np.ndarray]]:
    if isinstance(cv, int | np.integer) and groups is None:
        raise SplitError(
            "cross_validate needs groups (the dataset's split unit) with an integer cv; pass groups, or an "
            "explicit splitter such as ContiguousBlockSplit"
        )
    splits = check_splits(cv, np.empty((n_samples, 0)), None, groups)
    seen = np.zeros(n_samples, dtype=int)
    for _, test in splits:
        seen[test] += 1
    if (seen > 1).any():
        raise SplitError(f"{int((seen > 1).sum())} samples are in more than one test fold")
    return splits


def _fit(estimator: Any, X: np.ndarray, Y: np.ndarray, groups: np.ndarray | None) -> Any:
    """Fit, passing ``groups`` when the estimator's fit accepts it."""
    if "groups" in inspect.signature(estimator.fit).parameters:
        return estimator.fit(X, Y, groups=groups)
    return estimator.fit(X, Y)


def _result(Y: np.ndarray, pred: np.ndarray, base: np.ndarray, folds: np.ndarray, alphas: list[Any],
            ravel: bool) -> EncodingResult:
    tested = folds >= 0
    r_folds = pearson_r_folds(Y, pred, folds)
    stacked = None
    if alphas and all(a is not None for a in alphas):
        stacked = np.stack([np.asarray(a, dtype=np.float64) for a in alphas])
    squeeze = (lambda a: a[:, 0]) if ravel else (lambda a: a)
    return EncodingResult(
        predictions=squeeze(pred), baseline=squeeze(base), folds=folds,
        r=mean_fold_r(r_folds), r2=r2_oos(Y[tested], pred[tested], base[tested]),
        alphas=stacked, r_folds=r_folds, r_pooled=pearson_r(Y[tested], pred[tested]),
    )


def cross_validate(estimator: Any, X: ArrayLike, Y: ArrayLike, groups: ArrayLike, cv: Any = 5) -> EncodingResult:
    """Out-of-fold predictions and per-target scores (fold-mean r, pooled R²); ``cv`` int = GroupedKFold.

    ``X`` may also be a list with one feature matrix per outer fold (e.g. the layer chosen inside that
    fold's training data): fold k is then fitted and predicted with ``X[k]``.

    Parameters
    ----------
    estimator : estimator
        A scikit-learn-style regressor (``fit(X, Y, groups)``, ``predict``), e.g. :class:`RidgeCV`; cloned per fold.
    X : array of shape (n_samples, n_features), or a list of n_folds such arrays
        The features (one matrix per outer fold when a list).
    Y : array of shape (n_samples, n_targets) or (n_samples,)
        The responses.
    groups : array of shape (n_samples,) or None
        The split unit of every sample (passage, story, block); no group is on both sides of a fold.
    cv : int or splitter
        Outer folds: an int is that many :class:`GroupedKFold` folds.

    Returns
    -------
    EncodingResult
        ``r`` and ``r2`` of shape (n_targets,), ``predictions`` and ``baseline`` (n_samples, n_targets), ``folds``
        (n_samples,), and the chosen ``alphas`` per fold.
    """
    per_fold = isinstance(X, list | tuple)
    if per_fold:
        matrices = [check_xy(x, Y)[0] for x in X]
        _, Y, ravel = check_xy(matrices[0], Y)
        n = Y.shape[0]
    else:
        X, Y, ravel = check_xy(X, Y)
        n = X.shape[0]
    groups = None if groups is None else np.asarray(groups)
    splits = _outer_splits(cv, n, groups)
    if per_fold and len(matrices) != len(splits):
        raise LmbrainError(f"{len(matrices)} per-fold feature matrices for {len(splits)} outer folds")
    pred = np.full(Y.shape, np.nan, dtype=Y.dtype)
    base = np.full(Y.shape, np.nan, dtype=Y.dtype)
    folds = np.full(n, -1, dtype=np.intp)
    alphas, weights = [], []
    for k, (train, test) in enumerate(splits):
        Xk = matrices[k] if per_fold else X
        est = _fit(clone(estimator), Xk[train], Y[train], None if groups is None else groups[train])
        p = np.asarray(est.predict(Xk[test]), dtype=Y.dtype)
        pred[test] = p.reshape(len(test), -1)
        base[test] = Y[train].mean(0)
        folds[test] = k
        alphas.append(getattr(est, "alpha_", None))
        weights.append(getattr(est, "weights_", None))
    result = _result(Y, pred, base, folds, alphas, ravel)
    if weights and all(w is not None for w in weights):
        result.weights = np.stack([np.asarray(w, dtype=np.float64).reshape(len(w), -1) for w in weights])
    return result


def cross_validate_select(
    candidates: Mapping[str, Any],
    Y: ArrayLike,
    groups: ArrayLike,
    cv: Any = 5,
    estimator: Any = None,
    inner_cv: Any = None,
    criterion: str = "r2",
    target_groups: ArrayLike | None = None,
    keep_cv_scores: bool = False,
) -> EncodingResult:
    """Nested selection of one candidate feature matrix per outer fold, by inner CV on the training fold.

    A candidate's inner score is the mean over targets of: for :class:`RidgeCV`, its inner-CV
    ``criterion`` at each target's best alpha (computed once and reused for the refit of the winner);
    for any other estimator, the ``criterion`` (``r2`` or ``r``) of an inner :func:`cross_validate`. ``inner_cv``
    defaults to the estimator's own ``cv`` (RidgeCV) or 5 grouped folds. Ties go to the earlier candidate.

    ``target_groups`` (one label per target, e.g. its subject) makes the choice separately for every
    group of targets while sharing the decompositions: the result is the same as one call per group.
    ``selected`` is then a list (per fold) of {group: candidate}, ``inner_scores`` {group: {candidate: s}}.

    ``keep_cv_scores`` (RidgeCV only) keeps every candidate's per-target inner-CV scores of every fold in
    ``cv_scores_folds``, so that :func:`cross_validate_each` scores every candidate without redoing them.
    """
    if criterion not in CRITERIA:
        raise LmbrainError(f"unknown criterion {criterion!r}; expected one of {CRITERIA}")
    if not candidates:
        raise LmbrainError("cross_validate_select needs at least one candidate feature matrix")
    names = list(candidates)
    Xs, Y2, ravel = {}, None, False
    for name in names:
        Xs[name], Y2, ravel = check_xy(candidates[name], Y)
    n = Y2.shape[0]
    grouped_targets = target_groups is not None
    labels, tgroups, members = target_group_members(target_groups, Y2.shape[1])
    groups = None if groups is None else np.asarray(groups)
    splits = _outer_splits(cv, n, groups)
    estimator, ridge, inner = _selection_estimator(estimator, criterion, inner_cv)
    pred, base = np.full(Y2.shape, np.nan, dtype=Y2.dtype), np.full(Y2.shape, np.nan, dtype=Y2.dtype)
    folds = np.full(n, -1, dtype=np.intp)
    inner_scores = np.empty((len(splits), len(names), len(tgroups)))
    alphas, selected, kept = [], [], []
    for k, (train, test) in enumerate(splits):
        g = None if groups is None else groups[train]
        cache = _inner_candidate_scores(estimator, Xs, Y2, train, g, labels, members, criterion, inner,
                                        inner_scores[k])
        choice, fold_alpha = _fit_choices(estimator, Xs, Y2, train, test, g, tgroups, members, inner_scores[k],
                                          cache, pred)
        base[test] = Y2[train].mean(0)
        folds[test] = k
        alphas.append(fold_alpha)
        selected.append(choice if grouped_targets else choice[tgroups[0]])
        if keep_cv_scores and ridge:
            kept.append(cache)
    result = _result(Y2, pred, base, folds, alphas, ravel)
    result.selected, result.candidates = selected, names
    result.cv_scores_folds = kept if keep_cv_scores and ridge else None
    _attach_inner_scores(result, inner_scores, names, tgroups if grouped_targets else None)
    return result


def _selection_estimator(estimator: Any, criterion: str, inner_cv: Any) -> tuple[Any, bool, Any]:
    """(the estimator scoring ``criterion`` (a RidgeCV clone, with ``inner_cv`` when given), whether it is a RidgeCV,
    the inner CV of other estimators)."""
    estimator = RidgeCV() if estimator is None else estimator
    ridge = isinstance(estimator, RidgeCV)
    if ridge:
        estimator = clone(estimator).set_params(scoring=criterion)
        if inner_cv is not None:
            estimator.set_params(cv=inner_cv)
    return estimator, ridge, 5 if inner_cv is None else inner_cv


def _inner_candidate_scores(estimator: Any, Xs: dict[str, np.ndarray], Y2: np.ndarray, train: np.ndarray,
                            g: np.ndarray | None, labels: np.ndarray, members: list[np.ndarray], criterion: str,
                            inner: Any, out: np.ndarray) -> dict[str, np.ndarray]:
    """Fill ``out`` (n_candidates, n_target_groups) with each candidate's mean inner score per group of targets on
    one training fold; returns RidgeCV's per-target inner-CV scores by candidate (empty for other estimators)."""
    cache = {}
    for j, name in enumerate(Xs):
        Xtr, Ytr = Xs[name][train], Y2[train]
        if isinstance(estimator, RidgeCV):
            cache[name] = cv_scores = clone(estimator).inner_cv_scores(Xtr, Ytr, g, target_groups=labels)
            per_target = cv_scores.max(0)
        else:
            res = cross_validate(estimator, Xtr, Ytr, g, inner)
            per_target = res.r2 if criterion == "r2" else res.r
        out[j] = [float(np.nanmean(per_target[m])) for m in members]
    return cache


def _fit_choices(estimator: Any, Xs: dict[str, np.ndarray], Y2: np.ndarray, train: np.ndarray, test: np.ndarray,
                 g: np.ndarray | None, tgroups: list, members: list[np.ndarray], scores: np.ndarray,
                 cache: dict[str, np.ndarray], pred: np.ndarray) -> tuple[dict, np.ndarray | None]:
    """Refit each group of targets on its best candidate of the fold (``scores`` (n_candidates, n_groups)) and write
    its test predictions into ``pred``; returns ({group: candidate}, the fold's alphas per target or None)."""
    names = list(Xs)
    fold_alpha = None
    choice = {}
    for gi, (label, cols) in enumerate(zip(tgroups, members, strict=True)):
        best = names[int(np.argmax(scores[:, gi]))]
        choice[label] = best
        Ytr = Y2[train][:, cols]
        if isinstance(estimator, RidgeCV):
            est = clone(estimator).fit_from_cv_scores(Xs[best][train], Ytr, cache[best][:, cols])
        else:
            est = _fit(clone(estimator), Xs[best][train], Ytr, g)
        p = np.asarray(est.predict(Xs[best][test]), dtype=Y2.dtype).reshape(len(test), -1)
        pred[np.ix_(test, cols)] = p
        a = getattr(est, "alpha_", None)
        if a is not None:
            a = np.asarray(a, dtype=np.float64)
            if fold_alpha is None:
                fold_alpha = np.full((*a.shape[:-1], Y2.shape[1]), np.nan)
            fold_alpha[..., cols] = a
    return choice, fold_alpha


def _attach_inner_scores(result: EncodingResult, inner_scores: np.ndarray, names: list[str],
                         tgroups: list | None) -> None:
    """``inner_scores_folds`` and ``inner_scores`` of a selection (per group of targets when ``tgroups``)."""
    if tgroups is not None:
        result.inner_scores_folds = inner_scores
        result.inner_scores = {
            label: {name: float(inner_scores[:, j, gi].mean()) for j, name in enumerate(names)}
            for gi, label in enumerate(tgroups)
        }
    else:
        result.inner_scores_folds = inner_scores[:, :, 0]
        result.inner_scores = {name: float(inner_scores[:, j, 0].mean()) for j, name in enumerate(names)}


def cross_validate_each(
    candidates: Mapping[str, Any],
    Y: ArrayLike,
    groups: ArrayLike,
    cv: Any,
    estimator: RidgeCV,
    cv_scores_folds: list[dict[str, np.ndarray]] | None = None,
) -> dict[str, EncodingResult]:
    """:func:`cross_validate` of a :class:`RidgeCV` on every candidate (per-layer curves, descriptive).

    With ``cv_scores_folds`` from ``cross_validate_select(..., keep_cv_scores=True)`` on the same data and
    splits, each fold refits every candidate from its inner-CV scores (one decomposition instead of one per
    inner fold plus one); the results equal a separate :func:`cross_validate` per candidate when the scores
    were computed with the estimator's own ``scoring`` (``criterion`` of the selection).
    """
    if cv_scores_folds is None:
        return {name: cross_validate(estimator, X, Y, groups, cv) for name, X in candidates.items()}
    names = list(candidates)
    Xs = {}
    Y2, ravel = None, False
    for name in names:
        Xs[name], Y2, ravel = check_xy(candidates[name], Y)
    groups = None if groups is None else np.asarray(groups)
    splits = _outer_splits(cv, Y2.shape[0], groups)
    if len(cv_scores_folds) != len(splits):
        raise LmbrainError(f"{len(cv_scores_folds)} folds of inner-CV scores for {len(splits)} outer folds")
    out = {}
    for name in names:
        pred = np.full(Y2.shape, np.nan, dtype=Y2.dtype)
        base = np.full(Y2.shape, np.nan, dtype=Y2.dtype)
        folds = np.full(Y2.shape[0], -1, dtype=np.intp)
        alphas = []
        for k, (train, test) in enumerate(splits):
            est = clone(estimator).fit_from_cv_scores(Xs[name][train], Y2[train], cv_scores_folds[k][name])
            pred[test] = np.asarray(est.predict(Xs[name][test]), dtype=Y2.dtype).reshape(len(test), -1)
            base[test] = Y2[train].mean(0)
            folds[test] = k
            alphas.append(est.alpha_)
        out[name] = _result(Y2, pred, base, folds, alphas, ravel)
    return out
