"""Calibration of the tests across subjects (``lmbrain.analysis.second_level``) and of the model comparisons.

* **One value per subject** (LLM r / R², unique LLM R², a paired model difference): false-positive rate at
  α = 0.05 of the sign-flip, t and Wilcoxon tests (two-sided and one-sided "greater") for 5 and 27 subjects
  under null distributions of mean 0: normal, Laplace and Student t(3) (symmetric, heavy tails) and a skewed
  one (centred χ²(3), under which the sign-flip test is not exact: it assumes symmetry).
* **Power** of the one-sided tests at the effect sizes (Cohen's d_z) of the default study's across-subject
  table (``reports/default/results.parquet``): per dataset and quantity, the median and the largest d_z over
  its ROI × model rows with d_z > 0, with that dataset's number of subjects (normal subject values).
* **Model comparisons with targets nested in subjects**: two models scored on the same targets, no true
  difference (and, for power, the Fedorenko2016 difference), three designs: 5 subjects × 20 targets without
  and with subject-specific model effects, and Fedorenko-like (47, 8, 9, 15, 18 electrodes, variance
  components of the real r). Tests: the former target-level MixedLM (random intercept per subject, Wald z,
  every target a replicate), the nested MixedLM of ``mixed_model_comparison`` (per-target differences, random
  intercept per subject, t on n_subjects − 1 df), and the paired sign-flip / t / Wilcoxon tests on subject
  means (two-sided).

Run ``python benchmarks/calibrate_second_level.py`` (seeded; ~1-2 min on one core) or ``--quick``;
``--write-docs`` replaces the measured block of docs/statistics.md ("Across subjects").
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _docs import write_block  # benchmarks/ is on sys.path when a script runs

from lmbrain.analysis.second_level import (
    NULL_DISTRIBUTIONS,
    min_sign_flip_p,
    null_sample,
    paired_across_subjects,
    rejection_rates,
    simulate_nested_comparison,
)
from lmbrain.analysis.stats import mixed_model_comparison

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "statistics.md"
RESULTS = ROOT / "reports" / "default" / "results.parquet"
BEGIN, END = "<!-- calibrate_second_level: begin -->", "<!-- calibrate_second_level: end -->"
ALPHA = 0.05
BAND = (0.03, 0.07)
SIZES = (5, 27)
TESTS = ("signflip", "ttest", "wilcoxon")
ALTERNATIVES = ("two-sided", "greater")
#: nested designs of the model comparison: targets per subject and variance components (SDs)
DESIGNS = {
    "5 × 20, no subject-specific model effect": dict(targets_per_subject=(20,) * 5, slope_sd=0.0),
    "5 × 20, subject-specific model effects": dict(targets_per_subject=(20,) * 5, slope_sd=0.02),
    "Fedorenko-like (47, 8, 9, 15, 18 targets)": dict(targets_per_subject=(47, 8, 9, 15, 18), subject_sd=0.05,
                                                      slope_sd=0.01, target_sd=0.12, noise_sd=0.035),
}
#: true differences for power in the Fedorenko-like design: LLM r, SmolLM2 − SmolLM2 untrained (0.06, the
#: observed mean of the subject means), and a small one (0.01)
FEDORENKO_DIFFERENCES = (0.06, 0.01)


def former_mixed_p(table: pd.DataFrame) -> float:
    """p of model b − a in the former target-level MixedLM: random intercept per subject, Wald z."""
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():  # after the import: statsmodels sets its own filters when imported
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("value ~ C(model)", table, groups=table["subject"]).fit(reml=True,
                                                                                  method=["lbfgs", "powell"])
        return float(fit.pvalues["C(model)[T.b]"])


def comparison_pvalues(table: pd.DataFrame, n_flips: int = 10000) -> dict[str, float]:
    """p of every model-comparison test on one simulated nested design."""
    means = table.groupby(["subject", "model"])["value"].mean().unstack("model")
    paired = paired_across_subjects(means["b"], means["a"], n_flips=n_flips)
    return {"former MixedLM (targets as replicates)": former_mixed_p(table),
            "nested MixedLM, t(n_subjects − 1)": float(mixed_model_comparison(table).loc["model=b", "p"]),
            "paired sign-flip": paired.p_signflip, "paired t": paired.p_ttest, "paired Wilcoxon": paired.p_wilcoxon}


def comparison_rates(design: dict, n_sims: int, seed: int, difference: float = 0.0) -> dict[str, float]:
    """Rejection rate at α of every model-comparison test over ``n_sims`` simulated designs."""
    rng = np.random.default_rng(seed)
    pvalues = [comparison_pvalues(simulate_nested_comparison(rng, difference=difference, **design))
               for _ in range(n_sims)]
    return {name: float(np.mean([p[name] <= ALPHA for p in pvalues])) for name in pvalues[0]}


def one_sample_fpr(n_sims: int, seed: int, n_flips: int) -> pd.DataFrame:
    """False-positive rates of the tests across subjects: one row per (test, alternative, size, null)."""
    rows = []
    for i, (n, dist) in enumerate((n, d) for n in SIZES for d in NULL_DISTRIBUTIONS):
        values = null_sample(np.random.default_rng(seed + i), dist, n, n_sims)
        for alternative in ALTERNATIVES:
            rates = rejection_rates(values, ALPHA, alternative, n_flips=n_flips, seed=seed)
            rows += [{"test": t, "alternative": alternative, "n": n, "null": dist, "fpr": rates[t]} for t in TESTS]
    return pd.DataFrame(rows)


def real_effect_sizes(path: Path) -> pd.DataFrame:
    """Per dataset and quantity of the default study's across-subject table: n, median and largest d_z > 0."""
    from lmbrain.report.across_subjects import across_subject_table

    table = across_subject_table(pd.read_parquet(path), n_flips=1000)
    positive = table[table["dz"] > 0]
    return positive.groupby(["dataset", "quantity"]).agg(
        n=("n_subjects", "max"), median_dz=("dz", "median"), max_dz=("dz", "max")).reset_index()


