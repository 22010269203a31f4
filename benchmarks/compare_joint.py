"""Joint LLM + controls estimators compared on simulations sized like the shipped datasets.

A control analysis reads unique LLM R² = R²(joint) − R²(controls) off out-of-sample R² (outer grouped CV,
hyperparameters by inner grouped CV on the training fold). This script measures, for every estimator of
``lmbrain.encoding.joint.JOINT_KINDS``, the bias and spread of that estimate when the LLM carries **no**
unique signal (it is correlated with the controls and predicts the targets through them only), the median
shortfall ``max(R²(LLM), R²(controls)) − R²(joint)``, and the recovery of a **known** unique signal (the
truth is the population R² difference, exact by construction). Targets of all scenarios share the feature
draws of a replication; every estimator here is fitted per target, so they do not interact.

* ``fedorenko``: 416 samples = 52 sentences × 8 words (grouped 5-fold outer and inner CV); controls =
  one-hot word position (8 columns, centred only); LLM = 576 features = a word-position embedding + LLM-
  specific variation with a power-law spectrum (z-scored).
* ``brennan``: 362 scans in 10 contiguous runs (contiguous 5-fold outer and inner CV, gap 5 scans); controls =
  2 smooth regressors (word rate, sound power) × 4 delays (8 columns); LLM = 576 × 4 delays = 2304 features,
  the base features partly driven by the controls; AR(1) noise.

Run ``python benchmarks/compare_joint.py`` (full: 5 replications × 1000 targets, ~4 min of CPU on one
thread) or ``--quick``; ``--write-docs`` replaces the measured block of docs/statistics.md ("Joint model:
which estimator").
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _docs import write_block  # benchmarks/ is on sys.path when a script runs

from lmbrain.encoding import ContiguousBlockSplit, GroupedKFold, RidgeCV, cross_validate
from lmbrain.encoding.estimators import DEFAULT_ALPHAS
from lmbrain.encoding.joint import DEFAULT_JOINT, JOINT_KINDS, extended_alphas, make_joint_estimator

DOCS = Path(__file__).resolve().parents[1] / "docs" / "statistics.md"
BEGIN, END = "<!-- compare_joint: begin -->", "<!-- compare_joint: end -->"
#: Unique LLM R² (population) of the scenarios: none, small, medium, large.
UNIQUE = (0.0, 0.005, 0.02, 0.05)
#: Response of a target to a regressor at delays 1..4 scans (an HRF-like finite impulse response).
HRF_WEIGHTS = np.array([0.5, 1.0, 0.8, 0.4])
#: Shortfall tolerance of the audit: a joint model "wins" when R²(joint) >= max(parts) - 0.002.
TOLERANCE = 0.002


@dataclass
class Problem:
    """One replication: features, targets, CV and the truth of every target."""

    X: np.ndarray
    Y: np.ndarray
    groups: np.ndarray
    slices: list[slice]
    standardize: np.ndarray
    outer: object
    inner: object
    unique: np.ndarray  # population unique LLM R² per target
    controls: np.ndarray  # population R² of the controls per target
    specific: np.ndarray  # the LLM-specific component of the LLM features (where the unique signal lives)
    control_signal: np.ndarray  # the controls' true contribution to every target (n_samples, n_targets)
    meta: dict = field(default_factory=dict)


def _spectrum_features(rng: np.random.Generator, n: int, p: int, decay: float) -> tuple[np.ndarray, np.ndarray]:
    """Latent Gaussian rows Z (n, p) and the map S = R diag(s) (power-law s² ∝ k^-decay, random rotation R):
    the features ``Z @ S.T`` have covariance ``S Sᵀ`` and unit mean variance per column."""
    s = np.arange(1, p + 1, dtype=float) ** (-decay / 2)
    s /= np.sqrt((s**2).mean())
    R = np.linalg.qr(rng.standard_normal((p, p)))[0]
    return rng.standard_normal((n, p)), R * s


def _latent_weights(rng: np.random.Generator, p: int, n_targets: int, decay: float, r2: np.ndarray) -> np.ndarray:
    """Unique-signal weights v on the latent coordinates, v_k ~ N(0, k^-decay), scaled so Var(Z v) = |v|² = r2:
    the signal lies mostly along the features' leading directions (as an LLM's would)."""
    v = rng.standard_normal((p, n_targets)) * np.arange(1, p + 1)[:, None] ** (-decay / 2)
    return v * _scale_to((v**2).sum(0), r2)


def _scale_to(signal_var: np.ndarray, r2: np.ndarray) -> np.ndarray:
    """Factors that bring each target's population signal variance to ``r2`` (Var(Y) = 1)."""
    return np.sqrt(np.where(signal_var > 0, r2 / np.maximum(signal_var, 1e-300), 0.0))


