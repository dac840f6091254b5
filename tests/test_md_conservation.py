"""NVE energy conservation of the three model kinds in MD: 96-atom wurtzite, 300 K, 0.5 fs, 2 ps.

The models are the shipped kinds (:mod:`zno_book.zoo`: linear-BP/RidgeCV, PLIP/LassoLarsPathCV on
forces, NNP 2×25) with the shipped descriptors — except the PLIP Gaussian basis, cut from 27 to 4
functions (220 instead of 1485 terms, same cutoff, R_short, l and m) to keep the test fast — trained on
16 rattled and strained 32-atom wurtzite frames (NNP: 15 L-BFGS epochs) labelled by a smooth model potential
(``tests/zno_pair.py``: Morse + Born–Mayer + bond-angle term), so the test needs no DFT data and its
inputs never change. Energy is conserved when forces are the exact derivative of a smooth energy and the
time step resolves the fastest vibration; a non-conservative force or too long a step breaks it. Checked
with the linear-BP model and :func:`nve_run` (2 ps each): 0.5 fs gives 0.015 meV/atom drift (0.03 max
excursion); a 5 fs step fails (1.8 / 2.2 meV/atom), and so do forces 3 % off the energy's derivative
(1.1 / 1.9); a 2 fs step (0.23 / 0.41) and forces 1 % off (0.34 / 0.63) pass.
"""

import numpy as np
import pytest
from zno_pair import ZnOPair, relaxed_wurtzite

from mliplib.md import run_md
from zno_book import zoo
from mliplib.builders import rattled, strained, supercell_of

TEMPERATURE_K = 300.0
TIMESTEP_FS = 0.5
STEPS = 4000  # 2 ps
LIMIT = 1e-3  # eV/atom, for both the end-to-end drift and the largest excursion


@pytest.fixture(scope="module")
def cell():
    return relaxed_wurtzite()


@pytest.fixture(scope="module")
def frames(cell):
    rng = np.random.default_rng(42)
    out = []
    for k in range(16):
        eps = np.diag(rng.uniform(-0.02, 0.02, 3))
        atoms = rattled(strained(supercell_of(cell, (2, 2, 2)), eps), 0.02 + 0.1 * k / 15, k)
        atoms.calc = ZnOPair()
        atoms.info.update(energy=atoms.get_potential_energy(), stress=atoms.get_stress(), config_type="wurtzite")
        atoms.arrays["forces"] = atoms.get_forces()
        atoms.calc = None
        out.append(atoms)
    return out


def small_models():
    """The three kinds as shipped, smaller where it only costs time (see the module docstring)."""
    from mliplib.descriptors import PLIP
    plip = PLIP.default_zno(a=(1.0,), b=(2.0, 3.0, 4.0, 5.0)).to_dict()
    return {"linear_bp": {}, "plip": {"descriptor": plip}, "nnp": {"epochs": 15, "patience": 15}}


@pytest.fixture(scope="module")
def models(frames):
    return {kind: zoo.train(kind, frames, progress=False, **over) for kind, over in small_models().items()}


def nve_run(model, cell, timestep_fs=TIMESTEP_FS, steps=STEPS, reps=(4, 3, 2), seed=0, calc=None):
    """NVE from the perfect crystal with Maxwell–Boltzmann velocities at 2·T (equipartition brings the
    crystal to ≈ T). Returns drift |E(end) − E(0)|/N and max_t |E(t) − E(0)|/N in eV/atom, mean T (K),
    wall time (s) and the run's event (None when the watchdog saw nothing)."""
    atoms = supercell_of(cell, reps)
    result = run_md(atoms, calc or model.calculator(), 2 * TEMPERATURE_K, steps, timestep_fs=timestep_fs,
                    ensemble="nve", interval=5, keep_frames=False, progress=False, seed=seed,
                    check_interval=100, max_drift=None)
    log, n = result.log, len(atoms)
    e = log.energy_total
    return {"drift": abs(e[-1] - e[0]) / n, "excursion": float(np.max(np.abs(e - e[0]))) / n,
            "mean_T": float(np.mean(log.temperature[len(log) // 4:])), "wall_s": result.wall_time_s,
            "steps": result.steps_done, "event": result.event, "n_atoms": n}


def test_training_is_sane(models, frames):
    """The small models must have learned their labels (otherwise the MD below tests nothing useful)."""
    scale = 1e3 * np.sqrt(np.mean(np.concatenate([a.arrays["forces"].ravel() for a in frames]) ** 2))
    for kind, model in models.items():
        errors = zoo.evaluate(model, frames)
        assert errors["forces_rmse_meV_A"] < 0.25 * scale, (kind, errors, scale)


@pytest.mark.parametrize("kind", ["linear_bp", "plip", "nnp"])
def test_nve_energy_conservation(models, cell, kind):
    out = nve_run(models[kind], cell)
    print(f"\n{kind}: {out['n_atoms']} atoms, {out['steps']} steps of {TIMESTEP_FS} fs in {out['wall_s']:.1f} s; "
          f"drift {1e3 * out['drift']:.4f} meV/atom, max excursion {1e3 * out['excursion']:.4f} meV/atom, "
          f"<T> {out['mean_T']:.0f} K")
    assert out["event"] is None, str(out["event"])
    assert out["steps"] == STEPS
    assert 200 < out["mean_T"] < 420
    assert out["drift"] < LIMIT
    assert out["excursion"] < LIMIT
