"""Sessions of the gnn workspace (``pip install nox``, then ``nox -s <session>``).

tests(package=...)   one environment per distribution, holding only that
                     distribution, its gnn dependencies (CONTRIBUTING.md, the package table), torch
                     and pytest; runs ``tests/<name>``. ``package='all'``
                     installs all seven + torch_geometric + the example
                     plugin and runs the whole ``tests/`` tree.
lint                 ruff check + ruff format --check
demo                 trains a GCN on Zachary's karate club and prints its accuracy
build                the seven wheels into dist/; fails if one ships gnn/__init__.py
bench                every benchmarks/bench_*.py (and import_time.py), PyG side by side
optional_backends    torch-scatter/torch-sparse adapters (compiles both; not in CI)
kernels_cuda         compiles the CUDA kernels against torch 2.14.1+cu130 (no GPU: compile only)

Every environment gets torch first, from ``GNN_TORCH_SPEC`` (default
``torch==2.13.0``, whose CPU wheel pip finds on the local disk), so that pip
never resolves an unpinned torch to a multi-GB CUDA build. torch is
installed once into a cache folder and hard-linked into each environment
(seconds instead of ~40 s each); ``GNN_NOX_TORCH_LINK=0`` installs it with
pip in every environment instead. gnn's packages are installed as wheels
(not editable), built once per source state into ``.nox/_cache/wheels``
with ``--no-build-isolation`` (gnn-kernels compiles against the torch of
the environment).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".nox" / "_cache"
TORCH_SPEC = os.environ.get("GNN_TORCH_SPEC", "torch==2.13.0")
PYG_SPEC = "torch_geometric==2.8.1"
RUFF_SPEC = "ruff==0.17.6"
PYTEST_SPECS = ["pytest>=8", "pytest-xdist>=3.5"]
LINT_PATHS = ["packages", "tests", "examples", "benchmarks", "noxfile.py"]

#: gnn distributions each distribution depends on (CONTRIBUTING.md, the package table)
DEPENDS: dict[str, list[str]] = {
    "gnn-core": [],
    "gnn-aggr": ["gnn-core"],
    "gnn-conv": ["gnn-core", "gnn-aggr"],
    "gnn-pool": ["gnn-core", "gnn-aggr", "gnn-conv"],
    "gnn-models": ["gnn-core", "gnn-aggr", "gnn-conv", "gnn-pool"],
    "gnn-hetero": ["gnn-core", "gnn-conv"],
    "gnn-kernels": [],
}
#: optional extras installed in the 'all' environment, so that no test is skipped there
EXTRAS: dict[str, str] = {"gnn-pool": "faiss", "gnn-models": "captum,hub,ase"}
#: more of what the 'all' environment holds: PyG to compare against, tabulate for its summary(),
#: sympy and scipy for PyG's DimeNet bases (gnn's are closed-form; PyG's are compared against)
ALL_TEST_EXTRAS = [PYG_SPEC, "tabulate", "sympy", "scipy"]
EXAMPLE_PLUGIN = ROOT / "examples" / "plugin"

nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]


# -- helpers ----------------------------------------------------------------------------------
def closure(dist: str) -> list[str]:
    """``dist`` and everything it needs, dependencies first."""
    order: list[str] = []

    def visit(name: str) -> None:
        for dep in DEPENDS[name]:
            visit(dep)
        if name not in order:
            order.append(name)

    visit(dist)
    return order


def package_dir(dist: str) -> Path:
    return ROOT / "packages" / dist


def _site_packages(session: nox.Session) -> Path:
    out = session.run(
        "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", silent=True
    )
    return Path(str(out).strip().splitlines()[-1])


def _project(dist_info: str) -> str:
    return dist_info.split("-")[0].lower().replace("_", "-")


def _link(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy
        shutil.copy2(src, dst)


def pip_install(session: nox.Session, *args: str) -> None:
    """``pip install`` that may never replace the environment's torch."""
    constraints = CACHE / "constraints.txt"
    constraints.parent.mkdir(parents=True, exist_ok=True)
    pinned = TORCH_SPEC if TORCH_SPEC.startswith("torch") and "==" in TORCH_SPEC else ""
    constraints.write_text(pinned + "\n")
    session.run("python", "-m", "pip", "install", "--quiet", "-c", str(constraints), *args)