def _targets(rng: np.random.Generator, n_targets: int, r2_controls: tuple[float, float]) -> tuple[np.ndarray, ...]:
    """Scenario of each target (equal thirds of UNIQUE), its unique R² and its controls' R²."""
    scenario = np.arange(n_targets) % len(UNIQUE)
    unique = np.asarray(UNIQUE)[scenario]
    controls = rng.uniform(*r2_controls, n_targets)
    return scenario, unique, controls


def fedorenko_like(rng: np.random.Generator, n_targets: int, p: int = 576, position: float = 0.7,
                   decay: float = 1.5, signal_decay: float = 4.0,
                   r2_controls: tuple[float, float] = (0.05, 0.08)) -> Problem:
    """Sentences of 8 words: one-hot position controls, position-embedding + power-law LLM features."""
    n_groups, size = 52, 8
    n = n_groups * size
    pos = np.tile(np.arange(size), n_groups)
    groups = np.repeat(np.arange(n_groups), size)
    C = np.eye(size)[pos]
    Z, S = _spectrum_features(rng, n, p, decay)
    E = Z @ S.T
    M = rng.standard_normal((size, p)) * position
    llm = C @ M + E
    scenario, unique, r2c = _targets(rng, n_targets, r2_controls)
    a = rng.standard_normal((size, n_targets))
    a -= a.mean(0)  # positions are equally frequent: population variance of C a is mean(a²)
    a *= _scale_to((a**2).mean(0), r2c)
    v = _latent_weights(rng, p, n_targets, signal_decay, unique)
    noise = rng.standard_normal((n, n_targets)) * np.sqrt(1 - r2c - unique)
    Y = C @ a + Z @ v + noise  # Z v = E (R diag(1/s) v): linear in the LLM features, independent of the controls
    X = np.hstack([llm, C])
    mask = np.r_[np.ones(p, bool), np.zeros(size, bool)]
    return Problem(X, Y, groups, [slice(0, p), slice(p, p + size)], mask, GroupedKFold(5), GroupedKFold(5),
                   unique, r2c, E, C @ a, {"scenario": scenario})


def _ar1_runs(rng: np.random.Generator, lengths: list[int], k: int, rho: float, lead: int) -> list[np.ndarray]:
    """Per run, a stationary AR(1) series (length + lead, k) with unit variance."""
    out = []
    for length in lengths:
        x = np.empty((length + lead, k))
        x[0] = rng.standard_normal(k)
        innov = rng.standard_normal((length + lead, k)) * np.sqrt(1 - rho**2)
        for t in range(1, length + lead):
            x[t] = rho * x[t - 1] + innov[t]
        out.append(x)
    return out


def _delayed(runs: list[np.ndarray], delays: tuple[int, ...], lead: int) -> np.ndarray:
    """[x(t - d) for d in delays] side by side, from series that start ``lead`` scans early."""
    return np.vstack([np.hstack([r[lead - d : len(r) - d] for d in delays]) for r in runs])


def _delayed_var(coef: np.ndarray, cov: np.ndarray, rho: float, delays: tuple[int, ...]) -> np.ndarray:
    """Population variance of ``delayed(x) @ coef`` for AR(1) x with lag-0 covariance ``cov``: one per target."""
    k = cov.shape[0]
    blocks = [coef[j * k : (j + 1) * k] for j in range(len(delays))]
    total = np.zeros(coef.shape[1])
    for i, di in enumerate(delays):
        for j, dj in enumerate(delays):
            total += rho ** abs(di - dj) * np.einsum("pt,pq,qt->t", blocks[i], cov, blocks[j])
    return total