def power_table(effects: pd.DataFrame, n_sims: int, seed: int, n_flips: int) -> pd.DataFrame:
    """Power of the one-sided tests at the real effect sizes (normal subject values)."""
    rows = []
    for i, row in enumerate(effects.itertuples(index=False)):
        for kind, dz in (("median", row.median_dz), ("largest", row.max_dz)):
            values = np.random.default_rng(seed + i).normal(size=(int(row.n), n_sims)) + dz
            rates = rejection_rates(values, ALPHA, "greater", n_flips=n_flips, seed=seed)
            rows.append({"dataset": row.dataset, "quantity": row.quantity, "n": int(row.n), "effect": kind,
                         "dz": dz, **rates})
    return pd.DataFrame(rows)


def _cell(rate: float, n_sims: int) -> str:
    """A rate, with † where it is outside the band by more than 2 simulation standard errors."""
    tol = 2 * np.sqrt(ALPHA * (1 - ALPHA) / n_sims)
    return f"{rate:.3f}" + (" †" if not BAND[0] - tol <= rate <= BAND[1] + tol else "")


def render(fpr: pd.DataFrame, power: pd.DataFrame, comparisons: dict, power_cmp: dict, n_sims: int,
           n_cmp: int, command: str, seconds: float, seed: int) -> str:
    """The Markdown block of docs/statistics.md."""
    nulls = list(NULL_DISTRIBUTIONS)
    head = "| test | alternative | " + " | ".join(f"n = {n}, {d}" for n in SIZES for d in nulls) + " |"
    lines = [f"**False-positive rate at α = {ALPHA}, one value per subject** ({n_sims} simulated data sets per "
             f"cell; † outside [{BAND[0]}, {BAND[1]}] by more than 2 simulation SE; the sign-flip test assumes a "
             "symmetric null and is exact under the first three)", "", head,
             "|---|---|" + "---:|" * (len(SIZES) * len(nulls))]
    for (test, alternative), part in fpr.groupby(["test", "alternative"], sort=False):
        cells = [_cell(part[(part["n"] == n) & (part["null"] == d)]["fpr"].iloc[0], n_sims) for n in SIZES
                 for d in nulls]
        lines.append(f"| {test} | {alternative} | " + " | ".join(cells) + " |")
    lines += ["", f"With 5 subjects the smallest two-sided sign-flip or Wilcoxon p is "
              f"{min_sign_flip_p(5):.4f} > 0.05: those tests cannot reject two-sided at 5 subjects (false-positive "
              "rate 0, flagged), whatever the data. One-sided, their exact size under any continuous symmetric "
              f"null is {min_sign_flip_p(5, 'greater'):.4f} (all 5 subjects positive), in the band. The t test's "
              "normal approximation is what lets it go lower.", ""]
    lines += [f"**Power at the effect sizes of the default study** (one-sided, α = {ALPHA}, normal subject "
              f"values, {n_sims} simulations; d_z: median and largest over the dataset's ROI × model rows with "
              "d_z > 0 in the across-subject table)", "",
              "| dataset | quantity | subjects | effect | d_z | sign-flip | t | Wilcoxon |",
              "|---|---|---:|---|---:|---:|---:|---:|"]
    for row in power.itertuples(index=False):
        lines.append(f"| {row.dataset} | {row.quantity} | {row.n} | {row.effect} | {row.dz:.2f} | "
                     f"{row.signflip:.3f} | {row.ttest:.3f} | {row.wilcoxon:.3f} |")
    names = list(next(iter(comparisons.values())))
    lines += ["", f"**Model comparisons, targets nested in subjects** (two models on the same targets; "
              f"{n_cmp} simulated data sets per design; two-sided; † outside [{BAND[0]}, {BAND[1]}] by more "
              "than 2 simulation SE; power: Fedorenko-like design with a true difference of 0.06 in r (the "
              "observed SmolLM2 − untrained difference on Fedorenko2016) or 0.01)", "",
              "| test | " + " | ".join(f"FPR: {d}" for d in comparisons) + " | "
              + " | ".join(f"power, difference {d}" for d in power_cmp) + " |",
              "|---|" + "---:|" * (len(comparisons) + len(power_cmp))]
    for name in names:
        cells = [_cell(rates[name], n_cmp) for rates in comparisons.values()]
        cells += [f"{rates[name]:.3f}" for rates in power_cmp.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", f"Measured with `{command}` (seed {seed}); {seconds:.0f} CPU s."]
    return "\n".join(lines)


def write_docs(text: str) -> None:
    """Replace the measured block of docs/statistics.md (between the markers) with ``text``."""
    write_block(DOCS, BEGIN, END, text)


def main() -> None:
    """Run the calibration, print the Markdown tables, optionally write them to the docs."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer simulations (1000 / 200)")
    parser.add_argument("--sims", type=int, default=None, help="simulated data sets per one-sample cell (4000)")
    parser.add_argument("--comparison-sims", type=int, default=None, help="simulated designs per model-"
                        "comparison cell (1000)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results.parquet giving the real effect sizes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write-docs", action="store_true", help="write the tables into docs/statistics.md")
    args = parser.parse_args()
    n_sims = args.sims or (1000 if args.quick else 4000)
    n_cmp = args.comparison_sims or (200 if args.quick else 1000)
    n_flips = 2000  # Monte Carlo flips for n = 27 (resolution 0.0005 around α); n = 5 is enumerated exactly
    start = time.process_time()
    fpr = one_sample_fpr(n_sims, args.seed, n_flips)
    power = power_table(real_effect_sizes(args.results), n_sims, args.seed, n_flips)
    comparisons = {name: comparison_rates(design, n_cmp, args.seed + i) for i, (name, design) in
                   enumerate(DESIGNS.items())}
    fedorenko = list(DESIGNS.values())[-1]
    power_cmp = {d: comparison_rates(fedorenko, n_cmp, args.seed + 99, difference=d) for d in FEDORENKO_DIFFERENCES}
    command = "python benchmarks/calibrate_second_level.py" + (" --quick" if args.quick else "")
    text = render(fpr, power, comparisons, power_cmp, n_sims, n_cmp, command, time.process_time() - start,
                  args.seed)
    print(text)
    if args.write_docs:
        write_docs(text)
        print(f"written to {DOCS}")


if __name__ == "__main__":
    main()
