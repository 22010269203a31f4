#!/usr/bin/env bash
# The whole-brain scale benchmark on a CUDA GPU (docs/benchmarks.md, "Whole-brain scale").
# Run from the repository root on a fresh machine with a GPU and Python >= 3.11:
#     OUT=/some/folder bash benchmarks/gpu_check.sh
# Uses the machine's Python (torch with CUDA already installed; nothing is downloaded), checks that the chunked analysis on CUDA equals the numpy one on a small problem, then runs the full-size
# benchmark (3 subjects x 50,000 voxels, 3,000 scans, 6 layers x 576 features x 4 delays) on CUDA.
# Writes $OUT/gpu_env.txt, $OUT/gpu_quick.json, $OUT/gpu_full.json and $OUT/gpu_check.log; prints timings.
set -euo pipefail
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

PY=${PYTHON:-python3}
# No network is assumed: the machine's own Python must hold torch (with CUDA), numpy, scipy, scikit-learn, pandas,
# xarray and pyarrow. Wheels of anything else lmbrain imports (pydantic, nibabel, ...) can be put in .whl/ beside
# this repository (see docs/benchmarks.md): they are installed into a private folder, nothing else is touched.
if compgen -G ".whl/*.whl" > /dev/null; then
    stamp "installing the carried wheels of .whl/ into /tmp/lmbrain-site"
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/lmbrain-site .whl/*.whl
    export PYTHONPATH=/tmp/lmbrain-site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:$PWD/tests/encoding:${PYTHONPATH:-}
export PYTHONUNBUFFERED=1
VPY=$PY
$VPY - <<'EOF' | tee "$OUT/gpu_env.txt"
import torch, numpy
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(0))
print("numpy", numpy.__version__)
EOF

stamp "equality check: chunked analysis on CUDA vs numpy (small problem, float64)"
$VPY - <<'EOF'
import sys, numpy as np, torch
from test_chunked import small_problem
from lmbrain.analysis.chunked import chunked_control_analysis
if not torch.cuda.is_available():
    sys.exit("no CUDA device: nothing to check")
ref = chunked_control_analysis(small_problem())
problem = small_problem()
problem.ridge.set_params(backend="torch_cuda")
got = chunked_control_analysis(problem)
for key in ("llm_r2", "controls_r2", "joint_r2", "unique_r2"):
    diff = float(np.nanmax(np.abs(getattr(got, key) - getattr(ref, key))))
    print(f"{key}: max |cuda - numpy| = {diff:.2e}")
    assert diff < 1e-8, key
assert got.selection.selected == ref.selection.selected
print("CUDA equals numpy")
EOF

stamp "quick benchmark on CUDA (warm-up)"
$VPY benchmarks/bench_scale.py --quick --backend torch --device cuda --json "$OUT/gpu_quick.json"
stamp "full-size benchmark on CUDA"
# chunks of 8,192 voxels (GPU memory is plentiful); stopped after FULL_TIMEOUT seconds (default 420)
timeout "${FULL_TIMEOUT:-420}" $VPY benchmarks/bench_scale.py --backend torch --device cuda --chunk 8192 \
    --workdir "${TMPDIR:-/tmp}" --json "$OUT/gpu_full.json"
stamp "done; results in $OUT"
