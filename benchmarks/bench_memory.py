"""Peak memory of a per-target-alpha RidgeCV fit with many targets: lmbrain vs himalaya, side by side.

The problem is generated once and saved as ``.npy``; each method then runs in a fresh child process that
loads it (so peaks do not mix and generation temporaries are not counted): n=1000 training
samples, p=1024 features, 100,000 targets, 10 alphas, 5 grouped inner folds, float64, then predicts 200
held-out rows. Printed per method: peak resident memory of the child during the fit (``VmHWM`` after a
reset through ``/proc/self/clear_refs``, Linux), the resident memory before the fit (interpreter, imports,
the data), the fit's own peak (the difference), wall time, and the lmbrain/himalaya ratios; the last line
is a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
import numpy as np

def status(field):  # kB -> bytes, from this process's own memory map (not inherited across exec)
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

from sklearn.model_selection import GroupKFold
folder, t, method = {folder!r}, {t}, {method!r}
prob = {{k: np.load(f"{{folder}}/{{k}}.npy") for k in ("X", "Y", "Xtest")}}  # no generation temporaries
groups = np.arange(len(prob["X"])) // 20
prob["splits"] = list(GroupKFold(5).split(prob["X"], None, groups))
alphas = np.logspace(-2, 7, 10)
data = sum(prob[k].nbytes for k in ("X", "Y", "Xtest")) + len(prob["Xtest"]) * t * 8
if method == "lmbrain":
    from lmbrain.encoding import RidgeCV
else:
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV
    set_backend("numpy")
base = status("VmRSS")  # interpreter, imports, the data
with open("/proc/self/clear_refs", "w") as handle:  # reset the high-water mark to the current RSS
    handle.write("5")
start = time.perf_counter()
pred = RidgeCV(alphas=alphas, cv=prob["splits"]).fit(prob["X"], prob["Y"]).predict(prob["Xtest"])
seconds = time.perf_counter() - start
peak = status("VmHWM")
print(json.dumps({{"peak": peak, "base": base, "data": data, "seconds": seconds}}))
"""


def run(method: str, folder: str, t: int) -> dict:
    """One method in a fresh interpreter on the saved problem; returns its peak RSS, data size and wall time."""
    code = CHILD.format(folder=folder, t=t, method=method)
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
    sys.path.insert(0, str(ROOT))
    from benchmarks.bench_ridge import make_problem

    with tempfile.TemporaryDirectory() as folder:
        prob = make_problem(args.n, 200, args.p, args.targets, "float64")
        for key in ("X", "Y", "Xtest"):
            np.save(f"{folder}/{key}.npy", prob[key])
        del prob
        for method in ("lmbrain", "himalaya"):
            results[method] = run(method, folder, args.targets)
    for method, res in results.items():
        res["fit"] = res["peak"] - res["base"]
        print(f"{method}: peak {res['peak'] / gib:.2f} GiB; resident before the fit {res['base'] / gib:.2f} GiB "
              f"(interpreter, imports, data of {res['data'] / gib:.2f} GiB); the fit's own peak "
              f"{res['fit'] / gib:.2f} GiB; {res['seconds']:.1f} s")
    a, b = results["lmbrain"], results["himalaya"]
    print(f"SUMMARY {args.targets} targets: fit peak lmbrain/himalaya {a['fit'] / max(b['fit'], 1):.2f} "
          f"({a['fit'] / gib:.2f} vs {b['fit'] / gib:.2f} GiB above data); total peak {a['peak'] / gib:.2f} vs "
          f"{b['peak'] / gib:.2f} GiB; time {a['seconds'] / b['seconds']:.2f}")


if __name__ == "__main__":
    main()
