"""Slab analysis of mliplib.properties.surfaces: planes, relaxation pattern, γ from stored relaxation frames."""

import numpy as np
import pytest
from ase.calculators.lj import LennardJones
from ase.neighborlist import neighbor_list

from mliplib.properties import (
    EV_PER_A2_TO_J_PER_M2,
    coordination_numbers,
    relaxed_surface_energy,
    slab_layers,
    surface_energies_from_frames,
    surface_relaxation,
)
from zno_book.structures import nonpolar_slab, polymorph

A = 3.25
IDEAL = {"a": A, "c": A * np.sqrt(8 / 3), "u": 0.375}  # tetrahedral wurtzite: four equal bonds 3c/8


def slab_and_bulk(miller, layers, a, c, u, vacuum=6.0):
    """The slab and the bulk wurtzite cell with the same lattice (what relaxed_surface_energy compares)."""
    return nonpolar_slab(miller, layers, vacuum, a, c, u), polymorph("wurtzite", a=a, c=c, u=u)


def nearest_neighbour_lj(rc=2.6, epsilon=0.5):
    """LJ with its minimum at the ideal Zn–O bond and a cutoff before the second shell."""
    d = IDEAL["u"] * IDEAL["c"]
    return LennardJones(sigma=d / 2 ** (1 / 6), epsilon=epsilon, rc=rc)


@pytest.mark.parametrize("miller, layers, planes", [("10-10", 6, 12), ("11-20", 8, 8)])
def test_slab_layers_count_planes_from_each_face(miller, layers, planes):
    slab = nonpolar_slab(miller, layers, 6.0, **IDEAL)
    layer, side, height = slab_layers(slab)
    assert layer.max() + 1 == planes // 2
    assert np.sum(side > 0) == np.sum(side < 0) == len(slab) // 2
    for k in range(planes // 2):  # every plane is stoichiometric, on both faces
        for s in (1, -1):
            sel = (layer == k) & (side == s)
            assert np.sum(slab.numbers[sel] == 30) == np.sum(slab.numbers[sel] == 8) > 0
    top = height[side > 0].max()
    assert np.all(layer[np.isclose(height, top)] == 0) and np.all(side[np.isclose(height, top)] == 1)
    with pytest.raises(ValueError):
        slab_layers(slab, tol=0.0)


def test_surface_relaxation_of_a_prescribed_displacement():
    """Move the outermost Zn of both faces 0.2 Å inward and the outermost O 0.05 Å outward: the profile,
    the tilt atan(0.25 Å / in-plane dimer length) and the bond length follow by hand."""
    slab = nonpolar_slab("10-10", 4, 6.0, **IDEAL)
    layer, side, _ = slab_layers(slab)
    moved = slab.copy()
    outer = layer == 0
    moved.positions[outer & (slab.numbers == 30), 2] -= 0.2 * side[outer & (slab.numbers == 30)]
    moved.positions[outer & (slab.numbers == 8), 2] += 0.05 * side[outer & (slab.numbers == 8)]
    r = surface_relaxation(slab, moved)
    assert r.surface_a == pytest.approx(-0.2) and r.surface_b == pytest.approx(0.05)  # Zn, O
    swapped = surface_relaxation(slab, moved, species=("O", "Zn"))  # the other species first
    assert np.allclose(swapped.displacement, r.displacement[:, ::-1]) and swapped.tilt == pytest.approx(-r.tilt)
    assert np.allclose(r.displacement[1:], 0.0)
    assert r.tilt_initial == pytest.approx(0.0, abs=1e-9)
    assert r.n_bonds == 2  # one surface dimer per face in the a × c cell
    assert r.bond_initial == pytest.approx(IDEAL["u"] * IDEAL["c"])  # the dimer is a bulk bond, lying flat
    assert r.tilt == pytest.approx(np.degrees(np.arctan2(0.25, r.bond_initial)))
    assert r.bond == pytest.approx(np.hypot(0.25, r.bond_initial))
    assert r.max_displacement == pytest.approx(0.2)
    with pytest.raises(ValueError):
        surface_relaxation(slab, moved[:-1])


def _as_relaxation(task, frames):
    """Frames written like zno_book.reference.runner.run_relax: task, relax_step, relax_final, energy."""
    out = []
    for step, atoms in enumerate(frames):
        a = atoms.copy()
        a.info.update(task=task, relax_step=step, relax_final=step == len(frames) - 1, relax_converged=True,
                      energy=atoms.get_potential_energy())
        out.append(a)
    return out


def test_surface_energies_from_frames_match_the_calculator_route_and_the_bond_count():
    calc = nearest_neighbour_lj()
    # ideal lattice: nothing relaxes and γ is the broken-bond count (one per outermost atom)
    ideal = relaxed_surface_energy(calc, *slab_and_bulk("10-10", 4, **IDEAL), fmax=0.01)
    assert ideal.max_displacement == pytest.approx(0.0, abs=1e-9)
    # strained lattice: the slab relaxes
    strained = relaxed_surface_energy(calc, *slab_and_bulk("11-20", 4, A, 1.02 * IDEAL["c"], 0.36), fmax=0.01)
    assert 0 < strained.max_displacement < 1.0
    frames = (_as_relaxation("surfaces/bulk", [strained.bulk, strained.relaxed_bulk])
              + _as_relaxation("surfaces/11-20", [strained.slab, strained.relaxed_slab]))
    got = surface_energies_from_frames(frames)
    assert set(got) == {"11-20"}
    assert got["11-20"]["gamma_unrelaxed"] == pytest.approx(strained.gamma_unrelaxed, rel=1e-12)
    assert got["11-20"]["gamma_relaxed"] == pytest.approx(strained.gamma_relaxed, rel=1e-12)
    assert got["11-20"]["steps"] == 1 and got["11-20"]["converged"]
    # the ideal slab as a one-frame "relaxation" with its own bulk: the analytic broken-bond value
    frames = (_as_relaxation("surfaces/bulk", [ideal.bulk])
              + _as_relaxation("surfaces/10-10", [ideal.slab]))
    got = surface_energies_from_frames(frames)["10-10"]
    missing = np.sum(4 - coordination_numbers(ideal.slab, 2.6))
    d = IDEAL["u"] * IDEAL["c"]
    e_bond = -calc.parameters.epsilon - 4 * calc.parameters.epsilon * ((calc.parameters.sigma / 2.6) ** 12
                                                                       - (calc.parameters.sigma / 2.6) ** 6)
    assert np.isclose(calc.parameters.sigma * 2 ** (1 / 6), d)
    expected = -e_bond * missing / (4 * got["area"]) * EV_PER_A2_TO_J_PER_M2
    assert got["gamma_unrelaxed"] == pytest.approx(expected, rel=1e-9)
    assert got["gamma_relaxed"] == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match="bulk"):
        surface_energies_from_frames(frames[1:])


