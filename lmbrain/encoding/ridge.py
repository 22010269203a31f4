"""Backend-agnostic ridge solvers: all alphas x all targets from one decomposition per fold.

Every fold's training matrix is written once as ``Xtrain = B @ diag(sqrt(ev)) @ ...`` such that, for
any alpha, the ridge coefficients and the predictions on held-out rows are::

    coef(alpha)      = R @ diag(1 / (ev + alpha)) @ B.T @ Ytrain
    pred(alpha)      = (Xtest @ R) @ diag(1 / (ev + alpha)) @ B.T @ Ytrain

* ``solver="gram"`` (n_samples >= n_features, the default there): eigh of the feature covariance
  ``Xtrain.T Xtrain = V L V.T`` (in float64); ``R = V sqrt(L)``, ``B = Xtrain V / sqrt(L)``, ``ev = L``.
  ``R diag(1/(ev+alpha)) B.T = V diag(1/(L+alpha)) V.T Xtrain.T``: the primal ridge solution, exact
  without forming ``U`` accurately; about 3x faster than the SVD (measured: 930 x 576, 0.028 s vs 0.087 s).
* ``solver="svd"``: thin SVD ``Xtrain = U S Vt``; ``B = U``, ``R = V S``, ``ev = s**2`` (the most
  accurate path for nearly singular designs at tiny alphas).
* ``solver="kernel"`` (n_features > n_samples): eigh of the Gram matrix ``Xtrain Xtrain.T = Q L Q.T``;
  ``B = Q``, ``R = Xtrain.T Q``, ``ev = L`` (computed in float64 for float32 data: the Gram matrix
  squares the condition number).

Directions with ``ev`` below the numerical rank tolerance are dropped (as a pseudo-inverse does).
The validation predictions of all alphas are one matrix product, in whichever order is cheaper:
``stack_alpha(Xtest R diag(w_alpha) B.T) @ Ytrain`` (cost ~ n_alphas n_test n_train per target) or
``stack_alpha(Xtest R diag(w_alpha)) @ (B.T Ytrain)`` (cost ~ (n_train + n_alphas n_test) rank).
Targets are processed in batches to bound memory.

Two ways to score the splits of :func:`ridge_cv_scores` (``method``):

* ``"refit"``: each split is standardised (and centred) on its own training rows and decomposed anew --
  the right choice when the splits are outer folds, whose test rows must not touch any statistic.
* ``"leave_out"`` (inner CV, the default of :class:`~lmbrain.encoding.RidgeCV`): ``X`` holds training rows
  only; it is standardised once on all of them and decomposed once, and each split's validation predictions
  are those of the ridge refitted without the split's held-out rows ``E`` (everything not in its training
  rows), from the exact deletion formula ``y_E - (I - H_EE)^-1 ((I - H) y)_E`` with the hat matrix
  ``H = 11ᵀ/n + B diag(ev/(ev+alpha)) Bᵀ`` (the intercept refitted without ``E`` as well). The only
  difference to ``"refit"`` is the scaling of the columns, which uses X (never Y) of the validation rows,
  as a scikit-learn ``Pipeline(StandardScaler(), RidgeCV())`` or himalaya's pipelines do. Cost per split and
  alpha ``|E|² rank`` instead of one decomposition per split (about 5x fewer flops at 1,100 x 576, 5 folds).

Decompositions of numpy matrices are memoised by content within a process
(:func:`standardized_decomposition`; budget ``LMBRAIN_DECOMPOSITION_CACHE_MB``, default 512), so that
the inner CV, the refit, the joint model's band of the same layer, the per-layer curves and the permutation
nulls of one training fold decompose it once.
"""

from __future__ import annotations

import collections
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmbrain.encoding.backend import Backend, get_backend
from lmbrain.errors import LmbrainError

SOLVERS = ("auto", "gram", "svd", "kernel")
SCORINGS = ("r2", "neg_mse", "pearson")
#: How the splits of an inner CV are scored (see the module docstring).
CV_METHODS = ("refit", "leave_out")
#: How a target's alpha is chosen from its inner-CV scores (:func:`alpha_scores`).
ALPHA_CHOICES = ("best", "one_se")
#: Bytes that one batch of validation predictions may take.
_PREDICTION_BUDGET = 64 * 2**20
#: Bytes that the stacked per-alpha resolution matrix may take.
_MATRIX_BUDGET = 512 * 2**20

