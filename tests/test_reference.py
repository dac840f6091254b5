"""The DFT pipeline end to end with a real GPAW calculation (seconds), and the shipped-data loader."""

import json
import shutil

import numpy as np
import pytest

from zno_book.datasets import load_zno
from zno_book.paths import data_dir
from zno_book.reference.engine import DFTSettings, kpoint_mesh, single_point
from zno_book.reference.plan import Task, all_tasks
from zno_book.reference.recipes import build
from zno_book.reference.runner import Store, work
from zno_book.structures import POLYMORPHS, polymorph

gpaw = pytest.importorskip("gpaw", reason="GPAW is installed by `make test` (make dft)")

CHEAP = DFTSettings(ecut=250.0, kpt_density=1.0)
SHEAR = [[0, 0, 0], [0, 0, 0.02], [0, 0.02, 0]]  # ε_yz = +2 %
RECIPE = ({"op": "polymorph", "name": "rocksalt"}, {"op": "strain", "strain": SHEAR},
          {"op": "rattle", "sigma": 0.05, "seed": 1})


def test_gpaw_single_point_units_and_signs():
    """Forces are −dE/dx of the free energy (finite difference on one coordinate, eV/Å), and a positive
    shear strain ε_yz gives a positive σ_yz (ASE sign; off-diagonal, so free of the isotropic Pulay
    stress that a low cutoff adds to the diagonal)."""
    atoms = build(list(RECIPE))
    result = single_point(atoms, CHEAP)
    h = 0.005
    energies = []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.positions[0, 2] += sign * h
        energies.append(single_point(moved, CHEAP)["energy"])
    fd_force = -(energies[0] - energies[1]) / (2 * h)
    assert result["forces"][0, 2] == pytest.approx(fd_force, abs=0.02)
    assert np.abs(result["forces"].sum(axis=0)).max() < 0.05  # momentum conservation
    assert result["stress"].shape == (6,)
    assert result["stress"][3] > 0.002  # eV/Å³ (0.3 GPa); C44 ≈ 50–100 GPa gives ~2 GPa here
    assert np.isfinite(result["energy"]) and result["wall_time_s"] > 0


def test_runner_appends_labels_and_manifest(tmp_path):
    """A task runs once, lands in <dataset>.extxyz with provenance, the manifest checksums it, the
    loader reads it back with energies, forces and stress, and a rerun skips it."""
    task = Task("convergence/test/cscl", "convergence", "test_cscl", RECIPE, 0,
                settings={"ecut": 250.0, "kpt_density": 1.0})
    store = Store(tmp_path, DFTSettings())
    assert work(store, tasks=[task]) == 1
    assert work(store, tasks=[task]) == 0
    (frame,) = load_zno("convergence", root=tmp_path)
    assert frame.info["task"] == task.name and frame.info["config_type"] == "test_cscl"
    assert json.loads(frame.info["recipe"]) == list(RECIPE)
    assert frame.arrays["forces"].shape == (2, 3) and frame.info["stress"].shape == (6,)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["engine"].startswith("gpaw") and manifest["files"]["convergence.extxyz"]["frames"] == 1
    # a changed file is refused
    with open(tmp_path / "convergence.extxyz", "a") as handle:
        handle.write("\n")
    with pytest.raises(ValueError, match="SHA-256"):
        load_zno("convergence", root=tmp_path)


def test_plan_is_buildable_and_unique():
    tasks = all_tasks()
    by_name = {t.name: t for t in tasks}
    assert len(by_name) == len(tasks)
    for t in tasks:
        if any(step["op"] == "frame" for step in t.recipe):
            continue
        # a relaxation's result stands in for its starting structure (the named task's own recipe)
        recipe = [s for step in t.recipe
                  for s in (by_name[step["task"]].recipe if step["op"] == "relaxed" else [step])]
        atoms = build(list(recipe))
        if t.config_type == "isolated_atom":
            assert len(atoms) == 1 and not atoms.pbc.any() and atoms.symbols[0] in ("Zn", "O"), t.name
            continue
        assert len(atoms) > 0 and np.sum(atoms.numbers == 30) == np.sum(atoms.numbers == 8), t.name
    phonons = [t for t in tasks if t.dataset == "phonons"]
    assert len(phonons) >= 2 and all(t.recipe[0]["task"] in by_name for t in phonons)


def test_kpoint_density_and_polymorph_coordination():
    from ase.neighborlist import neighbor_list
    assert kpoint_mesh(polymorph("wurtzite"), 3.0) == (7, 7, 4)
    cluster = build([{"op": "ring_cluster", "n_formula": 3}, {"op": "box", "vacuum": 4.0}])
    assert kpoint_mesh(cluster, 3.0) == (1, 1, 1)
    expected = {"wurtzite": 4, "zincblende": 4, "rocksalt": 6, "cscl": 8, "hbn": 5, "bct": 4}
    for phase in POLYMORPHS:
        atoms = polymorph(phase)
        i = neighbor_list("i", atoms, 2.45)
        assert set(np.bincount(i, minlength=len(atoms))) == {expected[phase]}, phase


