"""Every distribution's pyproject.toml uses the metadata forms its pinned build backend accepts."""

from __future__ import annotations

import re
import sys
import warnings
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[2]
PYPROJECTS = sorted(REPO.glob("packages/*/pyproject.toml")) + [
    REPO / "examples" / "plugin" / "pyproject.toml"
]


def test_every_distribution_is_checked() -> None:
    names = {p.parent.name for p in PYPROJECTS}
    assert {
        "gnn-core",
        "gnn-conv",
        "gnn-aggr",
        "gnn-pool",
        "gnn-models",
        "gnn-hetero",
        "gnn-kernels",
    } <= names
    assert "plugin" in names


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: p.parent.name)
def test_license_is_an_spdx_expression_with_a_backend_that_reads_it(path: Path) -> None:
    config = tomllib.loads(path.read_text())
    assert config["project"]["license"] == "MIT"  # PEP 639 string, not the deprecated {text = ...} table
    (requirement,) = [r for r in config["build-system"]["requires"] if r.startswith("setuptools")]
    match = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", requirement)
    assert match and int(match.group(1)) >= 77, f"{requirement} predates SPDX license strings (setuptools 77)"


@pytest.mark.parametrize("path", PYPROJECTS, ids=lambda p: p.parent.name)
def test_setuptools_reads_the_metadata_without_deprecation_warnings(path: Path, monkeypatch) -> None:
    pytest.importorskip("setuptools", minversion="77")
    from setuptools.config.pyprojecttoml import apply_configuration
    from setuptools.dist import Distribution

    monkeypatch.chdir(path.parent)  # the readme and package folders are relative to the project
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        dist = apply_configuration(Distribution(), "pyproject.toml")
    assert [str(w.message).splitlines()[0] for w in caught] == []
    assert dist.metadata.license_expression == "MIT"
