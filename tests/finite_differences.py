"""Shared check of descriptor gradients: forces and virial of a linear energy E = Σ w·G against central
finite differences of atomic positions and of a homogeneous cell strain."""

import numpy as np


def energy(desc, atoms, w) -> float:
    return float(np.sum(desc.compute(atoms) * w))


def check_forces_and_virial(desc, atoms, w, grads, h=1e-5) -> None:
    """``grads`` (from ``desc.compute(atoms, gradients=True)``) contracted with ``w`` must equal −dE/dx
    and, for periodic cells, the strain derivative (dE/dε_xy = −W[y, x], ASE stress = −W/V); the
    on-the-fly ``forces_and_virial`` must equal the stored-gradient contraction."""
    forces, virial = grads.forces(w), grads.virial(w)
    fd = np.zeros_like(forces)
    for a in range(len(atoms)):
        for x in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, x] += h
            minus.positions[a, x] -= h
            fd[a, x] = -(energy(desc, plus, w) - energy(desc, minus, w)) / (2 * h)
    np.testing.assert_allclose(forces, fd, rtol=1e-6, atol=1e-7 * np.abs(fd).max())
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-10 * np.abs(forces).max())
    f2, v2 = desc.forces_and_virial(atoms, w)
    np.testing.assert_allclose(f2, forces, rtol=1e-10, atol=1e-12 * np.abs(forces).max())
    np.testing.assert_allclose(v2, virial, rtol=1e-10, atol=1e-12 * np.abs(virial).max())
    if not atoms.pbc.any():
        return
    dEde = np.zeros((3, 3))
    for x in range(3):
        for y in range(3):
            e = np.zeros((3, 3))
            e[x, y] = h
            vals = []
            for sign in (1, -1):
                at = atoms.copy()
                at.set_cell(atoms.cell.array @ (np.eye(3) + sign * e).T, scale_atoms=True)
                vals.append(energy(desc, at, w))
            dEde[x, y] = (vals[0] - vals[1]) / (2 * h)
    np.testing.assert_allclose(-virial.T, dEde, rtol=1e-6, atol=1e-7 * np.abs(dEde).max())
    np.testing.assert_allclose(virial, virial.T, atol=1e-9 * np.abs(virial).max())