@pytest.mark.skipif(not (data_dir() / "train.extxyz").exists(), reason="training data not generated yet")
def test_shipped_training_data():
    train, test = load_zno("train"), load_zno("test")
    assert len(train) > 0
    names = {a.info["task"] for a in train}
    assert names.isdisjoint({a.info["task"] for a in test})
    for atoms in train + test:
        assert np.isfinite(atoms.info["energy"])
        assert atoms.arrays["forces"].shape == (len(atoms), 3)
        if atoms.info["config_type"] == "isolated_atom":  # GPAW's energy zero is the (spin-paired) atom
            assert not atoms.pbc.any() and "stress" not in atoms.info and abs(atoms.info["energy"]) < 1.0
            continue
        assert atoms.info["stress"].shape == (6,)
        assert -5.5 < atoms.info["energy"] / len(atoms) < -3.0  # eV/atom, PAW reference energies


def test_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown split"):
        load_zno("validation")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_zno("liquid", root=tmp_path)
    if (data_dir() / "convergence.extxyz").exists():
        shutil.copy(data_dir() / "convergence.extxyz", tmp_path)
        with pytest.raises(FileNotFoundError, match="manifest"):
            load_zno("convergence", root=tmp_path)


def test_tasks_wait_for_their_inputs(tmp_path):
    """A task on a candidate frame the sampler has not written yet, or on a relaxation not yet done, is
    neither runnable nor costed, and a worker runs the others instead of failing."""
    from ase.io import write

    from zno_book.reference.runner import estimated_seconds, measured_seconds, runnable

    (tmp_path / "candidates").mkdir()
    write(tmp_path / "candidates" / "c.extxyz", [polymorph("rocksalt")] * 2)
    waiting = [Task("t/frame5", "convergence", "t", ({"op": "frame", "file": "candidates/c.extxyz", "index": 5},), 0),
               Task("t/relaxed", "convergence", "t", ({"op": "relaxed", "file": "eos.extxyz", "task": "x"},), 0)]
    ready = Task("t/frame1", "convergence", "t", ({"op": "frame", "file": "candidates/c.extxyz", "index": 1},), 0,
                 settings={"ecut": 250.0, "kpt_density": 1.0})
    store = Store(tmp_path, DFTSettings())
    for task in waiting:
        assert not runnable(task, store, store.finished())
        assert np.isnan(estimated_seconds(task, tmp_path, store.settings))
    assert runnable(ready, store, store.finished())
    assert work(store, tasks=waiting + [ready]) == 1
    assert set(store.finished()) == {"t/frame1"}
    # the next single point of that config_type is costed at what the first one took
    measured = measured_seconds(store)
    assert list(measured) == ["t"] and measured["t"] == store.finished()["t/frame1"][0] > 0
    later = Task("t/frame0", "convergence", "t", ({"op": "frame", "file": "candidates/c.extxyz", "index": 0},), 0)
    assert estimated_seconds(later, tmp_path, store.settings, measured) == measured["t"]
    assert estimated_seconds(later, tmp_path, store.settings) != measured["t"]  # the rough model


def test_relaxation_resumes_exactly_from_its_checkpoint(tmp_path, monkeypatch):
    """An interrupted position relaxation continues as if uninterrupted: same BFGS steps (the Hessian is
    rebuilt from the checkpoint, to the extxyz precision), the last checkpointed step neither recomputed
    nor stored twice. A Lennard-Jones calculator stands in for DFT (the runner is the subject here)."""
    from ase.calculators.lj import LennardJones

    from zno_book.reference import runner

    calls = []

    class CountingLJ(LennardJones):
        def calculate(self, *args, **kwargs):
            calls.append(1)
            super().calculate(*args, **kwargs)

    monkeypatch.setattr(runner, "make_calculator", lambda *a, **k: CountingLJ(sigma=1.8, epsilon=0.1, rc=6.0))
    recipe = ({"op": "ring_cluster", "n_formula": 3}, {"op": "rattle", "sigma": 0.1, "seed": 2},
              {"op": "box", "vacuum": 4.0})

    def task(steps):
        return Task("nanoparticles/test_ring", "nanoparticles", "test", recipe, 0, kind="relax",
                    relax={"fmax": 1e-4, "steps": steps, "cell": None})

    whole = runner.run_relax(task(12), Store(tmp_path / "whole", DFTSettings()))
    store = Store(tmp_path / "resumed", DFTSettings())
    first = runner.run_relax(task(5), store)  # "interrupted": its checkpoint stays (work() would remove it)
    calls.clear()
    resumed = runner.run_relax(task(12), store)
    assert len(first) == 6 and len(calls) == len(resumed) - len(first) == len(whole) - 6
    assert [f.info["relax_step"] for f in resumed] == list(range(len(whole)))
    for a, b in zip(whole, resumed):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-5)
    assert resumed[-1].info["relax_final"] and not resumed[5].info["relax_final"]