def brennan_like(rng: np.random.Generator, n_targets: int, p: int = 576, delays: tuple[int, ...] = (1, 2, 3, 4),
                 coupling: float = 0.7, decay: float = 1.5, signal_decay: float = 4.0, rho: float = 0.6,
                 rho_noise: float = 0.3, r2_controls: tuple[float, float] = (0.02, 0.06)) -> Problem:
    """Naturalistic fMRI: 362 scans in 10 runs, delayed smooth controls and LLM features, AR(1) noise."""
    n, n_runs, lead = 362, 10, max(delays)
    lengths = [len(b) for b in np.array_split(np.arange(n), n_runs)]
    groups = np.repeat(np.arange(n_runs), lengths)
    ctrl_runs = _ar1_runs(rng, lengths, 2, rho, lead)
    Z_runs = _ar1_runs(rng, lengths, p, rho, lead)
    _, S = _spectrum_features(rng, 1, p, decay)
    M = rng.standard_normal((2, p)) * coupling
    E_runs = [z @ S.T for z in Z_runs]
    llm_runs = [c @ M + e for c, e in zip(ctrl_runs, E_runs, strict=True)]
    C = _delayed(ctrl_runs, delays, lead)
    latent = _delayed(Z_runs, delays, lead)
    llm = _delayed(llm_runs, delays, lead)
    scenario, unique, r2c = _targets(rng, n_targets, r2_controls)
    a = np.kron(HRF_WEIGHTS[:, None], rng.standard_normal((2, n_targets)))
    a *= _scale_to(_delayed_var(a, np.eye(2), rho, delays), r2c)
    v = np.kron(HRF_WEIGHTS[:, None], _latent_weights(rng, p, n_targets, signal_decay, np.ones(n_targets)))
    v *= _scale_to(_delayed_var(v, np.eye(p), rho, delays), unique)
    noise = np.vstack(_ar1_runs(rng, lengths, n_targets, rho_noise, 0)) * np.sqrt(1 - r2c - unique)
    Y = C @ a + latent @ v + noise  # delayed latent LLM variation: linear in the LLM features
    X = np.hstack([llm, C])
    mask = np.ones(X.shape[1], bool)  # continuous regressors: all z-scored
    cv = ContiguousBlockSplit(n_splits=5, gap=5)
    q = llm.shape[1]
    return Problem(X, Y, groups, [slice(0, q), slice(q, q + C.shape[1])], mask, cv, cv, unique, r2c,
                   _delayed(E_runs, delays, lead), C @ a, {"scenario": scenario})


SIMULATIONS = {"fedorenko": fedorenko_like, "brennan": brennan_like}


#: a suffix of ``--kinds``: the kind with the time-series rule of a study (``alpha_choice: shared_one_se``, one LLM
#: penalty per subject, ``pool_groups`` = subjects) on subjects of :data:`SUBJECT_SIZE` targets of one scenario
SHARED = "@shared"
SUBJECT_SIZE = 6


def subjects_of(problem: Problem) -> np.ndarray:
    """A subject label per target: consecutive runs of :data:`SUBJECT_SIZE` targets of the same scenario (a subject
    whose ROIs carry the same unique R², like an implanted copy of the real-data sensitivity analysis)."""
    scenario = np.asarray(problem.meta["scenario"])
    rank = np.zeros(len(scenario), dtype=int)
    for s in np.unique(scenario):
        rank[scenario == s] = np.arange((scenario == s).sum())
    return scenario * len(scenario) + rank // SUBJECT_SIZE


def _pools(kind: str) -> bool:
    """Whether a joint kind takes ``pool_groups`` (its penalty choices can be kept within subjects)."""
    return "pool_groups" in make_joint_estimator(kind, [slice(0, 1), slice(1, 2)]).get_params()


def estimators(problem: Problem, kinds: tuple[str, ...]) -> dict[str, tuple[object, np.ndarray]]:
    """Name -> (estimator, feature matrix): the LLM alone, the controls alone and every joint kind."""
    llm, ctrl = problem.slices
    out = {
        "llm": (RidgeCV(cv=problem.inner, standardize=problem.standardize[llm]), problem.X[:, llm]),
        "controls": (RidgeCV(cv=problem.inner, standardize=problem.standardize[ctrl]), problem.X[:, ctrl]),
    }
    for label in kinds:
        kind, shared, _ = label.partition(SHARED)
        est = make_joint_estimator(kind, problem.slices, cv=problem.inner, standardize=problem.standardize)
        if shared:
            est.set_params(alpha_choice="shared_one_se", pool_groups=subjects_of(problem))
        out[label] = (est, problem.X)
    return out


