#!/usr/bin/env bash
# Build gnn-kernels with its CUDA kernels against a CUDA build of torch, and
# check that every op has a CUDA kernel registered.
#
# This is a compile check: it needs nvcc and a CUDA build of torch, not a GPU.
# The CUDA kernels are compiled and registered, but nothing here runs them
# (with no GPU they cannot run). The CPU kernels of the same build are
# exercised by tests/kernels/test_kernel_ops.py (GNN_CUDA_RUN_TESTS=1, the default).
# On a machine with a GPU, tests/kernels/test_cuda_parity.py runs every CUDA kernel
# against the CPU kernel of the same op, and tests/kernels/test_cuda_geometry.py does
# the same for the geometry ops (knn, radius, fps, graclus, grid_cluster).
#
# Environment:
#   GNN_CUDA_VENV          venv to create or reuse (default: <repo>/.nox/kernels_cuda_build)
#   GNN_CUDA_TORCH         pip requirement for torch (default: torch==2.14.1, a CUDA 13.0 build)
#   GNN_CUDA_PYTHON        interpreter that creates the venv (default: python3)
#   GNN_CUDA_RUN_TESTS     1 (default): run tests/kernels/test_kernel_ops.py on this build's CPU ops
#   TORCH_CUDA_ARCH_LIST   GPU architectures (setup.py defaults to "8.0;9.0+PTX" without a GPU)
#   MAX_JOBS               parallel compile jobs (ninja)
#   CUDA_HOME              the CUDA toolkit (default: /usr/local/cuda, else found from nvcc)
#
# Usage: packages/gnn-kernels/tools/build_cuda.sh   (from anywhere)
set -euo pipefail

PKG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROOT="$(cd "$PKG/../.." && pwd)"
VENV="${GNN_CUDA_VENV:-$ROOT/.nox/kernels_cuda_build}"
TORCH_REQ="${GNN_CUDA_TORCH:-torch==2.14.1}"
BASE_PYTHON="${GNN_CUDA_PYTHON:-python3}"
RUN_TESTS="${GNN_CUDA_RUN_TESTS:-1}"

# torch finds the toolkit from CUDA_HOME, else from the nvcc on PATH, which can be a
# wrapper script outside the toolkit (then -lcudart is not found): locate the toolkit here.
if [[ -z "${CUDA_HOME:-}" ]]; then
  if [[ -x /usr/local/cuda/bin/nvcc ]]; then
    CUDA_HOME=/usr/local/cuda
  elif command -v nvcc >/dev/null 2>&1; then
    CUDA_HOME="$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")"
  else
    echo "build_cuda.sh: nvcc not found (set CUDA_HOME)" >&2
    exit 2
  fi
fi
export CUDA_HOME
export PATH="$CUDA_HOME/bin:$PATH"
echo "== nvcc: $(nvcc --version | tail -n 2 | head -n 1) (CUDA_HOME=$CUDA_HOME)"

if [[ ! -x "$VENV/bin/python" ]]; then
  echo "== creating $VENV"
  "$BASE_PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --disable-pip-version-check "$TORCH_REQ" "setuptools>=64" pytest
"$PY" - <<'EOF'
import torch

if torch.version.cuda is None:
    raise SystemExit(f"build_cuda.sh: torch {torch.__version__} is not a CUDA build")
print(f"== torch {torch.__version__} (CUDA {torch.version.cuda}), GPU visible: {torch.cuda.is_available()}")
EOF

