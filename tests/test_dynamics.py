"""Staged MD (mliplib.md.Stage, run_stages) and self-diffusion (mliplib.properties.transport)."""

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from mliplib.md import Stage, run_stages, stage_starts
from mliplib.properties.transport import (
    diffusion_coefficient,
    mean_squared_displacement,
    unwrap,
)


def copper():
    return bulk("Cu", cubic=True).repeat(2)  # 32 atoms


def test_stage_ramp_is_a_staircase_with_the_ramp_mean():
    ramp = Stage("ramp", 1000, (300.0, 2000.0), ramp_interval=100)
    plateaus = ramp.plateaus()
    assert [n for n, _ in plateaus] == [100] * 10 and ramp.is_ramp and ramp.max_temperature_K == 2000.0
    temperatures = np.array([t for _, t in plateaus])
    assert np.all(np.diff(temperatures) > 0) and 300 < temperatures[0] < temperatures[-1] < 2000
    assert np.mean(temperatures) == pytest.approx(1150.0)  # a linear ramp's mean
    assert Stage("odd", 250, (0.0, 100.0), ramp_interval=100).plateaus()[-1][0] == 50
    assert Stage("flat", 10, 500.0).plateaus() == [(10, 500.0)]
    with pytest.raises(ValueError, match="steps ≥ 1"):
        Stage("empty", 0, 300.0)
    with pytest.raises(ValueError, match="ensemble"):
        Stage("npt", 10, 300.0, ensemble="npt")
    with pytest.raises(ValueError, match="temperature_K"):
        Stage("three", 10, (1.0, 2.0, 3.0))


def test_run_stages_numbers_steps_continuously():
    stages = [Stage("heat", 100, 300.0, friction=0.05), Stage("ramp", 200, (300.0, 900.0), ramp_interval=50),
              Stage("nvt", 100, 900.0, ensemble="nvt", taut_fs=20.0)]
    result = run_stages(copper(), EMT(), stages, timestep_fs=2.0, interval=10, seed=1)
    assert result.ok and result.steps_done == result.steps_requested == 400
    assert np.array_equal(result.log.step, np.arange(0, 401, 10)) and len(result.frames) == len(result.log)
    assert np.allclose(result.log.time_fs, 2.0 * result.log.step)
    assert stage_starts(stages) == {"heat": 0, "ramp": 100, "nvt": 300}
    assert list(result.stages) == ["heat", "ramp", "nvt"]
    assert result.stages["ramp"].log.step[0] == 110 and result.stages["nvt"].log.step[-1] == 400


def test_run_stages_stops_at_the_first_event_with_its_global_step():
    stages = [Stage("cold", 50, 100.0), Stage("hot", 200, 3000.0, friction=0.2)]
    result = run_stages(copper(), EMT(), stages, interval=10, seed=2, max_temperature_K=1500.0)
    assert result.event is not None and result.event.kind == "max_temperature"
    assert 50 < result.event.step <= 250 and result.event.time_fs == result.event.step
    assert result.log.step[-1] == result.event.step and list(result.stages) == ["cold", "hot"]


def test_ramp_heats_the_crystal():
    result = run_stages(copper(), EMT(), [Stage("ramp", 600, (100.0, 1500.0), friction=0.05, ramp_interval=50)],
                        timestep_fs=2.0, interval=10, seed=3)
    temperature = result.log.temperature
    assert result.ok and temperature[-15:].mean() > 3 * temperature[1:16].mean()


def brownian(d_a2_ps, n_frames, n_atoms, dt_fs, seed):
    """Random walk with MSD = 6 D t: Gaussian steps of variance 2 D dt per axis."""
    sigma = np.sqrt(2 * d_a2_ps * 1e-3 * dt_fs)
    steps = np.random.default_rng(seed).normal(0.0, sigma, (n_frames - 1, n_atoms, 3))
    return np.concatenate([np.zeros((1, n_atoms, 3)), np.cumsum(steps, axis=0)])


def test_diffusion_of_a_random_walk():
    positions = brownian(0.5, 2000, 50, 10.0, seed=4)
    result = diffusion_coefficient(positions, 10.0, n_blocks=4)
    assert result.blocks.shape == (4,) and result.error > 0
    assert abs(result.coefficient - 0.5) < max(4 * result.error, 0.05)
    assert result.fit_fs[0] < result.fit_fs[1] <= 5000.0
    # a species selected by mask, and the drift of the centre of mass removed
    drifting = positions + np.arange(2000)[:, None, None] * np.array([0.01, 0.0, 0.0])
    mask = np.arange(50) < 25
    fixed = diffusion_coefficient(drifting, 10.0, atoms=mask, masses=np.ones(50))
    assert abs(fixed.coefficient - 0.5) < max(4 * fixed.error, 0.1)
    assert diffusion_coefficient(drifting, 10.0, atoms=mask).coefficient > 2 * fixed.coefficient


def test_msd_of_ballistic_motion_and_unwrapping():
    velocity = np.array([0.3, -0.1, 0.2])  # Å per frame
    positions = np.arange(100)[:, None, None] * velocity[None, None, :] + np.zeros((1, 4, 3))
    msd = mean_squared_displacement(positions, 20)
    assert np.allclose(msd, np.arange(21) ** 2 * (velocity @ velocity))
    cell = np.diag([5.0, 6.0, 7.0])
    wrapped = positions % np.diag(cell)
    assert np.allclose(unwrap(wrapped, cell), positions + (wrapped[0] - positions[0]))
    with pytest.raises(ValueError, match="max_lag"):
        mean_squared_displacement(positions, 100)
    with pytest.raises(ValueError, match="fewer than 2 lags"):
        diffusion_coefficient(positions[:6], 1.0, n_blocks=4)
