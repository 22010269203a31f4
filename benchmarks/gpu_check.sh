#!/usr/bin/env bash
# The whole-brain scale benchmark on a CUDA GPU (docs/benchmarks.md, "Whole-brain scale").
# Run from the repository root on a fresh machine with a GPU and Python >= 3.11:
#     OUT=/some/folder bash benchmarks/gpu_check.sh
# Creates .venv-gpu, installs lmbrain with torch from PyPI (its default wheel is the CUDA build on Linux),
# checks that the chunked analysis on CUDA equals the numpy one on a small problem, then runs the full-size
# benchmark (3 subjects x 50,000 voxels, 3,000 scans, 6 layers x 576 features x 4 delays) on CUDA.
# Writes $OUT/gpu_env.txt, $OUT/gpu_quick.json, $OUT/gpu_full.json and $OUT/gpu_check.log; prints timings.
set -euo pipefail
OUT=${OUT:-$PWD/gpu-results}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1
start=$(date +%s)
stamp() { echo "[$(( $(date +%s) - start )) s] $*"; }

PY=${PYTHON:-python3}
stamp "creating .venv-gpu with $($PY --version)"
$PY -m venv .venv-gpu
VPY=.venv-gpu/bin/python
$VPY -m pip install -q --upgrade pip
stamp "installing torch (CUDA wheel from PyPI) and lmbrain"
$VPY -m pip install -q torch
$VPY -m pip install -q -e . pytest  # pytest: the equality check imports the test problem
stamp "installed"
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
sys.path.insert(0, "tests/encoding")
from test_chunked import small_problem
from lmbrain.encoding.chunked import chunked_control_analysis
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
