"""Build of gnn-kernels' compiled ops against the torch installed in this environment.

Build with ``pip install --no-build-isolation packages/gnn-kernels`` so that
the extension is compiled against (and records) the torch you run.

Environment:
    FORCE_CUDA=1             build the CUDA kernels even if torch sees no GPU
    GNN_KERNELS_CPU_ONLY=1   never build CUDA kernels
    GNN_KERNELS_PORTABLE=1   no -march=native (for wheels shipped to other CPUs)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from setuptools import setup

try:
    import torch
    from torch.utils import cpp_extension
except ImportError:  # build isolation hides the environment's torch
    sys.exit(
        "gnn-kernels is compiled against the torch installed in your environment: "
        "install torch first, then `pip install --no-build-isolation packages/gnn-kernels`"
    )

HERE = Path(__file__).parent
# stable ABI target: torch 2.10, so one binary serves 2.10 and every later release
STABLE_TARGET = "0x020a000000000000"


def want_cuda() -> bool:
    if os.environ.get("GNN_KERNELS_CPU_ONLY") == "1":
        return False
    if os.environ.get("FORCE_CUDA") == "1":
        return True
    return (
        torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None and torch.cuda.is_available()
    )


def extension():
    cpu_sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc" / "cpu").glob("*.cpp"))
    # -fno-trapping-math: no code relies on floating-point traps, and without it GCC does not
    # vectorize loops holding float selects (leaky-relu, max, the attention kernels' exp)
    cxx = [
        "-O3",
        "-std=c++17",
        "-fopenmp-simd",
        "-fno-trapping-math",
        f"-DTORCH_TARGET_VERSION={STABLE_TARGET}",
    ]
    if os.environ.get("GNN_KERNELS_PORTABLE") != "1":
        cxx.append("-march=native")
    if want_cuda():
        # Without a visible GPU torch cannot choose the architectures (it would fail on an empty
        # list): default to A100 and H100 code, plus PTX that newer GPUs compile at load time.
        if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
            os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
        cuda_sources = sorted(str(p.relative_to(HERE)) for p in (HERE / "csrc" / "cuda").glob("*.cu"))
        nvcc = ["-O3", "-std=c++17", f"-DTORCH_TARGET_VERSION={STABLE_TARGET}"]
        return cpp_extension.CUDAExtension(
            "gnn.kernels._C",
            cpu_sources + cuda_sources,
            extra_compile_args={"cxx": cxx + ["-DGNN_WITH_CUDA"], "nvcc": nvcc + ["-DGNN_WITH_CUDA"]},
            py_limited_api=True,
        ), True
    return cpp_extension.CppExtension(
        "gnn.kernels._C", cpu_sources, extra_compile_args={"cxx": cxx}, py_limited_api=True
    ), False


def write_build_info(with_cuda: bool) -> None:
    info = {
        "torch": torch.__version__.split("+")[0],
        "torch_full": torch.__version__,
        "cuda": torch.version.cuda if with_cuda else None,
        "stable_abi_target": "2.10",
    }
    path = HERE / "src" / "gnn" / "kernels" / "_build_info.json"
    path.write_text(json.dumps(info, indent=2) + "\n")


ext, with_cuda = extension()
write_build_info(with_cuda)
setup(
    ext_modules=[ext],
    cmdclass={"build_ext": cpp_extension.BuildExtension.with_options(no_python_abi_suffix=False)},
    options={"bdist_wheel": {"py_limited_api": "cp310"}},
)