def learnable_limit(problem: Problem, controls_baseline: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """The oracle's unique R² per target: ridge on the LLM-specific component alone (the same samples and outer CV),
    fitted to the responses minus the controls' true contribution; its out-of-fold gain over those residuals'
    training means, in units of the responses' variance around their own training means.

    Returns (gains per target at every penalty of the extended grid (n_alphas, n_targets), the same with the penalty
    chosen per target by inner CV, CPU seconds per fit). The learnable limit of a scenario is the grid's best common
    penalty (:func:`limit_of`): what ridge can at best recover from these training samples when it knows where the
    signal lives and how much to shrink (one penalty for a whole scenario overfits nothing); the inner-CV oracle
    shows what choosing the penalty per target costs. The population value is the truth column."""
    residual = problem.Y - problem.control_signal
    grid = extended_alphas(DEFAULT_ALPHAS)
    gains = []
    start = time.process_time()
    for alphas in [[a] for a in grid] + [grid]:
        ridge = RidgeCV(alphas=alphas, cv=problem.inner, standardize=True)
        result = cross_validate(ridge, problem.specific, residual, problem.groups, problem.outer)
        tested = result.folds >= 0
        total = ((problem.Y[tested] - controls_baseline[tested]) ** 2).sum(0)
        before = ((residual[tested] - result.baseline[tested]) ** 2).sum(0)
        after = ((residual[tested] - result.predictions[tested]) ** 2).sum(0)
        gains.append((before - after) / total)
    seconds = (time.process_time() - start) / result.n_folds / (len(grid) + 1)
    return np.array(gains[:-1]), gains[-1], seconds


def limit_of(gains: np.ndarray, rows: np.ndarray) -> float:
    """The learnable limit of some targets: their mean gain at the best common penalty (gains (n_alphas, targets))."""
    return float(gains[:, rows].mean(1).max())


def run(name: str, reps: int, n_targets: int, kinds: tuple[str, ...], seed: int) -> dict:
    """Outer-CV R² of every estimator and the learnable limit on ``reps`` replications; CPU seconds per fit."""
    r2: dict[str, list[np.ndarray]] = {}
    seconds: dict[str, float] = {}
    unique, controls, scenario, limit = [], [], [], []
    for rep in range(reps):
        problem = SIMULATIONS[name](np.random.default_rng([seed, rep]), n_targets)
        unique.append(problem.unique)
        controls.append(problem.controls)
        scenario.append(problem.meta["scenario"])
        for label, (est, X) in estimators(problem, kinds).items():
            start = time.process_time()
            result = cross_validate(est, X, problem.Y, problem.groups, problem.outer)
            seconds[label] = seconds.get(label, 0.0) + (time.process_time() - start) / result.n_folds
            r2.setdefault(label, []).append(result.r2)
            if label == "controls":
                baseline = result.baseline
        gains, oracle, cost = learnable_limit(problem, baseline)
        limit.append(gains)
        r2.setdefault("oracle_cv", []).append(oracle)
        seconds["oracle_cv"] = seconds.get("oracle_cv", 0.0) + cost
        print(f"  {name} replication {rep + 1}/{reps} done", flush=True)
    return {"r2": {k: np.concatenate(v) for k, v in r2.items()}, "seconds": {k: v / reps for k, v in seconds.items()},
            "unique": np.concatenate(unique), "controls": np.concatenate(controls),
            "scenario": np.concatenate(scenario), "limit": np.concatenate(limit, axis=1), "n_targets": n_targets}


def table(name: str, out: dict, kinds: tuple[str, ...]) -> str:
    """Markdown table of one simulation: bias, spread, shortfall, recovery (of the truth and of the learnable
    limit), time per fit."""
    r2, scen = out["r2"], out["scenario"]
    null = scen == 0
    n_null = int(null.sum())
    llm, ctrl = r2["llm"], r2["controls"]
    limits = [limit_of(out["limit"], scen == s) for s in range(1, len(UNIQUE))]
    lines = [
        f"**{name}** ({len(scen)} targets, {n_null} per scenario; measured R² of the controls alone "
        f"{ctrl[null].mean():.4f}, of the LLM alone {llm[null].mean():.4f} without unique signal; population "
        f"R² of the controls {out['controls'].mean():.3f})",
        "",
        "| joint estimator | no unique: mean unique ± SE | SD | median shortfall | joint ≥ best part − 0.002 "
        + "".join(f"| unique {u:g}: mean (÷ truth, ÷ limit) " for u in UNIQUE[1:])
        + "| CPU s / fit |",
        "|---|---:|---:|---:|---:|" + "---:|" * (len(UNIQUE) - 1) + "---:|",
    ]
    best = [limit_of(out["limit"], scen == s) for s in range(len(UNIQUE))]
    cells = [f"{best[0]:+.4f}", "", "", ""] + [f"{v:+.4f} ({v / t:.2f}, 1)" for v, t in zip(best[1:], UNIQUE[1:],
                                                                                           strict=True)] + [""]
    lines.append("| *learnable limit: oracle features, best common penalty* | " + " | ".join(cells) + " |")
    oracle = out["r2"]["oracle_cv"]
    cells = [f"{oracle[null].mean():+.4f} ± {oracle[null].std(ddof=1) / np.sqrt(n_null):.4f}",
             f"{oracle[null].std(ddof=1):.4f}", "", ""]
    for s, truth in enumerate(UNIQUE[1:], start=1):
        est = oracle[scen == s].mean()
        cells.append(f"{est:+.4f} ({est / truth:.2f}, {est / limits[s - 1]:.2f})")
    cells.append(f"{out['seconds']['oracle_cv']:.2f}")
    lines.append("| *oracle features, penalty by inner CV* | " + " | ".join(cells) + " |")
    for kind in kinds:
        u = r2[kind] - ctrl
        shortfall = np.maximum(llm, ctrl) - r2[kind]
        cells = [
            f"{u[null].mean():+.4f} ± {u[null].std(ddof=1) / np.sqrt(n_null):.4f}",
            f"{u[null].std(ddof=1):.4f}",
            f"{np.median(shortfall[null]):+.4f}",
            f"{(shortfall[null] <= TOLERANCE).mean():.0%}",
        ]
        for s, truth in enumerate(UNIQUE[1:], start=1):
            est = u[scen == s].mean()
            cells.append(f"{est:+.4f} ({est / truth:.2f}, {est / limits[s - 1]:.2f})")
        cells.append(f"{out['seconds'][kind]:.2f}")
        star = " (default)" if kind == DEFAULT_JOINT else ""
        lines.append(f"| `{kind}`{star} | " + " | ".join(cells) + " |")
    empty = " |" * (4 + len(UNIQUE) - 1)
    lines.append(f"| *LLM alone / controls alone* |{empty} {out['seconds']['llm']:.2f} / "
                 f"{out['seconds']['controls']:.2f} |")
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replace the measured block of docs/statistics.md (between the markers) with ``text``."""
    write_block(DOCS, BEGIN, END, text)


def main() -> None:
    """Run the simulations, print the Markdown tables, optionally write them to the docs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 replication of 200 targets per simulation")
    parser.add_argument("--reps", type=int, default=None, help="replications per simulation (full: 5)")
    parser.add_argument("--targets", type=int, default=None, help="targets per replication (full: 1000)")
    parser.add_argument("--sims", nargs="+", default=list(SIMULATIONS), choices=list(SIMULATIONS))
    parser.add_argument("--kinds", nargs="+", default=list(JOINT_KINDS),
                        choices=list(JOINT_KINDS) + [f"{k}{SHARED}" for k in JOINT_KINDS if _pools(k)],
                        help=f"joint kinds; KIND{SHARED}: with one LLM penalty per subject of {SUBJECT_SIZE} targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true", help="write the tables into docs/statistics.md")
    args = parser.parse_args()
    reps = args.reps or (1 if args.quick else 5)
    n_targets = args.targets or (200 if args.quick else 1000)
    kinds = tuple(args.kinds)
    start = time.process_time()
    tables = []
    for name in args.sims:
        out = run(name, reps, n_targets, kinds, args.seed)
        tables.append(table(name, out, kinds))
    command = "python benchmarks/compare_joint.py" + (" --quick" if args.quick else "")
    total = time.process_time() - start
    text = "\n\n".join(tables) + (f"\n\nMeasured with `{command}` (seed {args.seed}, {reps} replication(s) × "
                                  f"{n_targets} targets per simulation); total {total:.0f} CPU s.")
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"written to {DOCS}")


if __name__ == "__main__":
    main()