def install_torch(session: nox.Session) -> None:
    """Put ``TORCH_SPEC`` into the session's environment before anything else."""
    site = _site_packages(session)
    if any(site.glob("torch-*.dist-info")):  # a reused environment
        return
    if os.environ.get("GNN_NOX_TORCH_LINK", "1") == "0":
        pip_install(session, TORCH_SPEC, "numpy")
        return
    # one layer per torch spec and Python version (pythonX.Y), shared by every environment;
    # numpy too: torch warns "Failed to initialize NumPy" at import without it
    key = hashlib.sha256(f"{TORCH_SPEC}|numpy|{sys.platform}".encode()).hexdigest()[:12]
    layer = CACHE / f"torch-{site.parent.name}-{key}"
    if not (layer / ".complete").exists():
        shutil.rmtree(layer, ignore_errors=True)
        session.run("python", "-m", "pip", "install", "--quiet", "--target", str(layer), TORCH_SPEC, "numpy")
        (layer / ".complete").touch()
    present = {_project(p.name) for p in site.glob("*.dist-info")}
    for entry in sorted(layer.iterdir()):
        target = site / entry.name
        if entry.name in {"bin", "share", ".complete"} or target.exists():
            continue  # console scripts and data are not needed; what the venv has (setuptools) stays
        if entry.name.endswith(".dist-info") and _project(entry.name) in present:
            continue
        if entry.is_dir():
            shutil.copytree(entry, target, copy_function=_link)
        else:
            _link(str(entry), str(target))
    session.run("python", "-c", "import torch; print('torch', torch.__version__)")


def _source_hash(path: Path, extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    skip = {"build", "dist", "__pycache__"}
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path)
        if file.is_dir() or skip & set(rel.parts) or rel.parts[-1].endswith((".so", ".pyc")):
            continue
        if any(part.endswith(".egg-info") for part in rel.parts) or rel.name == "_build_info.json":
            continue
        digest.update(str(rel).encode() + b"\0" + file.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_wheel(session: nox.Session, source: Path, env: dict[str, str] | None = None) -> Path:
    """Wheel of the project at ``source``, built once per source state (and torch, for kernels)."""
    compiled = (source / "setup.py").exists()
    extra = f"{TORCH_SPEC}|{sys.platform}|{_site_packages(session).parent.name}|{env}" if compiled else ""
    out = CACHE / "wheels" / f"{source.name}-{_source_hash(source, extra)}"
    wheels = list(out.glob("*.whl"))
    if wheels:
        return wheels[0]
    # --no-build-isolation builds with what the environment has: setuptools (and torch + ninja)
    pip_install(session, "setuptools>=77", *(["ninja"] if compiled else []))
    # build from a clean copy: a stale build/ folder in the tree must never end up in a wheel
    tmp = Path(session.create_tmp()) / "src" / source.name
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(
        source, tmp, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__", "*.so")
    )
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    session.run(
        "python", "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
        "--wheel-dir", str(staging), str(tmp), env=env or {},
    )  # fmt: skip
    staging.rename(out)
    return next(out.glob("*.whl"))


def wheel_problems(wheel: Path, dist: str) -> list[str]:
    """What is wrong with a gnn wheel: ``gnn/__init__.py`` or files outside ``gnn/<name>/``."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    allowed = (f"gnn/{dist.removeprefix('gnn-')}/",) + (("gnn/nn/",) if dist == "gnn-core" else ())
    outside = sorted(n for n in names if not n.startswith(allowed) and ".dist-info/" not in n)
    problems = []
    if "gnn/__init__.py" in names:
        problems.append(f"{wheel.name} ships gnn/__init__.py (gnn must stay a namespace package)")
    if outside:
        problems.append(f"{wheel.name} ships files outside {' or '.join(allowed)}: {outside}")
    return problems


def _installed_gnn(site: Path) -> list[str]:
    """The gnn distributions installed in ``site`` (from their .dist-info folders)."""
    names = {_project(info.name) for info in site.glob("gnn_*.dist-info")}
    return sorted(names - {"gnn-example-plugin"})


def install_gnn(
    session: nox.Session, dists: list[str], extras: bool = False, also: tuple[str, ...] = ()
) -> None:
    """Install ``dists`` (a dependency-closed set) as wheels, non-editable, plus ``also``.

    One pip call resolves everything (pluggy, extras, test tools); a reused
    environment first gets the wheels' current content (same version, so pip
    would otherwise keep the old files).
    """
    missing = {dep for dist in dists for dep in DEPENDS[dist]} - set(dists)
    if missing:
        session.error(f"{dists} is not closed under its dependencies: add {sorted(missing)}")
    wheels = {dist: build_wheel(session, package_dir(dist)) for dist in dists}
    problems = [p for dist, wheel in wheels.items() for p in wheel_problems(wheel, dist)]
    if problems:
        session.error("\n".join(problems))
    site = _site_packages(session)
    if _installed_gnn(site):
        local = [str(w) for w in wheels.values()] + [a for a in also if a.endswith(".whl")]
        pip_install(session, "--no-deps", "--force-reinstall", *local)
    requirements = [
        f"{wheel}[{EXTRAS[dist]}]" if extras and dist in EXTRAS else str(wheel)
        for dist, wheel in wheels.items()
    ]
    pip_install(session, *requirements, *also)
    got = _installed_gnn(site)
    if got != sorted(dists):  # e.g. a dependency missing from DEPENDS, pulled from an index
        session.error(f"installed gnn distributions {got}, expected exactly {sorted(dists)}")


def check_declared_dependencies(session: nox.Session) -> None:
    """DEPENDS mirrors the package table of CONTRIBUTING.md; each pyproject must declare exactly that."""
    import tomllib

    for dist, deps in DEPENDS.items():
        project = tomllib.loads((package_dir(dist) / "pyproject.toml").read_text())["project"]
        declared = sorted(
            r.split(">")[0].split("<")[0].split("=")[0].split("[")[0].strip()
            for r in project.get("dependencies", [])
            if r.startswith("gnn-")
        )
        if declared != sorted(deps):
            session.error(
                f"{dist}/pyproject.toml depends on {declared}, the package table (CONTRIBUTING.md) says {sorted(deps)}"
            )


# -- sessions ---------------------------------------------------------------------------------
@nox.session
@nox.parametrize("package", [*DEPENDS, "all"])
def tests(session: nox.Session, package: str) -> None:
    """Tests of one distribution in an environment of its own, or of everything ('all')."""
    check_declared_dependencies(session)
    install_torch(session)
    if package == "all":
        plugin = str(build_wheel(session, EXAMPLE_PLUGIN))
        install_gnn(session, list(DEPENDS), extras=True, also=(*PYTEST_SPECS, *ALL_TEST_EXTRAS, plugin))
        paths = ["tests"]
    else:
        install_gnn(session, closure(package), also=tuple(PYTEST_SPECS))
        paths = [f"tests/{package.removeprefix('gnn-')}"]
    workers = os.environ.get("GNN_TEST_WORKERS", "2")
    session.run(
        "python", "-m", "pytest", *paths, "-n", workers, "--dist", "loadfile", *session.posargs,
        env={"OMP_NUM_THREADS": "1"},
    )  # fmt: skip


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    pip_install(session, RUFF_SPEC)
    session.run("ruff", "check", *LINT_PATHS)
    session.run("ruff", "format", "--check", *LINT_PATHS)


@nox.session
def demo(session: nox.Session) -> None:
    """Train a 2-layer GCN on the karate club (embedded dataset) and print its accuracy."""
    install_torch(session)
    install_gnn(session, closure("gnn-conv"))
    session.run("python", "examples/karate_demo.py", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Build the seven wheels into dist/; fail if any ships ``gnn/__init__.py``."""
    install_torch(session)
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    dist.mkdir()
    bad = []
    for name in DEPENDS:
        # portable: no -march=native in a wheel meant for other machines
        wheel = build_wheel(session, package_dir(name), env={"GNN_KERNELS_PORTABLE": "1"})
        shutil.copy2(wheel, dist / wheel.name)
        bad += wheel_problems(wheel, name)
        session.log(f"{wheel.name}: {len(zipfile.ZipFile(wheel).namelist())} files")
    if bad:
        session.error("\n".join(bad))