Split = tuple[np.ndarray, np.ndarray]


@dataclass
class Decomposition:
    """A training matrix in the form ``coef(alpha) = R diag(1/(ev+alpha)) B.T Y``."""

    B: Any
    R: Any
    ev: Any
    solver: str


@dataclass
class RidgeCVSolution:
    """Output of :func:`solve_ridge_cv` (numpy arrays on the host)."""

    alphas: np.ndarray
    alpha_index: np.ndarray
    factors: RidgeFactors
    cv_scores: np.ndarray
    fold_scores: np.ndarray


def resolve_solver(solver: str, n_samples: int, n_features: int) -> str:
    """The decomposition used: the feature covariance when n_samples >= n_features, the kernel otherwise."""
    if solver not in SOLVERS:
        raise LmbrainError(f"unknown solver {solver!r}; expected one of {SOLVERS}")
    if solver == "auto":
        return "gram" if n_samples >= n_features else "kernel"
    return solver


def decompose(X: Any, solver: str, backend: Backend) -> Decomposition:
    """Decompose a (standardised, centred) training matrix; see the module docstring."""
    n, p = X.shape
    solver = resolve_solver(solver, n, p)
    eps = float(np.finfo(backend.to_numpy(X[:1, :1]).dtype).eps)
    if solver == "svd":
        U, s, Vt = backend.svd(X)
        ev = s * s
        keep = s > s[0] * max(n, p) * eps if len(s) else s > 0
        B, R, ev = U[:, keep], Vt[keep].T * s[keep], ev[keep]
    elif solver == "gram":
        dtype = backend.to_numpy(X[:1, :1]).dtype
        Xd = backend.asarray(X, dtype=np.float64) if dtype == np.float32 else X
        ev, V = backend.eigh(Xd.T @ Xd)
        tol = max(float(ev[-1]), 0.0) * (max(n, p) * eps) ** 2 if len(ev) else 0.0
        keep = ev > tol
        V, ev = V[:, keep], ev[keep]
        root = ev**0.5
        R = V * root
        B = (Xd @ V) / root
        if Xd is not X:
            B, R, ev = (backend.asarray(a, dtype=dtype) for a in (B, R, ev))
    else:
        # The Gram matrix squares the condition number: in float32 its small eigenvalues would be lost
        # (predictions off by 10% at small alpha), so it is formed and decomposed in float64, and only
        # the factors are cast back; the target-sized products stay in the working precision.
        dtype = backend.to_numpy(X[:1, :1]).dtype
        Xd = backend.asarray(X, dtype=np.float64) if dtype == np.float32 else X
        ev, Q = backend.eigh(Xd @ Xd.T)
        # the SVD path's rank tolerance on singular values, squared for eigenvalues of the Gram matrix
        tol = max(float(ev[-1]), 0.0) * (max(n, p) * eps) ** 2 if len(ev) else 0.0
        keep = ev > tol
        B, ev = Q[:, keep], ev[keep]
        R = Xd.T @ B
        if Xd is not X:
            B, R, ev = (backend.asarray(a, dtype=dtype) for a in (B, R, ev))
    return Decomposition(B=B, R=R, ev=ev, solver=solver)


def check_standardize(standardize: bool | Any, n_features: int) -> bool | np.ndarray:
    """``standardize`` as True/False (all / no columns) or a boolean mask (n_features,) of columns to z-score.

    Columns flagged False are only centred (with an intercept): one-hot, indicator and identity-like
    (OASM) features keep their scale. An all-True or all-False mask collapses to the bool.
    """
    if isinstance(standardize, bool | np.bool_):
        return bool(standardize)
    mask = np.asarray(standardize)
    if mask.dtype != np.bool_ or mask.shape != (n_features,):
        raise LmbrainError(
            f"standardize must be a bool or a boolean array with one value per feature ({n_features}), "
            f"got dtype {mask.dtype} and shape {mask.shape}"
        )
    if mask.all():
        return True
    if not mask.any():
        return False
    return mask


