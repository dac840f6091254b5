"""Tests of mliplib.md with real ASE calculators (EMT copper): energy conservation, thermostats,
trajectories and the watchdog that stops a run on unphysical events without raising."""

import numpy as np
import pytest
from ase import units
from ase.build import bulk
from ase.calculators.calculator import CalculationFailed
from ase.calculators.emt import EMT
from ase.io import read
from threadpoolctl import threadpool_limits

from mliplib.md import MDLog, energy_drift, melt_and_equilibrate, run_md


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.fixture
def copper():
    return bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2)  # 32 atoms


def test_nve_emt_conserves_energy(copper, tmp_path):
    path = tmp_path / "nve.extxyz"
    result = run_md(copper, EMT(), 300, 300, timestep_fs=2.0, ensemble="nve", interval=10, trajectory=path,
                    progress=False, seed=1)
    assert result.ok and result.steps_done == 300, result.summary()
    assert result.log.step.tolist() == list(range(0, 301, 10))
    assert result.log.time_fs[-1] == pytest.approx(600.0)
    assert result.log.temperature[0] == pytest.approx(300.0, rel=1e-6)  # exact initial temperature
    assert np.ptp(result.log.energy_total) / len(copper) < 2e-3  # eV/atom
    assert abs(energy_drift(result)) < 1.0  # meV/atom/ps
    assert energy_drift(result.log.as_dict()) == pytest.approx(energy_drift(result))
    assert np.ptp(result.log.energy_potential) > 10 * np.ptp(result.log.energy_total)
    frames = read(path, index=":")
    assert len(frames) == len(result.frames) == 31
    assert np.allclose(frames[-1].positions, result.atoms.positions)
    assert np.allclose(frames[-1].get_velocities(), result.atoms.get_velocities())
    assert np.array_equal(copper.positions, bulk("Cu", "fcc", a=3.6, cubic=True).repeat(2).positions)
    assert not np.any(copper.get_momenta())  # run_md works on a copy


def test_overlap_stops_run_without_raising(copper):
    squeezed = copper.copy()
    squeezed.positions[1] = squeezed.positions[0] + [1.0, 0.0, 0.0]
    result = run_md(squeezed, EMT(), 300, 50, progress=False)
    assert not result.ok and result.event.kind == "min_distance"
    assert result.event.step == 0 and result.event.value == pytest.approx(1.0)
    assert "failed at step 0" in result.summary()


def test_collision_during_run_is_caught(copper):
    """Two atoms fired at each other at 0.15 Å/fs: the run stops at the step they come closer than 1.6 Å."""
    atoms = copper.copy()
    run = run_md(atoms, EMT(), 10, 0, progress=False, seed=2)  # thermalise
    atoms = run.atoms
    direction = atoms.positions[1] - atoms.positions[0]
    direction /= np.linalg.norm(direction)
    momenta = atoms.get_momenta()
    masses = atoms.get_masses()
    speed = 0.15 / units.fs  # 0.15 Å/fs in ASE units
    momenta[0] += masses[0] * speed * direction
    momenta[1] -= masses[1] * speed * direction
    atoms.set_momenta(momenta)
    result = run_md(atoms, EMT(), 10, 200, timestep_fs=0.5, ensemble="nve", min_distance=1.6, max_drift=None,
                    interval=5, progress=False, init_velocities=False)
    assert result.event is not None and result.event.kind == "min_distance", result.summary()
    assert 0 < result.event.step < 200 and result.event.value < 1.6
    assert result.steps_done == result.event.step
    assert result.log.step[-1] == result.event.step  # the failing state is sampled


def test_calculator_error_is_reported():
    zinc = bulk("Zn", "hcp", a=2.66, c=4.95)  # EMT has no Zn parameters (NotImplementedError)
    result = run_md(zinc, EMT(), 300, 10, progress=False)
    assert result.event.kind == "calculator_error" and result.event.step == 0


class FailingEMT(EMT):
    """EMT that raises ``error`` from the third evaluation on."""

    def __init__(self, error):
        super().__init__()
        self.error, self.calls = error, 0

    def calculate(self, *args, **kwargs):
        self.calls += 1
        if self.calls > 2:
            raise self.error
        super().calculate(*args, **kwargs)


@pytest.mark.parametrize("error", [ValueError("atoms 0 and 1 overlap"), CalculationFailed("SCF did not converge"),
                                   FloatingPointError("overflow")], ids=lambda e: type(e).__name__)
def test_a_calculator_that_gives_up_ends_the_run(copper, error):
    result = run_md(copper, FailingEMT(error), 300, 10, progress=False)
    assert result.event.kind == "calculator_error" and str(error) in result.event.details
    assert 0 < result.event.step < 10


def test_a_bug_is_not_mistaken_for_a_failing_model(copper):
    """Only what calculators raise when they give up is caught; a TypeError is a bug and propagates."""
    with pytest.raises(TypeError, match="a bug"):
        run_md(copper, FailingEMT(TypeError("a bug")), 300, 10, progress=False)


def test_energy_jump_watchdog(copper):
    result = run_md(copper, EMT(), 3000, 40, ensemble="langevin", friction=0.05, max_energy_jump=1e-4,
                    progress=False)
    assert result.event is not None and result.event.kind == "energy_jump" and result.event.step >= 1


def test_thermostats_and_melt_protocol(copper, tmp_path):
    nh = run_md(copper, EMT(), 500, 60, ensemble="nvt", thermostat="nose-hoover", taut_fs=20, progress=False)
    assert nh.ok and np.all(np.isfinite(nh.log.temperature))
    path = tmp_path / "melt.traj"
    result = melt_and_equilibrate(copper, EMT(), T_melt=2500, T_target=1000, melt_steps=80, equil_steps=60,
                                  timestep_fs=2.0, friction=0.02, taut_fs=50, interval=20, trajectory=path,
                                  progress=True, seed=4)
    assert result.ok, result.summary()
    assert set(result.stages) == {"melt", "equilibrate"}
    assert result.log.step.tolist() == [0, 20, 40, 60, 80, 100, 120, 140]
    assert result.log.time_fs[-1] == pytest.approx(280.0)
    assert len(read(path, index=":")) == len(result.frames) == 8
    assert result.stages["melt"].log.temperature[-1] > 1000
    assert result.steps_done == 140
    joined = MDLog.concatenate([result.stages["melt"].log, result.stages["equilibrate"].log])
    assert np.array_equal(joined.step, result.log.step)


def test_bad_input_raises(copper):
    with pytest.raises(ValueError, match="ensemble"):
        run_md(copper, EMT(), 300, 10, ensemble="npt")
    with pytest.raises(TypeError, match="calculator"):
        run_md(copper, None, 300, 10)
    with pytest.raises(ValueError, match="2 samples"):
        energy_drift(MDLog.empty(32))
