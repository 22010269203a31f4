"""Calibration of the significance tests of a study on simulations shaped like the shipped datasets.

Every test the report uses is run on out-of-fold predictions of cross-validated ridges fitted exactly as a
study fits them (``RidgeCV`` with inner CV of the outer scheme; joint models of ``DEFAULT_JOINT``), on 1000
simulated targets per cell split over 10 independent feature draws, under the null (false-positive rate at
α = 0.05) and under effects of the size seen on the real data (power):

* ``p_r`` (r > 0: the feature set is associated with the held-out responses) -- refit null: the cross-validated
  ridge refitted on responses flipped about their mean a whole sentence / passage at a time (event data) or
  circularly shifted (time series);
* ``p_r2`` (out-of-sample R² > 0: the feature set predicts held-out responses better than the training mean)
  -- block sign flips of ``d = (y − b)² − (y − ŷ)²`` (``b``: training-fold mean);
* ``p_unique`` (unique LLM R² > 0: the joint model predicts better than the controls alone) -- block sign
  flips of the paired squared-error differences; the study widens them by the two-role inflation κ on time series
  only (κ from the joint model as a linear smoother, ``lmbrain.analysis.smoothers.joint_smoother``, exactly as
  ``lmbrain.study.rows.unique_inflation``). The table shows the plain and the κ-widened flips for every data kind.

Next to them, the former default (``refit`` with whole groups permuted among groups of the same size, word
order kept; circular shifts for time series), which keeps anything locked to word or sentence position.

Data kinds, each at every LLM width of ``--widths`` (default 576 and 384, the shipped SmolLM2-135M and MiniLM;
the width is the number of LLM features per word, or per scan before the 4 delays of a time series):

* ``fedorenko``: 52 sentences × 8 words (ECoG), grouped 5-fold outer and inner CV by sentence; controls =
  one-hot word position (centred only); LLM = width features = a word-position embedding + word-specific
  variation with a power-law spectrum; noise with a sentence intercept. Effects: a word-position profile shared
  by all sentences (out-of-sample R² ≈ 0.05, as on Fedorenko2016) and LLM-specific signal.
* ``pereira``: 627 sentences in 168 passages of 3-4 sentences (fMRI), grouped by passage; controls = sentence
  length (z-scored) + position in the passage (one-hot); LLM = width features with a passage topic, a sentence
  part and length / position information; noise with a passage intercept. Effects: R² ≈ 0.2.
* ``brennan``: 362 scans of one run (naturalistic fMRI), contiguous 5-fold CV with a 5-scan gap; controls =
  word rate and sound power (AR(1) series) × 4 delays; LLM = width AR(1) series partly driven by the
  controls × 4 delays; HRF-weighted delays; AR(1) noise; sign flips of blocks of 20 scans. Effects: R² ≈ 0.01.

Scenarios: *noise* (no signal at all), *boundary* (one signal shared by all targets of a feature draw, its size
set per draw by pilot runs so that the expected out-of-sample R² -- or unique R² -- is 0: the edge of the null of
an R² test), and *effect* (real-data sizes). The tables report, per cell, the mean measured statistic and the
rejection rate at α = 0.05 ± 1.96 standard errors clustered by feature draw (targets of one draw share its
features, so they are not independent).

Run ``python benchmarks/calibrate_nulls.py``; ``--tests single`` or ``--tests unique`` measures one family
(``--tests unique`` at both widths: about 15 CPU minutes on one thread), ``--jobs 2`` runs (data kind, width)
pairs in parallel, ``--quick`` is a short check; ``--write-docs`` replaces the measured blocks of
docs/statistics.md ("Permutation nulls and calibration"): the single feature sets' and the unique-variance
test's, each only when measured.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _docs import write_block  # benchmarks/ is on sys.path when a script runs

from lmbrain.analysis.permutation import permutation_test
from lmbrain.analysis.resamples import block_sign_flips, circular_shifts, group_permutations
from lmbrain.analysis.signflip import (
    INFLATION_RESAMPLES,
    contiguous_blocks,
    gain_inflation,
    paired_sign_flip_test,
    sign_flip_test,
)
from lmbrain.analysis.smoothers import FoldSmoother, joint_smoother
from lmbrain.encoding import ContiguousBlockSplit, GroupedKFold, RidgeCV, cross_validate, cross_validate_select
from lmbrain.encoding.joint import DEFAULT_JOINT, DEFAULT_JOINT_TIMESERIES, make_joint_estimator

DOCS = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
BEGIN, END = "<!-- calibrate_nulls: begin -->", "<!-- calibrate_nulls: end -->"
UNIQUE_BEGIN, UNIQUE_END = "<!-- calibrate_nulls unique: begin -->", "<!-- calibrate_nulls unique: end -->"
#: LLM widths (features per word or scan) of the shipped models: SmolLM2-135M (576) and MiniLM (384).
WIDTHS = (576, 384)
ALPHA = 0.05
ALPHAS = np.logspace(-2, 7, 10)
#: Response of a target to a regressor at delays 1..4 scans (an HRF-like finite impulse response).
HRF_WEIGHTS = np.array([0.5, 1.0, 0.8, 0.4])


@dataclass
class Design:
    """One data kind: features, CV, resampling blocks, the bases signals are built from, and its noise."""

    name: str
    timeseries: bool
    groups: np.ndarray  # the CV groups (sentences, passages; the run of a time series)
    blocks: np.ndarray  # what sign flips move whole (the split unit's groups; 20 consecutive scans)
    outer: object
    inner: object
    controls: np.ndarray
    controls_std: np.ndarray
    llm: np.ndarray
    control_basis: np.ndarray  # the controls' signal: control_basis @ a
    unique_basis: np.ndarray  # the LLM-specific signal: unique_basis @ v (linear in the LLM features)
    unique_decay: np.ndarray  # prior scale of v per basis column (the signal lies along leading directions)
    noise: Callable[[np.random.Generator, int], np.ndarray]  # unit-variance noise (n, targets)
    effects: dict  # real-data sized population R² of the controls and of the unique LLM signal


def _spectrum(rng: np.random.Generator, n: int, p: int, decay: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Latent rows Z (n, p) and the features Z S (power-law column variances, random rotation, unit mean)."""
    s = np.arange(1, p + 1, dtype=float) ** (-decay / 2)
    s /= np.sqrt((s**2).mean())
    rotation = np.linalg.qr(rng.standard_normal((p, p)))[0]
    Z = rng.standard_normal((n, p))
    return Z, Z @ (rotation * s).T