def standardize_rows(
    X: Any, train: Any, test: Any | None, fit_intercept: bool, standardize: bool | np.ndarray,
    backend: Backend | None = None,
) -> tuple[Any, Any, Any, Any]:
    """Training/test rows scaled with statistics of the training rows only: (Xtr, Xte, mean, scale).

    ``standardize`` is a bool or a per-feature boolean mask (:func:`check_standardize`); the scale of a
    column not flagged is 1. ``scale`` is None when no column is standardised.
    """
    standardize = check_standardize(standardize, X.shape[1])
    Xtr = X[train]
    Xte = X[test] if test is not None else None
    scaled = standardize is not False
    mean = Xtr.mean(0) if (fit_intercept or scaled) else None
    scale = None
    if fit_intercept:
        Xtr = Xtr - mean
        if Xte is not None:
            Xte = Xte - mean
    if scaled:
        centred = Xtr if fit_intercept else Xtr - mean
        scale = ((centred * centred).mean(0)) ** 0.5
        scale[scale == 0] = 1.0
        if standardize is not True:
            bk = backend or get_backend("numpy")
            flag = bk.asarray(standardize.astype(np.float64), dtype=_np_dtype(X, bk))
            scale = scale * flag + (1.0 - flag)
        Xtr = Xtr / scale
        if Xte is not None:
            Xte = Xte / scale
    return Xtr, Xte, mean, scale


def prediction_operator(dec: Decomposition, Xte: Any, alpha: float, backend: Backend) -> Any:
    """The linear map (n_test, n_train) from centred training responses to test predictions for one penalty:
    ``Xte R diag(1 / (ev + alpha)) Bᵀ`` (the permutation nulls refit through it)."""
    w = 1.0 / (dec.ev + backend.asarray(np.asarray(alpha, dtype=np.float64), dtype=_np_dtype(dec.R, backend)))
    return ((Xte @ dec.R) * w[None, :]) @ dec.B.T


class _DecompositionCache:
    """A small LRU of standardised decompositions keyed by the content of the matrix (numpy only)."""

    def __init__(self) -> None:
        self.items: collections.OrderedDict = collections.OrderedDict()
        self.nbytes = 0
        self.hits = 0
        self.misses = 0

    @staticmethod
    def budget() -> int:
        """Bytes the cache may hold (``LMBRAIN_DECOMPOSITION_CACHE_MB``, default 512; 0 disables it)."""
        return int(float(os.environ.get("LMBRAIN_DECOMPOSITION_CACHE_MB", "512")) * 2**20)

    def __contains__(self, key: tuple) -> bool:
        return key in self.items

    def get(self, key: tuple) -> Any:
        """The entry for ``key`` (marked recently used), or None."""
        value = self.items.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self.items.move_to_end(key)
        return value[0]

    def put(self, key: tuple, value: Any, nbytes: int) -> None:
        """Keep ``value`` unless it alone exceeds the budget; drop the least recently used beyond it."""
        budget = self.budget()
        if nbytes > budget:
            return
        self.items[key] = (value, nbytes)
        self.nbytes += nbytes
        while self.nbytes > budget:
            _, (_, size) = self.items.popitem(last=False)
            self.nbytes -= size

    def clear(self) -> None:
        """Forget every entry."""
        self.items.clear()
        self.nbytes = 0


DECOMPOSITIONS = _DecompositionCache()
#: leave-out inner-CV scores by content (decomposition key, splits, alphas, scoring, target column): the joint
#: model's LLM band re-scores the layer that the selection already scored on the same training fold
CV_SCORES = _DecompositionCache()


def clear_memos() -> None:
    """Forget the memoised decompositions and inner-CV scores (benchmarks time every repeat from scratch)."""
    DECOMPOSITIONS.clear()
    CV_SCORES.clear()


def content_digest(X: np.ndarray) -> tuple[str, str]:
    """A digest of the values of a float array, the same for float32 and float64 arrays of equal values: float64
    values that float32 holds exactly (LLM features, often upcast on the way) are hashed as float32, half the
    bytes. Returns (hex digest, the dtype hashed)."""
    X = np.asarray(X)
    if X.dtype != np.float32:
        X = X.astype(np.float64, copy=False)
        narrow = X.astype(np.float32)
        if np.array_equal(narrow, X):
            X = narrow
    return hashlib.sha256(np.ascontiguousarray(X).view(np.uint8)).hexdigest()[:40], X.dtype.str