# Build from a scratch copy so that the checkout (its build/ folder, _build_info.json
# and the CPU library of the editable install) is left untouched.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gnn-kernels-cuda.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cp -r "$PKG/setup.py" "$PKG/pyproject.toml" "$PKG/README.md" "$PKG/csrc" "$PKG/src" "$WORK/"
rm -rf "$WORK"/src/*.egg-info
find "$WORK/src" \( -name '_C*.so' -o -name '_C*.pyd' -o -name __pycache__ \) -prune -exec rm -rf {} +

echo "== building (FORCE_CUDA=1, TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-<setup.py default>})"
LOG="$VENV/gnn-kernels-cuda-build.log"  # kept for inspection
start=$(date +%s)
if ! FORCE_CUDA=1 GNN_KERNELS_PORTABLE=1 "$PY" -m pip install --no-build-isolation --no-deps \
  --disable-pip-version-check --force-reinstall -v "$WORK" >"$LOG" 2>&1; then
  tail -n 80 "$LOG" >&2
  echo "build_cuda.sh: the CUDA build failed" >&2
  exit 1
fi
end=$(date +%s)
echo "== build time: $((end - start)) s"
if grep -n "warning" "$LOG" | grep -v "torch/include" | grep -E "csrc/(cuda|cpu)/" >/dev/null; then
  echo "== compiler warnings in gnn-kernels sources:"
  grep -n "warning" "$LOG" | grep -E "csrc/(cuda|cpu)/" | grep -v "torch/include" || true
fi

"$PY" - <<'EOF'
import glob
import os
import re
import shutil
import struct
import subprocess

import torch

import gnn.kernels

assert gnn.kernels.load(), gnn.kernels.load_error()
info = gnn.kernels.build_info()
print(f"== build info: {info}")
assert info.get("cuda") == torch.version.cuda, "the build did not record its CUDA version"
(lib,) = glob.glob(os.path.join(os.path.dirname(gnn.kernels.__file__), "_C*.so"))
print(f"== library: {lib} ({os.path.getsize(lib) / 2**20:.1f} MiB)")
if shutil.which("cuobjdump"):
    out = subprocess.run(["cuobjdump", "--list-elf", lib], capture_output=True, text=True).stdout.split()
    archs = sorted({w.split(".")[-2] for w in out if w.endswith(".cubin")})
else:  # the embedded CUDA ELF images (e_machine 190), SM version in bits 8-15 of e_flags
    data = open(lib, "rb").read()
    archs = []
    for match in re.finditer(rb"\x7fELF\x02\x01", data):
        start = match.start()
        if start and struct.unpack_from("<H", data, start + 18)[0] == 190:
            flags = struct.unpack_from("<I", data, start + 48)[0]
            archs.append(f"sm_{(flags >> 8) & 0xFF if flags & 0xFF00 else flags & 0xFF}")
    archs = sorted(set(archs))
print(f"== device code (cubin): {archs}")
assert archs, "no CUDA device code in the library"

ops = ["spmm_sum", "spmm_minmax", "sddmm", "attention_forward", "attention_backward",
       "scatter_reduce", "segment_reduce", "segment_matmul", "segment_matmul_backward",
       "dot_attention_forward", "dot_attention_backward",
       "gatv2_attention_forward", "gatv2_attention_backward"]
ops += ["softmax_forward", "softmax_backward"]  # csrc/cuda/softmax.cu
ops += ["knn", "radius", "fps", "graclus", "grid_cluster"]  # csrc/cuda/geometry.cu
ops += ["multi_reduce", "multi_reduce_backward"]  # csrc/cuda/multi_reduce.cu
ops += ["random_walk"]  # csrc/cuda/random_walk.cu
ops += ["gather_matmul", "gather_matmul_backward"]  # csrc/cuda/gather_matmul.cu
ops += ["spline_basis", "spline_basis_backward", "spline_weighting", "spline_weighting_backward"]  # spline.cu
missing = []
for op in ops:
    name = f"gnn_kernels::{op}"
    cpu = torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU")
    cuda = torch._C._dispatch_has_kernel_for_dispatch_key(name, "CUDA")
    print(f"   {name:32s} CPU={cpu} CUDA={cuda}")
    if not (cpu and cuda):
        missing.append(op)
if missing:
    raise SystemExit(f"build_cuda.sh: no CPU/CUDA kernel registered for {missing}")
print("== every op has a CUDA kernel registered (compiled only: no GPU ran them)")
EOF

if [[ "$RUN_TESTS" == "1" ]]; then
  echo "== CPU kernels of this build: tests/kernels/test_kernel_ops.py"
  (cd "$ROOT" && "$PY" -m pytest tests/kernels/test_kernel_ops.py -q -x -p no:cacheprovider)
fi
