"""Stored reference outputs of the BP and PLIP kernels, so a rewrite of a kernel cannot change a number.

``descriptor_reference.npz`` holds, for a few frames and descriptors, the values G, per-pair gradients
projected on four fixed weight vectors (a change of any column shows up) and the on-the-fly forces and
virial for fixed per-atom weights, together with the frames themselves. It was written once by the
kernels as of commit 67e7d78 (before they were split into named helpers):

    PYTHONPATH=<tree with those kernels> python tests/descriptor_reference.py

Rewrite it only for an intended change of definitions, never to make a test pass.
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from structures import cluster, skewed, wurtzite

PATH = Path(__file__).with_name("descriptor_reference.npz")
FRAMES = {"wurtzite": wurtzite, "skewed": skewed, "cluster": cluster}
#: every BP code path: shifted G2, G4 and G5 with integer, non-integer and large (> 64) zeta, both lambdas
BP_MIXED = {"species": ["Zn", "O"], "cutoff": 4.5,
                "g2": [(0.5, 0.0), (1.2, 2.0), (0.3, 3.1)],
                "g4": [(0.01, 1, 1), (0.05, 2, -1), (0.02, 4.5, 1), (0.05, 1, -1)],
                "g5": [(0.01, 1, -1), (0.1, 3.5, 1), (0.02, 70, 1), (0.05, 2, -1)]}
PLIP_SMALL = {"species": ["Zn", "O"], "cutoff": 4.5, "a": (0.8, 1.6), "b": (1.9, 2.7, 3.5), "l_max": 4, "m_max": 6,
                  "r_short": {("Zn", "O"): 2.3, ("Zn", "Zn"): 3.4, ("O", "O"): 3.4}}


def descriptors(module):
    """Name → descriptor, built from ``module`` (``mliplib.descriptors`` or an older copy of it)."""
    return {"bp_default": module.BehlerParrinello.default_zno(), "bp_mixed": module.BehlerParrinello(**BP_MIXED),
            "plip_default": module.PLIP.default_zno(), "plip_small": module.PLIP(**PLIP_SMALL)}


def weights(n_rows, n_features, scale, phase):
    """Deterministic, irregular weights (no random stream, which may change between numpy versions),
    divided by ``scale`` (n_features,) so every column contributes comparably."""
    k = np.arange(n_rows * n_features, dtype=np.float64).reshape(n_rows, n_features)
    return np.sin(0.7 * k + phase) * np.cos(0.13 * k * k + 2 * phase) / scale


def outputs(desc, atoms) -> dict:
    """G, gradients projected on 4 weight vectors (n_pairs, 4, 3) with their pairs, forces and virial."""
    G, grads = desc.compute(atoms, gradients=True)
    scale = np.maximum(1e-3, np.abs(G).max(axis=0))
    projection = weights(desc.n_features, 4, 1.0, 0.3) / scale[:, None]
    w = weights(len(atoms), desc.n_features, scale, 1.1)
    forces, virial = desc.forces_and_virial(atoms, w)
    return {"G": G, "i": grads.i, "j": grads.j, "gradients": np.einsum("pfx,fk->pkx", grads.values, projection),
            "forces": forces, "virial": virial}


def frame(data, name) -> Atoms:
    return Atoms(numbers=data[f"{name}/numbers"], positions=data[f"{name}/positions"], cell=data[f"{name}/cell"],
                 pbc=data[f"{name}/pbc"])


def write(module) -> None:
    data = {}
    for name, build in FRAMES.items():
        atoms = build()
        data.update({f"{name}/numbers": atoms.numbers, f"{name}/positions": atoms.positions,
                     f"{name}/cell": atoms.cell.array, f"{name}/pbc": atoms.pbc})
    for kind, desc in descriptors(module).items():
        for name in FRAMES:
            for key, value in outputs(desc, frame(data, name)).items():
                data[f"{kind}/{name}/{key}"] = value
    np.savez_compressed(PATH, **data)


if __name__ == "__main__":
    import mliplib.descriptors

    write(mliplib.descriptors)