def _cache_key(X: np.ndarray, fit_intercept: bool, standardize: bool | np.ndarray, solver: str) -> tuple:
    digest, hashed = content_digest(X)
    flags = standardize if isinstance(standardize, bool) else np.asarray(standardize).tobytes()
    return digest, X.shape, hashed, bool(fit_intercept), flags, solver


def _decomposition_key(X: Any, fit_intercept: bool, standardize: bool | np.ndarray, solver: str,
                       backend: Backend) -> tuple | None:
    """The memo key of :func:`standardized_decomposition` (None where nothing is memoised)."""
    if backend.name != "numpy" or DECOMPOSITIONS.budget() <= 0:
        return None
    return _cache_key(np.asarray(X), fit_intercept, check_standardize(standardize, X.shape[1]), solver)


def standardized_decomposition(
    X: Any, fit_intercept: bool, standardize: bool | np.ndarray, solver: str, backend: Backend,
    key: tuple | None = None,
) -> tuple[Any, Any, Decomposition]:
    """``X`` standardised (and centred) on all its rows and decomposed: (mean, scale, decomposition), all in
    float64 whatever the dtype of ``X`` (the deletion formula subtracts nearly equal quantities).

    Memoised by content for numpy arrays (:data:`DECOMPOSITIONS`); the cached arrays are read-only. ``key``:
    the memo key when the caller already has it (:func:`_decomposition_key`).
    """
    standardize = check_standardize(standardize, X.shape[1])
    if key is None:  # float32 and float64 copies of the same values share one entry
        key = _decomposition_key(X, fit_intercept, standardize, solver, backend)
    X = backend.asarray(X, dtype=np.float64)
    if key is not None:
        hit = DECOMPOSITIONS.get(key)
        if hit is not None:
            return hit
    rows = backend.index(np.arange(X.shape[0]))
    Xs, _, mean, scale = standardize_rows(X, rows, None, fit_intercept, standardize, backend)
    dec = decompose(Xs, solver, backend)
    value = (mean, scale, dec)
    if key is not None:
        arrays = [a for a in (mean, scale, dec.B, dec.R, dec.ev) if a is not None]
        for a in arrays:
            a.setflags(write=False)
        DECOMPOSITIONS.put(key, value, sum(a.nbytes for a in arrays))
    return value


