"""Cost model of the chunked control analysis: time and memory at three sizes per axis, fitted, projected.

Each measurement is one ``bench_scale.run`` (the full analysis: in-fold layer selection, controls, stacked
joint, unique-variance test, across-subject tests) on a small simulated problem, one BLAS thread, timed in
process CPU time (robust to other jobs on a shared machine). Axes, each at 1x, 2x and 4x of the base
(``BASE``), the others at the base: voxels, scans, layers, FIR delays. The time is fitted (non-negative least
squares) by the algorithm's terms::

    CPU s = a * L * 25 * D(n_i, p)                   decompositions: L+1 designs x 5 outer x 5 inner folds
          + b * V * L * 25 * 10 * n_v * min(n_i, p)  inner-CV validation predictions of 10 alphas per target
          + c * V * n                                reading, refits, stacking, scores, sign flips per target
          + d

with V targets, L layers, p = features x delays, n scans, n_i = 0.64 n inner training and n_v = 0.16 n inner
validation scans, D(n, p) = min(n, p)^2 max(n, p). Peak memory above the data is reported per measurement (it
should not grow with the voxels). The fitted model projects the issue's scale benchmark (3 subjects x 50,000
voxels) and a lab-scale study (8 subjects x 80,000 voxels x 20 models, 3,000 scans, 6 layers x 576 features x
4 delays) on a Dask cluster. ``--write-docs`` writes the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._docs import write_block  # noqa: E402
from benchmarks.bench_scale import run  # noqa: E402

BASE = dict(voxels=1000, subjects=1, scans=600, stories=5, layers=2, features=64, delays=2, chunk=1024)
AXES = {"voxels": "voxels", "scans": "scans", "layers": "layers", "delays": "delays"}
BEGIN, END = "<!-- cost-model:begin -->", "<!-- cost-model:end -->"


def terms(voxels: float, scans: float, layers: float, features: float, delays: float, subjects: float = 1,
          **_: object) -> np.ndarray:
    """The model's regressors for one problem size."""
    V, n, L, p = voxels * subjects, scans, layers, features * delays
    ni, nv = 0.64 * n, 0.16 * n
    dec = (L + 1) * 25 * min(ni, p) ** 2 * max(ni, p)
    tgt = V * L * 25 * 10 * nv * min(ni, p)
    return np.array([dec, tgt, V * n, 1.0])


def measure(quick: bool) -> list[dict]:
    """Time and memory of the base problem and of each axis at 2x and 4x."""
    base = dict(BASE)
    if quick:
        base.update(voxels=200, scans=300, features=16)
    sizes = [dict(base)]
    for key in AXES:
        for factor in (2, 4):
            size = dict(base)
            size[key] = base[key] * factor
            if key == "scans":
                size["stories"] = base["stories"]
            sizes.append(size)
    rows = []
    for size in sizes:
        out = run(**size, verbose=False)
        memory = out["memory_gib"]
        rows.append({**size, "cpu_s": out["seconds"]["analysis_cpu"], "wall_s": out["seconds"]["analysis"],
                     "peak_gib": memory["peak"], "above_gib": memory["analysis_peak_above_before"]})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def fit(rows: list[dict]) -> np.ndarray:
    """Non-negative least squares of CPU seconds on the terms, relative errors weighted equally."""
    from scipy.optimize import nnls

    A = np.array([terms(**r) for r in rows])
    y = np.array([r["cpu_s"] for r in rows])
    coef, _ = nnls(A / y[:, None], np.ones(len(y)))
    return coef


def project(coef: np.ndarray, **size: float) -> float:
    """Predicted CPU seconds of one unit (all its subjects' voxels fitted together)."""
    return float(terms(**size) @ coef)


def table(rows: list[dict], coef: np.ndarray) -> str:
    """Markdown: the measurements with the model's fit, and the projections."""
    lines = ["| voxels | scans | layers | delays | CPU s | model | wall s | peak GiB | above data GiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['voxels']:,} | {r['scans']:,} | {r['layers']} | {r['delays']} | {r['cpu_s']:.1f} | "
                     f"{project(coef, **r):.1f} | {r['wall_s']:.1f} | {r['peak_gib']:.2f} | {r['above_gib']:.2f} |")
    scale = dict(voxels=50_000, subjects=3, scans=3000, layers=6, features=576, delays=4)
    unit = dict(voxels=80_000, subjects=8, scans=3000, layers=6, features=576, delays=4)
    t_scale, t_unit = project(coef, **scale), project(coef, **unit)
    lab = 20 * t_unit
    parts = terms(**unit) * coef
    lines += [
        "",
        f"Fitted (CPU s): a = {coef[0]:.3g} per decomposition flop-unit, b = {coef[1]:.3g} per validation "
        f"product flop, c = {coef[2]:.3g} per target-scan, d = {coef[3]:.2f} s.",
        "",
        "| projection (one core, CPU time) | decompositions | per-target products | per-target rest | total |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, size in (("scale benchmark: 3 subjects x 50,000 voxels, 1 model", scale),
                       ("lab unit: 8 subjects x 80,000 voxels (shared scans), 1 model", unit)):
        p = terms(**size) * coef
        lines.append(f"| {name} | {p[0] / 3600:.2f} h | {p[1] / 3600:.2f} h | {p[2] / 3600:.2f} h | "
                     f"**{sum(p) / 3600:.2f} h** |")
    lines += [
        "",
        f"Lab-scale study, 20 models x 8 subjects x 80,000 voxels: {lab / 3600:.0f} core-hours "
        f"({parts[1] / sum(parts):.0%} of it the per-target inner-CV products). On a Dask cluster whose workers "
        "each take a block of a unit's voxels (`lmbrain.study.executors.run_chunked`; every block recomputes the "
        f"decompositions, {parts[0] / 3600:.2f} core-h per unit and block): with 32 single-core workers, "
        f"{(20 * (32 * parts[0] + parts[1] + parts[2] + parts[3]) / 32) / 3600:.1f} h of wall time "
        f"(vs {lab / 3600 / 2:.0f} h on 2 cores); the scale benchmark alone, {t_scale / 3600:.2f} core-h "
        f"({t_scale / 2 / 60:.0f} min on 2 cores if the 2 threads scaled perfectly).",
    ]
    return "\n".join(lines)


def main() -> None:
    """Measure, fit, print the table (and write it into docs/benchmarks.md)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller base sizes (a smoke run)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--json", default=None, help="also write the measurements here")
    parser.add_argument("--from-json", default=None, help="fit and tabulate the measurements of an earlier --json")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    rows = json.loads(Path(args.from_json).read_text())["rows"] if args.from_json else measure(args.quick)
    coef = fit(rows)
    text = table(rows, coef)
    print(text)
    if args.json and not args.from_json:
        Path(args.json).write_text(json.dumps({"rows": rows, "coef": coef.tolist()}, indent=2))
    if args.write_docs:
        write_block(ROOT / "docs" / "benchmarks.md", BEGIN, END, text)


if __name__ == "__main__":
    main()
