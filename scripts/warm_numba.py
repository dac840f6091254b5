"""Compile mliplib's Numba kernels into their on-disk cache, once, before a reader opens a chapter.

    python scripts/warm_numba.py          # about 2 minutes on one core; later runs take seconds

Every kernel of mliplib is ``@njit(cache=True)``: compiled on its first call in a fresh environment and
read from ``__pycache__`` afterwards. Compiling is most of a chapter's cold time (measured with
``scripts/chapter_budget.py``: about 100 s of CPU per chapter that calls the kernels, against
28 s for the linear chapter when they are cached). Binder's ``postBuild`` runs this script when the
image is built, so that a reader's first chapter starts from compiled kernels, as every chapter after
the first does on a local machine.

The calls are the chapters' own, on small ZnO cells: the three shipped models' predictions and a few MD
steps (neighbour list and its reuse with a skin, Behler–Parrinello and PLIP descriptors with gradients,
force and virial scatter), the linear
design matrices (forces and stresses), descriptors without gradients, the structure analyses (g(r),
angles, coordination, shortest distances) and the descriptor-space statistics (neighbour distances,
densities, information imbalance, duplicates).
"""

from __future__ import annotations

import time

import numpy as np
from ase import units
from ase.md.verlet import VelocityVerlet

from mliplib.descriptors import PLIP, BehlerParrinello
from mliplib.properties.structure import (
    bond_angle_distribution,
    coordination_numbers,
    rdf,
    shortest_distance,
    shortest_pair_distance,
)
from mliplib.transferability import (
    imbalance_with_error,
    information_imbalance,
    knn_density,
    kth_neighbor_distance,
    unique_points,
)
from zno_book import zoo
from zno_book.structures import polymorph


def cells() -> list:
    """A rattled 4-atom wurtzite cell and a rattled 32-atom supercell (positions in Å)."""
    rng = np.random.default_rng(0)
    small, large = polymorph("wurtzite"), polymorph("wurtzite").repeat((2, 2, 2))
    for atoms in (small, large):
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
    return [small, large]


def warm_models(frames: list) -> None:
    """Predictions of the shipped models, and the linear models' design matrices."""
    for kind in zoo.KINDS:
        model = zoo.load_or_train(kind, retrain=False, progress=False)
        for atoms in frames:
            model.predict(atoms)
        md = frames[1].copy()  # a few MD steps: the calculator's neighbour list is reused with a skin
        md.calc = model.calculator()
        VelocityVerlet(md, timestep=1.0 * units.fs).run(3)
    labelled = []
    for atoms in frames:
        atoms = atoms.copy()
        atoms.info["energy"], atoms.arrays["forces"] = 0.0, np.zeros((len(atoms), 3))
        atoms.info["stress"] = np.zeros(6)
        labelled.append(atoms)
    for kind in ("linear_bp", "plip"):
        zoo.build(kind).design_matrix(labelled)


def warm_structure(frames: list) -> None:
    """Descriptors with and without gradients, and the structure analyses of the chapters."""
    for descriptor in (BehlerParrinello.default_zno(), PLIP.default_zno()):
        for atoms in frames:
            descriptor.compute(atoms)
            values, gradients = descriptor.compute(atoms, gradients=True)
            gradients.forces_and_virial(np.ones_like(values))  # forces of a given ∂E/∂G
    rdf(frames, 6.0, 60, pairs=[("Zn", "O"), ("O", "O")])
    bond_angle_distribution(frames, "Zn", "O", 2.6)
    coordination_numbers(frames[1], {("Zn", "O"): 2.6})
    shortest_distance(frames[1])
    shortest_pair_distance(frames, "O", "O")


def warm_statistics() -> None:
    """The descriptor-space statistics of the transferability chapter, on random points."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(200, 6)), rng.normal(size=(200, 4))
    kth_neighbor_distance(a, a[:50], k=3)
    knn_density(a, k=10)
    information_imbalance(a, b)
    imbalance_with_error(a, b, n_subsets=2, seed=0)
    unique_points(a, tol=1e-6)


def main() -> int:
    start = time.perf_counter()
    frames = cells()
    warm_models(frames)
    warm_structure(frames)
    warm_statistics()
    print(f"mliplib's kernels compiled and cached in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
