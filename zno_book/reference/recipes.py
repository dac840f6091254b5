"""Recipes: JSON descriptions of how a structure is built, so every frame records its own provenance.

A recipe is a list of steps, each ``{"op": name, **arguments}``, applied in order; the first step
creates the structure. Example::

    [{"op": "polymorph", "name": "wurtzite"}, {"op": "supercell", "reps": [2, 1, 1]},
     {"op": "strain", "strain": 0.02}, {"op": "rattle", "sigma": 0.1, "seed": 3}]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from mliplib import builders
from mliplib.properties.vibrations import phonon_displacements
from zno_book import structures as st


def n_frames(path: Path) -> int:
    """Frames in an extxyz file.

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    int
        Number of frames; 0 if the file does not exist.
    """
    return len(read(path, index=":")) if path.exists() else 0


def _frame(atoms, file: str, index: int, root: str):
    """Frame ``index`` of ``root/file`` (FileNotFoundError while the sampler has not written it)."""
    path = Path(root) / file
    if index >= n_frames(path):
        raise FileNotFoundError(f"frame {index} of {path} does not exist yet (run the sampler)")
    frame = read(path, index=index)
    frame.calc = None
    return frame


def _relaxed(atoms, file: str, task: str, root: str):
    """The final frame of relaxation ``task`` in ``file`` (FileNotFoundError while it is not done)."""
    path = Path(root) / file
    frames = read(path, index=":") if path.exists() else []
    final = [f for f in frames if f.info.get("task") == task and f.info.get("relax_final")]
    if not final:
        raise FileNotFoundError(f"relaxation {task!r} is not in {path} yet")
    frame = final[-1]
    frame.calc = None
    frame.info = {"phase": frame.info.get("phase", "")}
    return frame


def _contact(atoms, pair, distance: float, seed: int):
    """``atoms`` with one pair pushed to ``distance`` Å: a random atom (``seed``) of species ``pair[0]`` and
    its nearest ``pair[1]`` atom (minimum image) move symmetrically along the line joining them."""
    symbols = np.array(atoms.get_chemical_symbols())
    first = np.flatnonzero(symbols == pair[0])
    i = int(np.random.default_rng(seed).choice(first))
    partners = np.flatnonzero((symbols == pair[1]) & (np.arange(len(atoms)) != i))
    if not len(first) or not len(partners):
        raise ValueError(f"contact {pair}: no such pair in {atoms.get_chemical_formula()}")
    j = int(partners[np.argmin(atoms.get_distances(i, partners, mic=True))])
    vector = atoms.get_distance(i, j, mic=True, vector=True)
    length = np.linalg.norm(vector)
    out = atoms.copy()
    out.positions[i] += (length - distance) / 2 * vector / length
    out.positions[j] -= (length - distance) / 2 * vector / length
    return out


def _phonon_displacement(atoms, supercell, index: int, displacement: float):
    """Displaced supercell ``index`` of phonopy's symmetry-reduced set for ``atoms``."""
    return phonon_displacements(atoms, supercell, displacement)[index]


STEPS = {
    # creators
    "polymorph": lambda _, name, cubic=False, **p: st.polymorph(name, cubic=cubic, **p),
    "path": lambda _, lam: st.transition_path(lam),
    "slab": lambda _, **p: st.nonpolar_slab(**p),
    "liquid": lambda _, n_formula, density, seed: st.random_liquid(n_formula, density, seed),
    "wurtzite_cluster": lambda _, n_formula, seed=0: st.wurtzite_cluster(n_formula, seed),
    "ring_cluster": lambda _, n_formula: st.ring_cluster(n_formula),
    "cage_cluster": lambda _, kind: st.cage_cluster(kind),
    "atom": lambda _, symbol: builders.isolated_atom(symbol),
    "frame": _frame,
    "relaxed": _relaxed,
    # modifiers
    "supercell": lambda a, reps: builders.supercell_of(a, reps),
    "strain": lambda a, strain: builders.strained(a, strain),
    "shear": lambda a, magnitude, seed: builders.strained(a, builders.random_shear(magnitude, seed)),
    "rattle": lambda a, sigma, seed: builders.rattled(a, sigma, seed),
    "box": lambda a, vacuum: builders.in_box(a, vacuum),
    "contact": _contact,
    "phonon_displacement": _phonon_displacement,
}


def build(recipe: list[dict], root: str | Path = ".") -> Atoms:
    """Build the structure a recipe describes.

    Parameters
    ----------
    recipe : list of dict
        Steps ``{"op": name, **arguments}`` (see :data:`STEPS`); the first one creates the structure.
    root : str or Path
        The data folder, against which the files named by ``frame`` and ``relaxed`` steps are resolved.

    Returns
    -------
    ase.Atoms
        The structure (wrapped into its cell when periodic along x, y and z).
    """
    atoms = None
    for step in recipe:
        args = dict(step)
        op = args.pop("op")
        if op not in STEPS:
            raise ValueError(f"unknown recipe step {op!r}; known: {sorted(STEPS)}")
        if op in ("frame", "relaxed"):
            args["root"] = root
        atoms = STEPS[op](atoms, **args)
    if np.all(atoms.pbc):
        atoms.wrap(eps=1e-9)
    return atoms


def dumps(recipe: list[dict]) -> str:
    """Compact JSON of a recipe (what a frame stores in ``info["recipe"]``).

    Parameters
    ----------
    recipe : list of dict
        The steps.

    Returns
    -------
    str
    """
    return json.dumps(recipe, separators=(",", ":"))
