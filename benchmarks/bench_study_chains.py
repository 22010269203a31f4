"""The default study's unit chains, timed against an earlier commit of lmbrain and against a numpy-only floor.

A chain is the units that share one in-fold layer selection (the LLM alone, its joint models with each control
set, the per-layer curves) of one dataset, subject group and model variant: the study's unit of work on a worker.
For each chain named by ``--chain`` (default: one per dataset, and an untrained Frank2015 variant), this runs the
chain's units with ``lmbrain.study.compute.compute_unit`` in a fresh process with one BLAS thread and reports its
process CPU time (robust to other load), for the checkout it lives in and, with ``--reference REV``, for that git
revision (a temporary ``git worktree``), interleaved (A B A B) and best of ``--repeats``. Both must give the
same numbers (``--check``: the chain's tidy rows compared, max |difference|).

The floor: a Frank2015 subject's layer selection (6 layers x 5 outer x 5 inner folds, 10 alphas, one target) done
by numpy alone -- per outer fold the covariance, its eigendecomposition and the basis, per inner fold the deletion
matrices of every alpha and their solve -- the unavoidable products of the exact leave-out inner CV.

The projection multiplies each measured chain by the number of chains of its kind in ``analyses/default.yaml``
(Frank2015: 24 subjects x 12 model variants, each subject its own rows) and divides by 2 workers.

Needs ``LMBRAIN_DATA_DIR`` (the real datasets) and the features in ``LMBRAIN_CACHE_DIR`` (``make report`` once).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CHAINS = ["frank2015_eeg:smollm2-135m", "frank2015_eeg:minilm-l6:2", "brennan2016_alice:smollm2-135m",
          "fedorenko2016:smollm2-135m", "pereira2018_langnet:smollm2-135m"]


def parse(chain: str) -> tuple[str, str, int | None]:
    """'dataset:model[:untrained seed]' -> (dataset, model, seed)."""
    parts = chain.split(":")
    return parts[0], parts[1], int(parts[2]) if len(parts) > 2 else None


def worker(chain: str, rows_out: str | None) -> None:
    """Run one chain in this process (one BLAS thread) and print its CPU time and stage sums as JSON."""
    import collections

    from lmbrain.study.compute import compute_unit
    from lmbrain.study.context import StudyContext
    from lmbrain.study.plan import enumerate_units, unit_chains
    from lmbrain.study.runner import thread_caps
    from lmbrain.study.schema import load_study

    dataset, model, seed = parse(chain)
    context = StudyContext(load_study(ROOT / "analyses" / "default.yaml"))
    chains = unit_chains(context, enumerate_units(context))
    units = next(c for c in chains if c[0].dataset == dataset and c[0].model == model and c[0].untrained_seed == seed)
    stages: collections.Counter = collections.Counter()
    tables = []
    with thread_caps(1):
        start = time.process_time()
        for unit in units:
            table, record = compute_unit(context, unit)
            stages.update(record["stage_seconds"])
            tables.append(table.assign(unit=unit.key))
        cpu = time.process_time() - start
    if rows_out:
        import pandas as pd

        pd.concat(tables, ignore_index=True).to_parquet(rows_out)
    print(json.dumps({"cpu": cpu, "units": len(units), "stages": dict(stages)}))


def run_chain(tree: Path, chain: str, rows_out: str | None) -> dict:
    """One chain in a fresh process importing lmbrain from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    args = [sys.executable, str(Path(__file__).resolve()), "--worker", chain]
    if rows_out:
        args += ["--rows-out", rows_out]
    out = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def floor_selection(repeats: int) -> float:
    """CPU seconds of a Frank2015-sized layer selection done by numpy alone (best of ``repeats``)."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    n, p, n_alphas = 1447, 576, 10
    X, y = rng.standard_normal((n, p)), rng.standard_normal((n, 1))
    alphas = np.logspace(-2, 7, n_alphas)

    def once() -> None:
        for _layer in range(6):
            for k in range(5):
                train = np.arange(n) % 5 != k
                Xt = X[train]
                Xt = (Xt - Xt.mean(0)) / Xt.std(0)
                yt = y[train] - y[train].mean()
                ev, V = np.linalg.eigh(Xt.T @ Xt)
                B = (Xt @ V) / np.sqrt(ev)
                BtY = B.T @ yt
                shrink = ev[None, :] / (ev[None, :] + alphas[:, None])
                for j in range(5):
                    held = np.arange(len(Xt)) % 5 == j
                    BE = B[held]
                    M = np.stack([np.eye(len(BE)) - 1.0 / len(Xt) - (BE * shrink[a] ** 0.5) @ (BE * shrink[a] ** 0.5).T
                                  for a in range(n_alphas)])
                    np.linalg.solve(M, yt[held][None] - BE @ (shrink[:, :, None] * BtY[None]))

    best = np.inf
    with threadpool_limits(1):
        for _ in range(repeats):
            start = time.process_time()
            once()
            best = min(best, time.process_time() - start)
    return best


def chain_counts() -> dict[str, int]:
    """How many chains of each kind the default study has (dataset, trained or untrained variant)."""
    import logging

    from lmbrain.study.context import StudyContext
    from lmbrain.study.plan import enumerate_units, unit_chains
    from lmbrain.study.schema import load_study

    logging.disable(logging.WARNING)  # the datasets' notes were printed by the chains already
    context = StudyContext(load_study(ROOT / "analyses" / "default.yaml"))
    counts: dict[str, int] = {}
    for chain in unit_chains(context, enumerate_units(context)):
        unit = chain[0]
        if unit.model is None:
            continue
        key = f"{unit.dataset}:{'untrained' if unit.untrained_seed is not None else 'trained'}"
        counts[key] = counts.get(key, 0) + 1
    return counts


def main() -> None:
    """Time the chains (and the reference's), check equality, print the floor and the projection."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chain", action="append", help="dataset:model[:seed] (repeatable; default: 5 chains)")
    parser.add_argument("--reference", default=None, help="git revision to time side by side (e.g. a commit)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rows-out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.rows_out)
        return
    chains = args.chain or CHAINS
    trees = {"lmbrain": ROOT}
    temp = tempfile.TemporaryDirectory(prefix="lmbrain-ref-")
    if args.reference:
        ref = Path(temp.name) / "ref"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(ref), args.reference],
                       check=True)
        trees = {"reference": ref, "lmbrain": ROOT}
    try:
        best: dict[tuple[str, str], float] = {}
        stages: dict[tuple[str, str], dict] = {}
        diffs: dict[str, float] = {}
        for repeat in range(args.repeats):
            for chain in chains:
                for name, tree in trees.items():
                    rows = str(Path(temp.name) / f"{name}.parquet") if repeat == 0 and len(trees) > 1 else None
                    out = run_chain(tree, chain, rows)
                    if out["cpu"] < best.get((name, chain), np.inf):
                        best[(name, chain)], stages[(name, chain)] = out["cpu"], out["stages"]
                if repeat == 0 and len(trees) > 1:
                    diffs[chain] = compare(Path(temp.name) / "reference.parquet", Path(temp.name) / "lmbrain.parquet")
        print(f"{'chain':36s} " + " ".join(f"{n:>10s}" for n in trees) + "   ratio  max |diff|")
        for chain in chains:
            times = [best[(n, chain)] for n in trees]
            ratio = times[-1] / times[0] if len(times) > 1 else np.nan
            diff = diffs.get(chain, np.nan)
            print(f"{chain:36s} " + " ".join(f"{t:9.2f}s" for t in times) + f"   {ratio:5.2f}  {diff:.1e}")
            print("    stages (lmbrain):", {k: round(v, 2) for k, v in stages[("lmbrain", chain)].items()})
        floor = floor_selection(args.repeats)
        print(f"floor: a Frank2015 subject's layer selection by numpy alone: {floor:.2f} CPU s")
        counts = chain_counts()
        project(counts, best, chains, trees)
    finally:
        if args.reference:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(Path(temp.name) / "ref")],
                           check=False)
        temp.cleanup()