def _centred(a: np.ndarray) -> np.ndarray:
    return a - a.mean(0)


def fedorenko(rng: np.random.Generator, p: int = 256) -> Design:
    """52 sentences × 8 words, word-position controls, sentence-intercept noise."""
    n_sent, size = 52, 8
    pos = np.tile(np.arange(size), n_sent)
    groups = np.repeat(np.arange(n_sent), size)
    C = np.eye(size)[pos]
    Z, E = _spectrum(rng, len(pos), p)
    llm = C @ rng.standard_normal((size, p)) * 0.7 + E

    def noise(g: np.random.Generator, t: int) -> np.ndarray:
        return np.sqrt(0.2) * g.standard_normal((n_sent, t))[groups] + np.sqrt(0.8) * g.standard_normal((len(pos), t))

    return Design("fedorenko", False, groups, groups, GroupedKFold(5), GroupedKFold(5), C, np.zeros(size, bool),
                  llm, _centred(C), _centred(Z), np.arange(1, p + 1) ** -2.0, noise,
                  {"controls": 0.065, "unique": 0.02})


def pereira(rng: np.random.Generator, p: int = 256, topics: int = 32) -> Design:
    """627 sentences in 168 passages of 3-4, sentence length + position controls, passage-intercept noise."""
    sizes = rng.permutation(np.r_[np.full(45, 3), np.full(123, 4)])
    groups = np.repeat(np.arange(len(sizes)), sizes)
    position = np.concatenate([np.arange(s) for s in sizes])
    n = len(groups)
    length = rng.poisson(12, n).astype(float)
    C = np.column_stack([length, np.eye(4)[position]])
    Zs, Es = _spectrum(rng, n, p)
    Zt = rng.standard_normal((len(sizes), topics))[groups]
    llm = (Es + Zt @ rng.standard_normal((topics, p)) / np.sqrt(topics)
           + np.outer((length - 12) / np.sqrt(12), rng.standard_normal(p)) * 0.5
           + np.eye(4)[position] @ rng.standard_normal((4, p)) * 0.5)
    basis = _centred(np.column_stack([Zt, Zs]))
    decay = np.r_[np.ones(topics), np.arange(1, p + 1) ** -2.0]

    def noise(g: np.random.Generator, t: int) -> np.ndarray:
        return np.sqrt(0.3) * g.standard_normal((len(sizes), t))[groups] + np.sqrt(0.7) * g.standard_normal((n, t))

    z = _centred(C)
    z[:, 0] /= z[:, 0].std()
    return Design("pereira", False, groups, groups, GroupedKFold(5), GroupedKFold(5), C, np.r_[True, np.zeros(4, bool)],
                  llm, z, basis, decay, noise, {"controls": 0.2, "unique": 0.07})


