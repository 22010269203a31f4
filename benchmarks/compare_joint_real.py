"""Joint estimators on the shipped datasets: does the joint model lose to its best part?

For each dataset of ``analyses/default.yaml`` (its control set), each model variant of the study and every
third subject group (all of them with ``--all``), the LLM's in-fold layer selection is computed once, then
every joint estimator of ``--kinds`` is cross-validated on [the fold's LLM layer | controls] next to the
controls alone. Printed per estimator: the median over (model, subject) rows of the shortfall
max(R² LLM, R² controls) − R² joint (subject means), the share of rows within 0.002 of their best part, and
the mean unique LLM R² (joint − controls). This is the real-data check of ``docs/statistics.md``; the
simulations with known ground truth are ``benchmarks/compare_joint.py``.

    python benchmarks/compare_joint_real.py [--datasets ...] [--kinds ...] [--all]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from lmbrain.encoding import cross_validate
from lmbrain.encoding.joint import JOINT_KINDS, make_joint_estimator
from lmbrain.study.compute import layer_selection
from lmbrain.study.context import StudyContext
from lmbrain.study.estimators import make_ridge
from lmbrain.study.plan import Unit
from lmbrain.study.schema import load_study


def rows_for(study, name: str, kinds: list[str], every: int) -> list[dict]:
    """One row per (kind, model, subject): R² of the LLM alone, the controls alone and the joint model."""
    inputs = StudyContext(study)
    controls = inputs.entry(name).control_sets[0]
    timeseries = inputs.dataset(name).is_timeseries
    groups = inputs.subject_groups(name, controls.joint())[::every]
    alphas = np.asarray(study.estimator.alphas, dtype=float)
    out = []
    for model, seed in study.model_variants():
        for label in groups:
            unit = Unit(name, label, model, seed, controls.joint().label, "grouped")
            llm_data, candidates, selection = layer_selection(inputs, unit)
            data = inputs.targets(name, label, "grouped")
            ctrl = inputs.controls(name, controls, label)
            C = next(iter(ctrl.candidates.values()))[data.rows]
            alone = cross_validate(make_ridge(study, timeseries, "grouped", ctrl.standardize), C, data.Y,
                                   data.groups, data.cv)
            for subject in dict.fromkeys(data.subjects):
                mine = data.subjects == subject
                theirs = llm_data.subjects == subject
                chosen = [fold[subject] for fold in selection.selected]
                designs = [np.hstack([candidates[c], C]) for c in chosen]
                n_llm = candidates[chosen[0]].shape[1]
                mask = np.concatenate([np.ones(n_llm, dtype=bool), ctrl.standardize])
                slices = [slice(0, n_llm), slice(n_llm, n_llm + C.shape[1])]
                for kind in kinds:
                    est = make_joint_estimator(kind, slices, alphas, make_ridge(study, timeseries, "grouped").cv,
                                               standardize=mask)
                    joint = cross_validate(est, designs, data.Y[:, mine], data.groups, data.cv)
                    out.append({"dataset": name, "kind": kind, "model": unit.model_label, "subject": subject,
                                "r2_llm": float(selection.r2[theirs].mean()),
                                "r2_controls": float(alone.r2[mine].mean()), "r2_joint": float(joint.r2.mean())})
    return out


def main() -> None:
    """Run the comparison and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="analyses/default.yaml")
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--kinds", nargs="+", default=["banded", "hierarchical", "stacked_simplex", "stacked_nnls"],
                        choices=list(JOINT_KINDS))
    parser.add_argument("--all", action="store_true", help="every subject group, not every third")
    parser.add_argument("--csv", default=None, help="also write the per-(kind, model, subject) rows here")
    args = parser.parse_args()
    study = load_study(args.study)
    names = args.datasets or [e.name for e in study.datasets if e.controls]
    start = time.process_time()
    rows = pd.DataFrame([r for name in names for r in rows_for(study, name, args.kinds, 1 if args.all else 3)])
    rows["shortfall"] = np.maximum(rows["r2_llm"], rows["r2_controls"]) - rows["r2_joint"]
    rows["unique"] = rows["r2_joint"] - rows["r2_controls"]
    if args.csv:
        rows.to_csv(args.csv, index=False)
    table = rows.groupby(["dataset", "kind"], sort=True).agg(
        rows=("shortfall", "size"), median_shortfall=("shortfall", "median"),
        share_within_0_002=("shortfall", lambda s: float((s <= 0.002).mean())), mean_unique=("unique", "mean"),
    ).reset_index()
    print("| dataset | joint estimator | (model, subject) rows | median shortfall | joint ≥ best part − 0.002 | "
          "mean unique LLM R² |")
    print("|---|---|---:|---:|---:|---:|")
    for r in table.itertuples(index=False):
        print(f"| {r.dataset} | `{r.kind}` | {r.rows} | {r.median_shortfall:+.4f} | {r.share_within_0_002:.0%} | "
              f"{r.mean_unique:+.4f} |")
    print(f"\n{len(rows)} fits in {time.process_time() - start:.0f} CPU s")


if __name__ == "__main__":
    main()