def compare(a: Path, b: Path) -> float:
    """Max |difference| of the values of two chains' tidy rows (same rows in the same order required)."""
    import pandas as pd

    ta, tb = pd.read_parquet(a), pd.read_parquet(b)
    keys = [c for c in ta.columns if c != "value"]
    if len(ta) != len(tb) or not ta[keys].astype(str).equals(tb[keys].astype(str)):
        return np.inf
    va, vb = ta["value"].to_numpy(float), tb["value"].to_numpy(float)
    if not np.array_equal(np.isnan(va), np.isnan(vb)):
        return np.inf
    both = ~np.isnan(va)
    return float(np.max(np.abs(va[both] - vb[both]), initial=0.0))


def project(counts: dict[str, int], best: dict, chains: list[str], trees: dict) -> None:
    """Chains' CPU x their number in the default study, per tree; wall time on 2 workers."""
    for name in trees:
        total = 0.0
        for key, count in counts.items():
            dataset, kind = key.split(":")
            measured = [c for c in chains if c.startswith(dataset + ":")]
            pick = [c for c in measured if (len(c.split(":")) > 2) == (kind == "untrained")] or measured
            if not pick:
                continue
            total += count * best[(name, pick[0])]
        print(f"projection ({name}): chains of the default study {total:.0f} CPU s -> {total / 2 / 60:.1f} min on "
              f"2 workers (controls and ceiling units not included); counts {counts}")
    if len(trees) > 1:
        print("SUMMARY " + "; ".join(f"{c}: {best[('lmbrain', c)] / best[('reference', c)]:.2f}" for c in chains))


if __name__ == "__main__":
    main()