def _ar1(rng: np.random.Generator, n: int, k: int, rho: float) -> np.ndarray:
    """A stationary AR(1) series (n, k) with unit variance."""
    x = np.empty((n, k))
    x[0] = rng.standard_normal(k)
    innovations = rng.standard_normal((n, k)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + innovations[t]
    return x


def _delayed(x: np.ndarray, lead: int = 4) -> np.ndarray:
    """[x(t − d) for d in 1..4] side by side, from a series that starts ``lead`` scans early."""
    return np.hstack([x[lead - d : len(x) - d] for d in (1, 2, 3, 4)])


def brennan(rng: np.random.Generator, p: int = 64, rho: float = 0.6, rho_noise: float = 0.4) -> Design:
    """362 scans of one run, delayed word rate / sound power controls and LLM series, AR(1) noise."""
    n, lead = 362, 4
    controls = _ar1(rng, n + lead, 2, rho)
    latent = _ar1(rng, n + lead, p, rho)
    llm = _delayed(latent + controls @ rng.standard_normal((2, p)) * 0.7)
    C = _delayed(controls)
    hrf = np.kron(HRF_WEIGHTS[:, None], np.eye(2))  # (8, 2): an HRF-shaped response to each control
    unique = _delayed(latent) @ np.kron(HRF_WEIGHTS[:, None], np.eye(p))

    def noise(g: np.random.Generator, t: int) -> np.ndarray:
        return _ar1(g, n, t, rho_noise)

    return Design("brennan", True, np.zeros(n, int), contiguous_blocks(n, 20), ContiguousBlockSplit(5, gap=5),
                  ContiguousBlockSplit(5, gap=5), C, np.ones(8, bool), llm, _centred(C @ hrf), _centred(unique),
                  np.arange(1, p + 1) ** -2.0, noise, {"controls": 0.03, "unique": 0.12})


DESIGNS = {"fedorenko": fedorenko, "pereira": pereira, "brennan": brennan}
DESIGN_TIMESERIES = {"fedorenko": False, "pereira": False, "brennan": True}
#: The cells: single feature sets (``p_r``, ``p_r2``) and the unique-variance test (``p_unique``).
TESTS = ("single", "unique")


def _scaled(signal: np.ndarray, r2: float) -> np.ndarray:
    """Columns scaled to sample variance ``r2`` (zero columns stay zero)."""
    sd = signal.std(0)
    return signal * np.where(sd > 0, np.sqrt(r2) / np.maximum(sd, 1e-300), 0.0)


def responses(design: Design, rng: np.random.Generator, n_targets: int, controls: float = 0.0,
              unique: float = 0.0, shared: int | None = None) -> np.ndarray:
    """Targets = controls signal (R² ``controls``) + LLM-specific signal (R² ``unique``) + noise. ``shared``: the
    seed of one signal for every target (the same expected out-of-sample R² for all: a boundary null)."""
    t = 1 if shared is not None else n_targets
    weights = rng if shared is None else np.random.default_rng(shared)
    signal = np.zeros((len(design.groups), n_targets))
    a = weights.standard_normal((design.control_basis.shape[1], t))
    v = weights.standard_normal((design.unique_basis.shape[1], t)) * np.sqrt(design.unique_decay)[:, None]
    if controls:
        signal += _scaled(design.control_basis @ a, controls)
    if unique:
        signal += _scaled(design.unique_basis @ v, unique)
    return signal + design.noise(rng, n_targets) * np.sqrt(1 - controls - unique)


#: targets per simulated subject: a subject's ROIs share one LLM penalty on time series, as in a study
#: (``alpha_choice: shared_one_se``, Brennan2016's six ROIs)
TARGETS_PER_SUBJECT = 6


def joint_kind(design: Design) -> str:
    """The study's joint estimator for a data kind (``estimator.joint: auto``, ``study.estimators.joint_kind``)."""
    return DEFAULT_JOINT_TIMESERIES if design.timeseries else DEFAULT_JOINT


def alpha_choice(design: Design) -> str:
    """How a study reads the LLM alone's penalty off its inner-CV scores by default (``estimator.alpha_choice: auto``,
    ``lmbrain.study.estimators.alpha_choice``): one per subject by the one-standard-error rule on time series, each
    target's best mean otherwise."""
    return "shared_one_se" if design.timeseries else "best"


def fit(design: Design, which: str, Y: np.ndarray):
    """Out-of-fold predictions of the controls, the LLM or the joint model (``DEFAULT_JOINT``), as a study fits them
    (penalties by :func:`alpha_choice`; on time series every :data:`TARGETS_PER_SUBJECT` targets are one subject)."""
    choice = alpha_choice(design)
    if which == "controls":
        # the controls keep the best inner-CV mean, as in a study (alpha_choice applies to the LLM's ridges)
        est = RidgeCV(alphas=ALPHAS, cv=design.inner, standardize=design.controls_std)
        X = design.controls
    elif which == "llm":
        X = design.llm
        subjects = np.arange(Y.shape[1]) // TARGETS_PER_SUBJECT
        ridge = RidgeCV(alphas=ALPHAS, cv=design.inner, alpha_choice=choice)
        return cross_validate_select({"llm": X}, Y, design.groups, design.outer, ridge, target_groups=subjects), X
    else:
        q = design.llm.shape[1]
        X = np.hstack([design.llm, design.controls])
        est = make_joint_estimator(joint_kind(design), [slice(0, q), slice(q, X.shape[1])], ALPHAS, design.inner,
                                   standardize=np.r_[np.ones(q, bool), design.controls_std], alpha_choice=choice)
        if choice == "shared_one_se":  # as lmbrain.study.estimators.make_joint / pool_labels: one penalty per subject
            est.set_params(pool_groups=np.arange(Y.shape[1]) // TARGETS_PER_SUBJECT)
    return cross_validate(est, X, Y, design.groups, design.outer), X


def single_tests(design: Design, which: str, Y: np.ndarray, seed: int, n_refit: int, n_flips: int,
                 old: bool) -> dict[str, np.ndarray]:
    """p-values of one feature set: the new defaults (and the former refit null when ``old``)."""
    result, X = fit(design, which, Y)
    splits = list(design.outer.split(X, Y, design.groups))
    std = design.controls_std if which == "controls" else True
    out = {"r": result.r, "r2": result.r2}
    refit = permutation_test(X, Y, splits, result.alphas, resamples(design, len(Y), n_refit, seed), standardize=std,
                             blocks=design.blocks)
    out["p_r"], out["null_r_mean"], out["kappa"] = refit.p_r, refit.null_r_mean, refit.gain_inflation
    for key, inflation in (("p_r2", refit.gain_inflation), ("raw_p_r2", None)):
        out[key] = sign_flip_test(Y, result.predictions, result.baseline, design.blocks, result.folds, n_flips,
                                  seed=seed, inflation=inflation).p_r2
    if old:
        if design.timeseries:
            orders = circular_shifts(len(Y), n_refit, min_shift=10, seed=seed)
        else:
            orders = group_permutations(design.groups, n_refit, seed=seed)
        former = permutation_test(X, Y, splits, result.alphas, orders, standardize=std)
        out.update(old_p_r=former.p_r, old_p_r2=former.p_r2, old_null_r_mean=former.null_r_mean)
    return out


def resamples(design: Design, n: int, count: int, seed: int):
    """The refit null's resampled data sets: circular shifts (time series) or block sign flips."""
    if design.timeseries:
        return circular_shifts(n, count, min_shift=10, seed=seed)
    return block_sign_flips(design.blocks, count, seed=seed)


def unique_test(design: Design, Y: np.ndarray, seed: int, n_flips: int, inflate: bool = True) -> dict[str, np.ndarray]:
    """Unique LLM R² (joint − controls alone) and its paired block sign-flip p-value: plain (``raw_p_unique``),
    κ-widened (``kappa_p_unique``) and by the study's rule (``p_unique``: κ-widened for time series only).
    κ as ``lmbrain.study.rows.unique_inflation`` computes it: the ``DEFAULT_JOINT`` model as a linear smoother
    (``joint_smoother``, one feature matrix per fold) and the controls alone, both refitted at their chosen
    penalties on ``INFLATION_RESAMPLES`` of the refit null's resamples. ``inflate=False`` skips κ (boundary pilots)."""
    joint, _ = fit(design, "joint", Y)
    ctrl, _ = fit(design, "controls", Y)

    def flips(inflation: np.ndarray | None) -> np.ndarray:
        return paired_sign_flip_test(Y, joint.predictions, ctrl.predictions, ctrl.baseline, design.blocks, n_flips,
                                     seed=seed, tested=ctrl.folds >= 0, folds=ctrl.folds, inflation=inflation)

    raw = flips(None)
    out = {"unique": raw.delta_r2, "raw_p_unique": raw.p}
    if inflate:
        splits = list(design.outer.split(design.llm, Y, design.groups))
        folds = len(splits)
        full = joint_smoother(joint_kind(design), [design.llm] * folds, [design.controls] * folds, splits, joint,
                              design.controls_std)
        if full is None:
            raise SystemExit(f"the default joint estimator {joint_kind(design)!r} has no linear smoother: no κ")
        reduced = FoldSmoother.ridge(design.controls, splits, np.asarray(ctrl.alphas).reshape(folds, -1),
                                     design.controls_std)
        kappa = gain_inflation(Y, full, reduced, design.blocks, resamples(design, len(Y), INFLATION_RESAMPLES, seed))
        out["kappa"] = kappa
        out["kappa_p_unique"] = flips(kappa).p
    out["p_unique"] = out["kappa_p_unique"] if inflate and design.timeseries else raw.p  # the study's rule
    return out


def boundary(measure: Callable[[float], float], start: float, tol: float = 2e-4, steps: int = 8,
             cap: float = 0.5) -> float:
    """The effect size where ``measure`` (a mean out-of-sample R², increasing in the size; pilot runs on fixed
    noise draws) crosses 0: ``start`` doubled until the measure is positive, then regula falsi from 0. ``cap``
    (the largest size the targets allow) where the measure is still ≤ 0 there: no boundary below it."""
    low, f_low = 0.0, measure(0.0)
    if f_low >= 0:
        return 0.0  # no signal already breaks even: the boundary is at (or below) 0
    high, f_high = start, measure(start)
    while f_high <= 0:
        if high >= cap:
            return float(cap)
        low, f_low, high = high, f_high, min(2 * high, cap)
        f_high = measure(high)
    x = high
    for _ in range(steps):
        x = low - f_low * (high - low) / (f_high - f_low) if f_high > f_low else (low + high) / 2
        x = min(max(x, low), high)
        f = measure(x)
        if abs(f) < tol:
            break
        if f < 0:
            low, f_low = x, f
        else:
            high, f_high = x, f
    return float(x)


def rate(p: np.ndarray, design: np.ndarray) -> str:
    """Rejection rate at α with a 95 % interval whose standard error is clustered by design (targets of one
    design share its features, so they are not independent)."""
    ok = np.isfinite(p)
    reject, design = (p[ok] <= ALPHA).astype(float), design[ok]
    value = reject.mean()
    sums = np.array([(reject[design == d] - value).sum() for d in np.unique(design)])
    se = np.sqrt((sums**2).sum()) / len(reject)
    return f"{value:.3f} ± {1.96 * se:.3f}"


def run(name: str, width: int, n_targets: int, n_designs: int, seed: int, n_refit: int, n_flips: int, n_pilot: int,
        log: Callable[[str], None], tests: tuple[str, ...] = TESTS) -> list[tuple[str, str, str, dict]]:
    """Every cell of one data kind at one LLM width, each over ``n_designs`` feature draws: (feature set or test,
    scenario, per-target outputs with the design of every target). ``tests``: the single-set cells (``p_r``,
    ``p_r2``), the unique-variance cells (``p_unique``) or both; a skipped cell still uses up its draws' seeds, so
    the others are the same draws either way."""
    kind = list(DESIGNS).index(name)
    designs = [DESIGNS[name](np.random.default_rng([seed, kind, d]), width) for d in range(n_designs)]
    name = f"{name} ({width})"
    per = -(-n_targets // n_designs)
    eff = designs[0].effects
    cells: list[tuple[str, str, str, dict]] = []
    counter = iter(range(1, 10**6))

    def draw(d: int, n: int, pilot: bool = False, **kw: float | int | None) -> np.ndarray:
        rng = np.random.default_rng([seed, kind, d, 0 if pilot else next(counter)])
        return responses(designs[d], rng, n, **kw)

    def over(test: Callable[[int, np.ndarray], dict], sizes: Callable[[int], dict] | None = None,
             **kw: float | int | None) -> dict:
        """A test on every design (fresh draws), per-target outputs concatenated, with the design of each."""
        outs = [test(d, draw(d, per, **kw, **(sizes(d) if sizes else {}))) for d in range(n_designs)]
        merged = {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}
        merged["design"] = np.repeat(np.arange(n_designs), per)
        return merged

    def single(which: str, old: bool) -> Callable[[int, np.ndarray], dict]:
        return lambda d, Y: single_tests(designs[d], which, Y, seed, n_refit, n_flips, old)

    def unique(d: int, Y: np.ndarray) -> dict:
        return unique_test(designs[d], Y, seed, n_flips)

    def edge(d: int, statistic: Callable[[Design, np.ndarray], np.ndarray], key: str, **kw: float | int) -> float:
        """Design d's boundary: the size of its shared signal at which the pilot mean statistic is 0."""
        cap = min(0.5, 0.95 - sum(v for k, v in kw.items() if k in ("controls", "unique")))
        return boundary(lambda x: float(np.mean(statistic(designs[d], draw(d, n_pilot, True, **{key: x}, **kw)))),
                        0.01, cap=cap)

    def cell(which: str, scenario: str, reads: str, measure: Callable[[], dict]) -> None:
        """Measure a cell of the requested tests; skip any other, using up the seeds its draws would have used."""
        if ("unique" if which == "unique" else "single") in tests:
            cells.append((which, scenario, reads, measure()))
        else:
            for _ in range(n_designs):
                next(counter)

    single_cells, unique_cells = "single" in tests, "unique" in tests
    # no signal at all: both single-set tests, both feature sets (former null alongside)
    for which in ("controls", "llm"):
        cell(which, "noise", "FPR", lambda w=which: over(single(w, True)))
    if single_cells:
        log(f"{name}: noise done")
    # real-data sized controls effect without unique LLM signal: power of both sets, FPR of the unique test
    c = eff["controls"]
    for which in ("controls", "llm"):
        cell(which, f"controls R² {c:g}", "power", lambda w=which: over(single(w, True), controls=c))
    cell("unique", f"controls R² {c:g}, no unique", "FPR", lambda: over(unique, controls=c))
    log(f"{name}: effects done")
    # boundary of the R² null: per design, one shared signal whose expected out-of-sample R² is 0
    for which, key in (("controls", "controls"), ("llm", "unique")):
        if not single_cells:
            cell(which, "", "", dict)
            continue
        shared = seed + (1 if which == "controls" else 2)
        sizes = [edge(d, lambda design, Y, w=which: fit(design, w, Y)[0].r2, key, shared=shared)
                 for d in range(n_designs)]
        cell(which, f"boundary: shared {key} R² {np.mean(sizes):.4f} (mean over draws)", "`p_r2`: FPR; `p_r`: power",
             lambda w=which, k=key, v=sizes, sh=shared: over(single(w, False), lambda i, k=k, v=v: {k: v[i]},
                                                             shared=sh))
    if single_cells:
        log(f"{name}: boundaries done")
    if not unique_cells:
        return cells
    # unique LLM variance: its boundary, and a real-data sized effect
    sizes = [edge(d, lambda design, Y: unique_test(design, Y, seed, 10, inflate=False)["unique"], "unique", controls=c,
                  shared=seed + 3) for d in range(n_designs)]
    log(f"{name}: unique boundary found")
    cell("unique", f"controls R² {c:g}, boundary: shared unique R² {np.mean(sizes):.4f} (mean over draws)", "FPR",
         lambda: over(unique, lambda d: {"unique": sizes[d]}, controls=c, shared=seed + 3))
    u = eff["unique"]
    cell("unique", f"controls R² {c:g}, unique R² {u:g}", "power", lambda: over(unique, controls=c, unique=u))
    log(f"{name}: unique done")
    return cells


def kappa(out: dict) -> str:
    """Median two-role inflation κ (floored at 1 where the tests use it) over a cell's targets."""
    return f"{np.nanmedian(np.maximum(out['kappa'], 1.0)):.2f}"


Results = dict[tuple[str, int], list[tuple[str, str, str, dict]]]


def table(results: Results) -> str:
    """Markdown table of the single feature sets: per data kind, LLM width, feature set and scenario, the mean
    measured score and the rejection rates at α of the new tests and of the former null."""
    lines = ["| data | LLM width | feature set | scenario | rates are | mean measured | `p_r` (r > 0) "
             "| `p_r2` (R² > 0) | flips without κ | κ median | former `p_r` | former `p_r2` "
             "| null mean r: new / former |",
             "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (name, width), cells in results.items():
        for which, scenario, reads, out in cells:
            if which == "unique":
                continue
            d = out["design"]
            old = "old_p_r" in out
            nulls = f"{np.mean(out['null_r_mean']):+.3f}" + (f" / {np.mean(out['old_null_r_mean']):+.3f}" if old
                                                              else "")
            scores = f"R² {np.mean(out['r2']):+.4f}, r {np.nanmean(out['r']):+.3f}"
            lines.append(
                f"| {name} | {columns(name, width)} | {which} | {scenario} | {reads} | {scores} | "
                f"{rate(out['p_r'], d)} | "
                f"{rate(out['p_r2'], d)} | {rate(out['raw_p_r2'], d)} | {kappa(out)} | "
                f"{rate(out['old_p_r'], d) if old else ''} | "
                f"{rate(out['old_p_r2'], d) if old else ''} | {nulls} |")
    return "\n".join(lines)


def unique_table(results: Results) -> str:
    """Markdown table of the unique-variance test: per data kind, LLM width and scenario, the mean unique R² and
    the rejection rates at α of the study's rule, of the plain flips and of the κ-widened flips."""
    lines = ["| data | LLM width | scenario | rates are | mean unique R² | `p_unique` (study's rule) | plain flips "
             "| κ-widened flips | κ median |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|"]
    for (name, width), cells in results.items():
        rule = "κ-widened" if DESIGN_TIMESERIES[name] else "plain"
        for which, scenario, reads, out in cells:
            if which != "unique":
                continue
            d = out["design"]
            lines.append(f"| {name} | {columns(name, width)} | {scenario} | {reads} | {np.mean(out['unique']):+.4f} | "
                         f"{rate(out['p_unique'], d)} ({rule}) | {rate(out['raw_p_unique'], d)} | "
                         f"{rate(out['kappa_p_unique'], d)} | {kappa(out)} |")
    return "\n".join(lines)


def columns(name: str, width: int) -> str:
    """The LLM band's width as fitted: the model's width (× 4 delays for time series, one penalty per subject)."""
    return f"{width} × 4, one α per subject" if DESIGN_TIMESERIES[name] else f"{width}"


def write_docs(text: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace a measured block of docs/statistics.md (between the markers) with ``text``."""
    write_block(DOCS, begin, end, text)


def _log(text: str) -> None:
    print(f"  [{time.process_time():6.0f} CPU s, pid {os.getpid()}] {text}", flush=True)


def _run(job: tuple, tests: tuple[str, ...]) -> tuple[list, float]:
    """:func:`run` of ``job`` (its positional arguments before ``log``) in a worker: its cells and the CPU seconds
    they took."""
    start = time.process_time()
    cells = run(*job, log=_log, tests=tests)
    return cells, time.process_time() - start


def main() -> None:
    """Run the calibration, print the Markdown tables, optionally write them to the docs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 targets per cell over 4 draws, 99 refits")
    parser.add_argument("--targets", type=int, default=None, help="targets per cell (full: 1000)")
    parser.add_argument("--draws", type=int, default=None, help="feature draws per cell, the targets split among them "
                        "(full: 10)")
    parser.add_argument("--pilot", type=int, default=None, help="targets of the pilot runs that find a boundary "
                        "(full: 300)")
    parser.add_argument("--refits", type=int, default=None, help="refit-null draws per target (full: 199)")
    parser.add_argument("--flips", type=int, default=1000, help="sign flips per target")
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    parser.add_argument("--widths", nargs="+", type=int, default=list(WIDTHS),
                        help="LLM widths: features per word (event data) or per scan before its 4 delays (time "
                        f"series); default the shipped models' {' and '.join(map(str, WIDTHS))}")
    parser.add_argument("--tests", nargs="+", default=list(TESTS), choices=list(TESTS),
                        help="cells to measure: single feature sets (p_r, p_r2), the unique-variance test (p_unique)")
    parser.add_argument("--jobs", type=int, default=1, help="(data kind, width) pairs run in parallel processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true", help="write the measured tables into docs/statistics.md "
                        "(each test family into its own block)")
    args = parser.parse_args()
    n_targets = args.targets or (200 if args.quick else 1000)
    n_refit = args.refits or (99 if args.quick else 199)
    draws = args.draws or (4 if args.quick else 10)
    pilot = args.pilot or (150 if args.quick else 300)
    tests = tuple(t for t in TESTS if t in args.tests)
    keys = [(name, width) for name in args.designs for width in args.widths]
    jobs = [(name, width, n_targets, draws, args.seed, n_refit, args.flips, pilot) for name, width in keys]
    done: dict[tuple[str, int], tuple[list, float]] = {}

    def finished(key: tuple[str, int], out: tuple[list, float]) -> None:
        """Keep a pair's cells and print its rows at once (a later failure loses nothing measured)."""
        done[key] = out
        for family, render in (("single", table), ("unique", unique_table)):
            if family in tests:
                print("\n".join(render({key: out[0]}).splitlines()[2:]), flush=True)

    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            futures = {pool.submit(_run, job, tests): key for key, job in zip(keys, jobs, strict=True)}
            for future in as_completed(futures):
                finished(futures[future], future.result())
    else:
        for key, job in zip(keys, jobs, strict=True):
            finished(key, _run(job, tests))
    results = {key: done[key][0] for key in keys}
    total = sum(cpu for _, cpu in done.values())
    command = ("python benchmarks/calibrate_nulls.py" + (" --quick" if args.quick else "")
               + f" --widths {' '.join(map(str, args.widths))}" + f" --tests {' '.join(tests)}"
               + (f" --designs {' '.join(args.designs)}" if args.designs != list(DESIGNS) else ""))
    footer = (f"\n\nMeasured with `{command}` (seed {args.seed}; {n_targets} targets per cell over {draws} feature "
              f"draws; joint model `{DEFAULT_JOINT}` (event data) / `{DEFAULT_JOINT_TIMESERIES}` with one LLM "
              f"penalty per subject of {TARGETS_PER_SUBJECT} targets (time series); {{what}}; rates at α = {ALPHA} "
              "± 1.96 standard errors "
              f"clustered by feature draw); total {total:.0f} CPU s.")
    blocks = []
    if "single" in tests:
        what = f"{n_refit} refits per target for `p_r` and the former null, {args.flips} sign flips for `p_r2`"
        blocks.append((table(results) + footer.format(what=what), BEGIN, END))
    if "unique" in tests:
        what = (f"{args.flips} sign flips for `p_unique`, κ from {INFLATION_RESAMPLES} refits of the joint model and "
                "the controls alone")
        blocks.append((unique_table(results) + footer.format(what=what), UNIQUE_BEGIN, UNIQUE_END))
    for text, begin, end in blocks:
        print(text + "\n")
        if args.write_docs:
            write_docs(text, begin, end)
            print(f"written to {DOCS} ({begin})")


if __name__ == "__main__":
    main()