def test_unfinished_slab_relaxation_has_no_relaxed_gamma():
    calc = nearest_neighbour_lj()
    r = relaxed_surface_energy(calc, *slab_and_bulk("10-10", 4, **IDEAL), fmax=0.01)
    frames = _as_relaxation("surfaces/bulk", [r.bulk]) + _as_relaxation("surfaces/10-10", [r.slab, r.relaxed_slab])
    frames[-1].info["relax_final"] = False
    got = surface_energies_from_frames(frames)["10-10"]
    assert np.isfinite(got["gamma_unrelaxed"]) and np.isnan(got["gamma_relaxed"])


@pytest.mark.parametrize("miller, layers", [("10-10", 6), ("11-20", 8)])
def test_nonpolar_slab_has_complete_outer_planes_at_any_lattice(miller, layers):
    """Every outermost atom is threefold coordinated, every other one fourfold, for lattices around the
    PBE one; (11-20) at a = 3.28028 Å, c = 5.29959 Å, u = 0.37794 (a model's relaxed wurtzite) used to
    come out with split outer planes and twofold-coordinated atoms (a rounding wrap in ase.build.surface)."""
    rng = np.random.default_rng(1)
    lattices = [(3.280281864770031, 5.299590891438951, 0.3779396166669492)]
    lattices += [(a, a * ratio, u) for a, ratio, u in zip(rng.uniform(3.15, 3.40, 40), rng.uniform(1.56, 1.65, 40),
                                                         rng.uniform(0.372, 0.388, 40))]
    for a, c, u in lattices:
        slab = nonpolar_slab(miller, layers, 6.0, a, c, u)
        layer, _, _ = slab_layers(slab)
        coordination = np.bincount(neighbor_list("i", slab, 2.3), minlength=len(slab))
        assert np.all(coordination[layer == 0] == 3) and np.all(coordination[layer > 0] == 4), (a, c, u)
        assert np.sum(layer == 0) == len(slab) // (6 if miller == "10-10" else 4)
