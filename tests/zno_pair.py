"""A cheap, smooth ZnO model potential used only to label test frames (no DFT needed, deterministic).

Pair terms (every pair tapered to zero between 4.5 and 5.5 Å by a C² quintic switch s(r)):

    φ_ZnO(r) = D [(1 − e^{−a (r − r0)})² − 1],      φ_ZnZn(r) = φ_OO(r) = B e^{−(r − 3.2 Å)/ρ}

plus a Stillinger–Weber-like bond-angle term on the Zn–O bonds (r < 2.9 Å, switched off from 2.4 Å),
which keeps the tetrahedral (wurtzite) network stable where a pure pair potential would collapse to a
close-packed structure:

    E3 = λ Σ_i Σ_{j<k ∈ bonds(i)} (cos θ_jik + 1/3)² f(r_ij) f(r_ik)

D = 1 eV, a = 2 Å⁻¹, r0 = 1.98 Å, B = 0.1 eV, ρ = 0.3 Å, λ = 2 eV. Forces and stress are exact
derivatives (PyTorch autograd with respect to positions and a homogeneous strain). It is not a model of
ZnO, only a smooth energy surface with a stable wurtzite minimum (a ≈ 3.3 Å, c/a ≈ 1.6 after
:func:`relaxed_wurtzite`) to train small mliplib models on.
"""

from __future__ import annotations

import numpy as np
import torch
from ase.calculators.calculator import Calculator, all_changes
from ase.neighborlist import neighbor_list

R_ON, R_CUT = 4.5, 5.5
BOND_ON, BOND_CUT = 2.4, 2.9
D, A_MORSE, R0, B, RHO, LAMBDA = 1.0, 2.0, 1.98, 0.1, 0.3, 2.0


def _switch(r, r_on, r_cut):
    x = torch.clamp((r - r_on) / (r_cut - r_on), 0.0, 1.0)
    return 1.0 - x ** 3 * (10.0 - 15.0 * x + 6.0 * x * x)


class ZnOPair(Calculator):
    """ASE calculator for the model potential above (energy, forces, stress)."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        i, j, shifts = neighbor_list("ijS", atoms, R_CUT)
        pos = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
        strain = torch.zeros((3, 3), dtype=torch.float64, requires_grad=True)
        deform = torch.eye(3, dtype=torch.float64) + 0.5 * (strain + strain.T)
        cell = torch.tensor(atoms.cell.array, dtype=torch.float64) @ deform
        r_all = pos @ deform
        vec = r_all[j] - r_all[i] + torch.tensor(shifts, dtype=torch.float64) @ cell
        d = torch.linalg.norm(vec, dim=1)
        z = torch.tensor(atoms.numbers)
        unlike = z[i] != z[j]
        ex = torch.exp(-A_MORSE * (d - R0))
        phi = torch.where(unlike, D * ((1.0 - ex) ** 2 - 1.0), B * torch.exp(-(d - 3.2) / RHO))
        energy = 0.5 * torch.sum(phi * _switch(d, R_ON, R_CUT))
        # bond-angle term over pairs of Zn–O bonds sharing a centre (CSR order: i ascending)
        bond = np.flatnonzero(unlike.numpy() & (d.detach().numpy() < BOND_CUT))
        centre = i[bond]
        first, second = [], []
        for c in np.unique(centre):
            members = bond[centre == c]
            a, b = np.triu_indices(len(members), 1)
            first.append(members[a])
            second.append(members[b])
        if first:
            p, q = np.concatenate(first), np.concatenate(second)
            cos = torch.sum(vec[p] * vec[q], dim=1) / (d[p] * d[q])
            f = _switch(d, BOND_ON, BOND_CUT)
            energy = energy + LAMBDA * torch.sum((cos + 1.0 / 3.0) ** 2 * f[p] * f[q])
        g_pos, g_strain = torch.autograd.grad(energy, (pos, strain))
        self.results = {"energy": energy.item(), "free_energy": energy.item(), "forces": -g_pos.numpy()}
        if atoms.pbc.all():
            sigma = g_strain.numpy() / atoms.get_volume()
            self.results["stress"] = sigma.ravel()[[0, 4, 8, 5, 2, 1]]


def relaxed_wurtzite():
    """The 4-atom wurtzite cell relaxed (a, c, u) with :class:`ZnOPair`."""
    from ase.build import bulk
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS
    atoms = bulk("ZnO", "wurtzite", a=3.29, c=5.30, u=0.38)
    atoms.calc = ZnOPair()
    atoms.set_constraint(FixSymmetry(atoms))
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=1e-5, steps=300)
    atoms.set_constraint()
    atoms.calc = None
    return atoms