def _held_out(train: np.ndarray, test: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows a split leaves out of its training set (E) and the positions of its test rows in E."""
    out = np.setdiff1d(np.arange(n), np.asarray(train))
    pos = np.searchsorted(out, np.asarray(test))
    if len(test) and (pos.max() >= len(out) or not np.array_equal(out[np.minimum(pos, len(out) - 1)], test)):
        raise LmbrainError("a split's test rows overlap its training rows")
    return out, pos


def _deletion_matrices(dec: Decomposition, out: np.ndarray, n: int, alphas: Any, fit_intercept: bool,
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


def _deletion_predictions(M: Any, BE: Any, BtY: Any, Yc_out: Any, Y_test: Any, pos: Any,
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


def _leave_out_scores(X: Any, Y: Any, alphas: np.ndarray, splits: Sequence[Split], fit_intercept: bool,
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


def _leave_out_compute(X: Any, Y: Any, alphas: np.ndarray, splits: Sequence[Split], fit_intercept: bool,
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


def _target_batch(n_targets: int, rows: int, itemsize: int, n_targets_batch: int | None) -> int:
    """Number of targets per batch: the user's choice, else what fits the prediction budget."""
    if n_targets_batch is not None:
        if n_targets_batch < 1:
            raise LmbrainError(f"n_targets_batch must be >= 1, got {n_targets_batch}")
        return int(n_targets_batch)
    return int(max(256, min(n_targets, _PREDICTION_BUDGET // max(1, rows * itemsize))))


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
    X: Any,
    Y: Any,
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
    n_targets = Y.shape[1]
    scores = np.empty((len(splits), len(alphas_np), n_targets), dtype=np.float64)
    alphas_b = bk.asarray(alphas_np, dtype=_np_dtype(X, bk))
    itemsize = _np_dtype(X, bk).itemsize
    for f, (train, test) in enumerate(splits):
        train_b, test_b = bk.index(train), bk.index(test)
        Xtr, Xte, _, _ = standardize_rows(X, train_b, test_b, fit_intercept, standardize, bk)
        dec = decompose(Xtr, solver, bk)
        A = Xte @ dec.R
        n_train, n_test, rank = len(train), len(test), A.shape[1]
        n_alphas = len(alphas_np)
        # stacked validation operator per alpha, in the cheaper contraction order
        project_first = _project_first(n_train, n_test, rank, n_alphas, n_targets)
        width = rank if project_first else n_train
        alpha_batch = max(1, min(n_alphas, _MATRIX_BUDGET // max(1, n_test * width * itemsize)))
        weights = 1.0 / (dec.ev[None, :] + alphas_b[:, None])  # (n_alphas, rank)
        ops = []
        for a0 in range(0, n_alphas, alpha_batch):
            w = weights[a0 : a0 + alpha_batch]
            Aw = (A[None] * w[:, None, :]).reshape(-1, rank)
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
                scores[f, a0 : a0 + na, t0:t1] = s
    if scoring in ("r2", "pearson"):
        # a constant validation target has no defined r2 / r; score it 0 like himalaya
        scores[~np.isfinite(scores)] = 0.0
    return scores


def alpha_scores(fold_scores: np.ndarray, alphas: Sequence[float] | np.ndarray, choice: str = "best") -> np.ndarray:
    """The inner-CV scores (n_alphas, n_targets) that choose each target's alpha, from per-fold scores
    (n_folds, n_alphas, n_targets): their mean over folds (``choice="best"``: :func:`select_alphas` takes the
    best alpha), or (``"one_se"``) that mean with every alpha smaller than the target's one-standard-error choice
    set to -inf -- the largest alpha whose mean is within one standard error (over folds) of the best one's
    (Hastie, Tibshirani & Friedman, ESL 7.10), so that its argmax is that alpha and its maximum that alpha's mean.

    Why: with far more features than samples the small alphas nearly interpolate, and their inner-CV scores swing
    by whole R² units from fold to fold; the best mean of a few such folds is often luck, and a luck-chosen small
    alpha predicts wildly wherever the test rows differ from the training rows (issue 23: untrained SmolLM2 on
    Brennan2016; ``tests/encoding/test_alpha_choice.py``).
    """
    if choice not in ALPHA_CHOICES:
        raise LmbrainError(f"unknown alpha choice {choice!r}; expected one of {ALPHA_CHOICES}")
    fold_scores = np.asarray(fold_scores, dtype=np.float64)
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


def ridge_cv_predictions(
    X: Any,
    Y: Any,
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


@dataclass
class RidgeFactors:
    """A fitted ridge kept factored: ``coef = R @ C`` in standardised units (backend arrays).

    Predicting ``m`` rows costs ``m k (p + n_targets)`` with ``k <= min(n_samples, n_features)``
    instead of ``p k n_targets`` for materialising ``coef`` first; ``coef()`` builds it on request.
    """

    R: Any
    C: Any
    x_mean: Any
    x_scale: Any
    y_mean: Any
    backend: Backend

    def _transform(self, X: Any) -> Any:
        """X in the standardised, centred units of the fit."""
        if self.x_mean is not None:
            X = X - self.x_mean
        if self.x_scale is not None:
            X = X / self.x_scale
        return X

    def predict(self, X: Any) -> np.ndarray:
        """Predictions (n_rows, n_targets) for rows X (a backend array or numpy)."""
        X = self.backend.asarray(X, dtype=_np_dtype(self.R, self.backend))
        pred = (self._transform(X) @ self.R) @ self.C
        if self.y_mean is not None:
            pred += self.y_mean
        return self.backend.to_numpy(pred)

    def coef(self) -> np.ndarray:
        """Coefficients (n_features, n_targets) in the units of X."""
        W = self.R @ self.C
        if self.x_scale is not None:
            W = W / self.x_scale[:, None]
        return self.backend.to_numpy(W)

    def intercept(self) -> np.ndarray:
        """Intercepts (n_targets,) in the units of X and Y (zeros without intercept)."""
        if self.y_mean is None:
            return np.zeros(self.C.shape[1], dtype=_np_dtype(self.C, self.backend))
        x0 = self.x_mean if self.x_scale is None else self.x_mean / self.x_scale
        return self.backend.to_numpy(self.y_mean - (x0 @ self.R) @ self.C)


def ridge_fit(
    X: Any,
    Y: Any,
    alphas: Sequence[float] | np.ndarray | float,
    alpha_index: np.ndarray | None = None,
    *,
    fit_intercept: bool = True,
    standardize: bool | np.ndarray = True,
    solver: str = "auto",
    backend: str | Backend = "numpy",
    n_targets_batch: int | None = None,
) -> RidgeFactors:
    """Fit ridge on all rows; the solution is returned factored (see :class:`RidgeFactors`).

    ``alphas`` is one alpha for all targets, or a grid with ``alpha_index`` (n_targets,) picking one
    alpha of the grid per target, or one alpha per target (n_targets,) when ``alpha_index`` is None.
    """
    bk = get_backend(backend)
    X = bk.asarray(X)
    Y = bk.asarray(Y, dtype=_np_dtype(X, bk))
    n_targets = Y.shape[1]
    alphas_np = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if alpha_index is None:
        if len(alphas_np) == 1:
            alpha_index = np.zeros(n_targets, dtype=np.int64)
        elif len(alphas_np) == n_targets:
            alphas_np, alpha_index = np.unique(alphas_np, return_inverse=True)
        else:
            raise LmbrainError(
                f"ridge_fit: {len(alphas_np)} alphas for {n_targets} targets; give one alpha, one per "
                "target, or a grid with alpha_index"
            )
    _check_alphas(alphas_np)
    mean, scale, dec = standardized_decomposition(X, fit_intercept, standardize, solver, bk)
    dtype = _np_dtype(X, bk)
    if dtype != np.float64:  # the factors in the working precision (the decomposition is float64)
        mean, scale = (None if a is None else bk.asarray(a, dtype=dtype) for a in (mean, scale))
        dec = Decomposition(B=bk.asarray(dec.B, dtype=dtype), R=bk.asarray(dec.R, dtype=dtype),
                            ev=bk.asarray(dec.ev, dtype=dtype), solver=dec.solver)
    weights = 1.0 / (dec.ev[:, None] + bk.asarray(alphas_np, dtype=dtype)[None, :])  # (rank, n_alphas)
    C = dec.B.T @ Y
    y_mean = None
    if fit_intercept:
        y_mean = Y.mean(0)
        C -= dec.B.sum(0)[:, None] * y_mean[None, :]
    index = bk.index(alpha_index)
    batch = _target_batch(n_targets, C.shape[0], dtype.itemsize, n_targets_batch)
    for t0 in range(0, n_targets, batch):
        C[:, t0 : t0 + batch] *= weights[:, index[t0 : t0 + batch]]
    return RidgeFactors(R=dec.R, C=C, x_mean=mean if fit_intercept else None,
                        x_scale=scale, y_mean=y_mean, backend=bk)


def solve_ridge_cv(
    X: Any,
    Y: Any,
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


def _check_method(method: str) -> None:
    if method not in CV_METHODS:
        raise LmbrainError(f"unknown CV method {method!r}; expected one of {CV_METHODS}")


def _check_alphas(alphas: Sequence[float] | np.ndarray) -> np.ndarray:
    """Alphas as a 1-D float64 array; all must be finite and > 0."""
    arr = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if arr.ndim != 1 or len(arr) == 0:
        raise LmbrainError(f"alphas must be a non-empty 1-D sequence, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise LmbrainError(f"alphas must be finite and > 0, got {arr.tolist()}")
    return arr


def _np_dtype(X: Any, backend: Backend) -> np.dtype:
    """The numpy dtype of a backend array."""
    return backend.to_numpy(X[:1, :1]).dtype
