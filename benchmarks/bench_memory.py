"""Peak memory of a per-target-alpha RidgeCV fit with many targets: lmbrain vs himalaya, side by side.

Each method runs in a fresh child process (so peaks do not mix) on the same problem: n=1000 training
samples, p=1024 features, 100,000 targets, 10 alphas, 5 grouped inner folds, float64, then predicts 200
held-out rows. Printed per method: peak resident memory of the child (``ru_maxrss``), the peak before
the fit (interpreter, imports, the data), the fit's own peak (the difference), wall time, and the
lmbrain/himalaya ratios; the last line is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np
sys.path.insert(0, {root!r})
from benchmarks.bench_ridge import make_problem
n, p, t, method = {n}, {p}, {t}, {method!r}
prob = make_problem(n, 200, p, t, "float64")
alphas = np.logspace(-2, 7, 10)
data = sum(prob[k].nbytes for k in ("X", "Y", "Xtest")) + 200 * t * 8
if method == "lmbrain":
    from lmbrain.encoding import RidgeCV
else:
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    set_backend("numpy")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # interpreter, imports, the data
start = time.perf_counter()
pred = RidgeCV(alphas=alphas, cv=prob["splits"]).fit(prob["X"], prob["Y"]).predict(prob["Xtest"])
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"peak": peak, "base": base, "data": data, "seconds": seconds}}))
"""


def run(method: str, n: int, p: int, t: int) -> dict:
    """One method in a fresh interpreter; returns its peak RSS, data size and wall time."""
    code = CHILD.format(root=str(ROOT), n=n, p=p, t=t, method=method)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run both methods and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--p", type=int, default=1024)
    parser.add_argument("--targets", type=int, default=100_000)
    args = parser.parse_args()
    gib = 2.0**30
    results = {}
    for method in ("lmbrain", "himalaya"):
        res = results[method] = run(method, args.n, args.p, args.targets)
        res["fit"] = res["peak"] - res["base"]
        print(f"{method}: peak {res['peak'] / gib:.2f} GiB; before the fit {res['base'] / gib:.2f} GiB "
              f"(interpreter, imports, data of {res['data'] / gib:.2f} GiB); the fit's own peak "
              f"{res['fit'] / gib:.2f} GiB; {res['seconds']:.1f} s")
    a, b = results["lmbrain"], results["himalaya"]
    print(f"SUMMARY {args.targets} targets: fit peak lmbrain/himalaya {a['fit'] / max(b['fit'], 1):.2f} "
          f"({a['fit'] / gib:.2f} vs {b['fit'] / gib:.2f} GiB above data); total peak {a['peak'] / gib:.2f} vs "
          f"{b['peak'] / gib:.2f} GiB; time {a['seconds'] / b['seconds']:.2f}")


if __name__ == "__main__":
    main()
