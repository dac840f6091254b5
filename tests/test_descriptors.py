"""What every descriptor shares: one validated input path, the single-pass force entry point, the
registry, stored reference outputs, and the same results on one and two threads."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from descriptor_reference import BP_MIXED, PATH, PLIP_SMALL, descriptors, frame, outputs
from structures import cluster, wurtzite

import mliplib.descriptors
from mliplib.descriptors import PLIP, BehlerParrinello, Descriptor, descriptor_from_dict
from mliplib.descriptors.base import KINDS
from mliplib.neighbors import NeighborList, Pairs, neighbor_list

KINDS_UNDER_TEST = {"bp": lambda: BehlerParrinello(**BP_MIXED), "plip": lambda: PLIP(**PLIP_SMALL)}


def weights(desc, atoms):
    G = desc.compute(atoms)
    return np.random.default_rng(5).normal(size=G.shape) / np.maximum(1e-3, np.abs(G).max(axis=0))


# ------------------------------------------------------------------------------------------------
# stored reference: the kernels give the numbers they gave before they were rewritten
# ------------------------------------------------------------------------------------------------

def assert_matches_reference(actual, expected, rtol=1e-12):
    """Entry by entry to ``rtol``, with an absolute floor of rtol × 1e-3 of the largest entry of the
    column (G) or array (the rest), for entries that are sums of cancelling terms."""
    largest = np.abs(expected).max(axis=0, keepdims=True) if expected.ndim == 2 else np.abs(expected).max()
    assert actual.shape == expected.shape
    err = np.abs(actual - expected) / (rtol * np.abs(expected) + 1e-3 * rtol * largest + 1e-300)
    assert err.max() <= 1, (err.max(), np.unravel_index(err.argmax(), err.shape))


@pytest.mark.parametrize("kind", ["bp_default", "bp_mixed", "plip_default", "plip_small"])
def test_matches_stored_reference(kind):
    data = np.load(PATH)
    desc = descriptors(mliplib.descriptors)[kind]
    for name in ("wurtzite", "skewed", "cluster"):
        atoms = frame(data, name)
        out = outputs(desc, atoms)
        assert out["G"].shape == (len(atoms), desc.n_features)
        np.testing.assert_array_equal(out["i"], data[f"{kind}/{name}/i"])
        np.testing.assert_array_equal(out["j"], data[f"{kind}/{name}/j"])
        for key in ("G", "gradients", "forces", "virial"):
            expected = data[f"{kind}/{name}/{key}"]
            assert np.abs(expected).max() > 0
            assert_matches_reference(out[key], expected)


# ------------------------------------------------------------------------------------------------
# one validated input path
# ------------------------------------------------------------------------------------------------

def entry_points(desc, atoms, w):
    """Every public evaluation of ``desc``, as name → function of ``neighbors``."""
    return {"compute": lambda nl: desc.compute(atoms, neighbors=nl),
            "compute gradients": lambda nl: desc.compute(atoms, gradients=True, neighbors=nl),
            "forces_and_virial": lambda nl: desc.forces_and_virial(atoms, w, neighbors=nl),
            "values_forces_and_virial": lambda nl: desc.values_forces_and_virial(atoms, w, neighbors=nl)}


@pytest.mark.parametrize("kind", list(KINDS_UNDER_TEST))
def test_every_entry_point_refuses_a_bad_neighbour_list(kind):
    desc = KINDS_UNDER_TEST[kind]()
    atoms = wurtzite()
    w = weights(desc, atoms)
    moved = atoms.copy()
    moved.positions[2] += [0.3, -0.2, 0.1]
    stale = neighbor_list(atoms, desc.cutoff)
    short = neighbor_list(moved, desc.cutoff - 0.5)
    other = neighbor_list(wurtzite().repeat((2, 1, 1)), desc.cutoff)
    for run in entry_points(desc, moved, w).values():
        run(None)
        run(neighbor_list(moved, desc.cutoff + 1.0))
        with pytest.raises(ValueError, match="the list is stale"):
            run(stale)
        with pytest.raises(ValueError, match=f"complete only within {desc.cutoff - 0.5:g} Å"):
            run(short)
        with pytest.raises(ValueError, match="complete only within unknown"):
            run(Pairs(*neighbor_list(moved, desc.cutoff)))
        with pytest.raises(ValueError, match="outside 0..7"):
            run(other)
        with pytest.raises(TypeError, match="must be a mliplib.neighbors.Pairs"):
            run(tuple(stale))


@pytest.mark.parametrize("kind", list(KINDS_UNDER_TEST))
def test_skin_list_gives_the_same_results(kind):
    """A reused NeighborList (atoms moved, list not rebuilt) is accepted and changes nothing."""
    desc = KINDS_UNDER_TEST[kind]()
    atoms = wurtzite()
    nl = NeighborList(desc.cutoff, skin=0.6)
    nl.update(atoms)
    moved = atoms.copy()
    moved.positions += np.random.default_rng(1).uniform(-0.15, 0.15, moved.positions.shape)
    reused = nl.update(moved)
    assert nl.builds == 1
    w = weights(desc, moved)
    for a, b in zip(desc.values_forces_and_virial(moved, w, neighbors=reused), desc.values_forces_and_virial(moved, w)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())


@pytest.mark.parametrize("kind", list(KINDS_UNDER_TEST))
def test_bad_atoms_are_refused_early(kind):
    desc = KINDS_UNDER_TEST[kind]()
    with pytest.raises(ValueError, match=r"atom 0 \(Zn\) and its periodic image \(0, 0, 0\)|lattice has a vector"):
        desc.compute(Atoms("Zn", cell=[0.05, 0.05, 0.05], pbc=True))
    far = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    far.positions[1] += 1e10 * far.cell[0]
    for run in entry_points(desc, far, np.zeros((len(far), desc.n_features))).values():
        with pytest.raises(ValueError, match=r"cells outside the cell.*atoms.wrap\(\)"):
            run(None)
    twin = Atoms("ZnOO", positions=[[0, 0, 0], [0, 0, 2.0], [0, 0, 2.0 + 1e-9]])
    with pytest.raises(ValueError, match=r"atoms 1 \(O\) and 2 \(O, image shift \(0, 0, 0\)\) overlap"):
        desc.compute(twin)
    with pytest.raises(ValueError, match=r"dE_dG must have shape \(n_atoms, n_features\)"):
        desc.forces_and_virial(twin, np.zeros((3, desc.n_features + 1)))
    with pytest.raises(TypeError, match="expected an ase.Atoms"):
        desc.compute(twin.positions)


# ------------------------------------------------------------------------------------------------
# single-pass forces, registry
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KINDS_UNDER_TEST))
@pytest.mark.parametrize("build", [wurtzite, cluster])
def test_values_forces_and_virial_equals_two_passes(kind, build):
    desc = KINDS_UNDER_TEST[kind]()
    atoms = build()
    w = weights(desc, atoms)
    G, forces, virial = desc.values_forces_and_virial(atoms, w)
    assert G.shape == (len(atoms), desc.n_features) and forces.shape == (len(atoms), 3) and virial.shape == (3, 3)
    np.testing.assert_allclose(G, desc.compute(atoms), rtol=1e-13, atol=0)
    f2, v2 = desc.forces_and_virial(atoms, w)
    np.testing.assert_allclose(forces, f2, rtol=1e-13, atol=1e-13 * np.abs(f2).max())
    np.testing.assert_allclose(virial, v2, rtol=1e-13, atol=1e-13 * np.abs(v2).max())
    _, grads = desc.compute(atoms, gradients=True)
    f3, v3 = grads.forces_and_virial(w)
    np.testing.assert_allclose(forces, f3, rtol=1e-10, atol=1e-12 * np.abs(f3).max())
    np.testing.assert_allclose(virial, v3, rtol=1e-10, atol=1e-12 * np.abs(v3).max())


def test_registry():
    assert KINDS["BehlerParrinello"] is BehlerParrinello and KINDS["PLIP"] is PLIP
    with pytest.raises(ValueError, match=r"unknown descriptor kind 'SOAP'; expected one of \['BehlerParrinello'"):
        descriptor_from_dict({"kind": "SOAP"})

    class Counting(Descriptor):
        """A descriptor defined outside mliplib registers itself too."""

        def __init__(self, species):
            self.species_z, self.cutoff, self.feature_names = np.array([30]), 3.0, ["n"]

        def to_dict(self):
            return {"kind": "Counting", "species": self.species}

        def _evaluate(self, mode, species, offsets, j, vectors, dE_dG, G, grad, gpair):
            G[:, 0] = np.diff(offsets)

    try:
        back = descriptor_from_dict(json.loads(json.dumps(Counting(["Zn"]).to_dict())))
        assert isinstance(back, Counting)
        zn2 = Atoms("Zn2", positions=[[0, 0, 0], [0, 0, 2.5]])
        np.testing.assert_array_equal(back.compute(zn2), [[1.0], [1.0]])
    finally:
        del KINDS["Counting"]


# ------------------------------------------------------------------------------------------------
# threads
# ------------------------------------------------------------------------------------------------

THREADS_SCRIPT = """
import sys, numpy as np, numba
sys.path.insert(0, {tests!r})
from test_descriptors import thread_outputs
np.savez({out!r}, *thread_outputs({kind!r}, 2))
"""


def thread_outputs(kind, threads):
    """G, gradients, forces and virial of a 32-atom wurtzite cell on ``threads`` Numba threads."""
    numba.set_num_threads(threads)
    assert numba.get_num_threads() == threads
    desc = KINDS_UNDER_TEST[kind]()
    atoms = wurtzite().repeat((2, 2, 1))
    w = np.cos(np.arange(len(atoms) * desc.n_features)).reshape(len(atoms), -1)
    G, grads = desc.compute(atoms, gradients=True)
    return (G, grads.values, *desc.forces_and_virial(atoms, w))


@pytest.mark.parametrize("kind", list(KINDS_UNDER_TEST))
def test_same_results_on_one_and_two_threads(kind, tmp_path):
    """The kernels split the atoms into chunks run in parallel: 2 threads must give what 1 gives. Run in
    this process when Numba has ≥ 2 threads, else in a child with NUMBA_NUM_THREADS=2."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("this machine has one core: no second thread to compare with")
    saved = numba.get_num_threads()
    try:
        one = thread_outputs(kind, 1)
        if numba.config.NUMBA_NUM_THREADS >= 2:
            two = thread_outputs(kind, 2)
        else:
            out = tmp_path / "two.npz"
            script = THREADS_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out), kind=kind)
            subprocess.run([sys.executable, "-c", script], check=True, env={**os.environ, "NUMBA_NUM_THREADS": "2"})
            two = [np.load(out)[f"arr_{k}"] for k in range(len(one))]
    finally:
        numba.set_num_threads(saved)
    for a, b in zip(one, two):
        np.testing.assert_allclose(b, a, rtol=1e-13, atol=1e-13 * np.abs(a).max())
