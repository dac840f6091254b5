"""environment.yml (Binder, conda-forge) and pyproject.toml (pip) list the same dependencies.

Binder builds the chapters' environment from environment.yml; ``make book`` installs pyproject.toml's
dependencies and its ``book`` extra. A package added to one and not the other would make a chapter run in
one place and fail in the other, so both lists must name the same packages with the same version bounds.
The one exception is PyTorch: pip pins the CPU wheel (``torch==2.13.0``; an unpinned ``torch`` pulls a
CUDA build) and conda selects conda-forge's CPU build (``pytorch=*=cpu*``).
"""

from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest's own dependency tomli is the same parser
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
#: conda-forge's name for a PyPI package, where they differ
CONDA_NAMES = {"torch": "pytorch"}
#: the environment's own tools, not dependencies of the project
CONDA_ONLY = {"python", "pip"}


def pyproject_requirements() -> dict[str, SpecifierSet]:
    """Name (conda-forge's spelling) → version bounds, of the dependencies and the ``book`` extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for line in [*project["dependencies"], *project["optional-dependencies"]["book"]]:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        out[CONDA_NAMES.get(name, name)] = requirement.specifier
    return out


def conda_entry(entry: str) -> tuple[str, str]:
    """``"numpy>=1.24"`` → ``("numpy", ">=1.24")``; ``"pytorch=*=cpu*"`` → ``("pytorch", "=*=cpu*")``."""
    for position, char in enumerate(entry):
        if char in "<>=!~ ":
            return canonicalize_name(entry[:position]), entry[position:].strip()
    return canonicalize_name(entry), ""


def environment_requirements() -> dict[str, str]:
    """Name → version text, of environment.yml's conda and pip entries (without python and pip)."""
    out = {}
    for entry in yaml.safe_load((ROOT / "environment.yml").read_text())["dependencies"]:
        for line in entry["pip"] if isinstance(entry, dict) else [entry]:
            name, spec = conda_entry(line)
            if name not in CONDA_ONLY:
                out[name] = spec
    return out


def test_environment_names_the_same_packages_as_pyproject():
    pip, conda = pyproject_requirements(), environment_requirements()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml (dependencies or book extra), not environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml, not pyproject.toml (dependencies or book extra)"


def test_environment_has_the_same_version_bounds_as_pyproject():
    pip, conda = pyproject_requirements(), environment_requirements()
    differ = {name: (str(pip[name]), conda[name]) for name in pip
              if name != "pytorch" and name in conda and SpecifierSet(conda[name]) != pip[name]}
    assert differ == {}, "name: (pyproject.toml, environment.yml)"


def test_pytorch_is_the_cpu_build_in_both():
    assert str(pyproject_requirements()["pytorch"]).startswith("==")  # the CPU wheel, pinned
    assert environment_requirements()["pytorch"] == "=*=cpu*"