@nox.session
def bench(session: nox.Session) -> None:
    """Every benchmarks/bench_*.py plus the import-time benchmark, PyG side by side."""
    install_torch(session)
    install_gnn(session, list(DEPENDS), also=(PYG_SPEC,))
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py")) + [ROOT / "benchmarks" / "import_time.py"]
    for script in scripts:
        session.run("python", str(script.relative_to(ROOT)), *session.posargs)


@nox.session
def optional_backends(session: nox.Session) -> None:
    """torch-scatter / torch-sparse adapters (compiles both from source: 10-30 min; not in CI).

    Runs the adapter tests and the conv suite with ``SparseTensor`` inputs in the mix.
    """
    install_torch(session)
    pip_install(session, "setuptools", "wheel", "numpy", "scipy")
    pip_install(session, "--no-build-isolation", "torch-scatter", "torch-sparse")
    install_gnn(session, closure("gnn-conv"), also=tuple(PYTEST_SPECS))
    session.run(
        "python", "-m", "pytest", "tests/integration/test_optional_backends.py", "tests/conv",
        "tests/core/test_message_passing.py", *session.posargs,
    )  # fmt: skip


@nox.session(python=False)
def kernels_cuda(session: nox.Session) -> None:
    """Compile gnn-kernels' CUDA kernels against torch 2.14.1+cu130 (compile only: no GPU here)."""
    session.run("bash", "packages/gnn-kernels/tools/build_cuda.sh", external=True)
