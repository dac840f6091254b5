"""Small structure helpers shared by the descriptor tests."""

import numpy as np


def rattle(atoms, sigma, seed):
    """Copy of ``atoms`` with Gaussian displacements of width ``sigma`` (Å), reproducible by ``seed``."""
    out = atoms.copy()
    out.positions += np.random.default_rng(seed).normal(0, sigma, out.positions.shape)
    return out
