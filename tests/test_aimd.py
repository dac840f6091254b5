"""Tests of zno_book.aimd: the resumable MD driver (checkpoint, kill and resume give the same trajectory,
a torn frame is dropped, one process per run) with the shipped PLIP model, and the DFT path (cold then
warm SCF, a two-step run) with GPAW on a tiny ZnO cell."""

import json

import numpy as np
import pytest
from ase.io import read

import mliplib
from zno_book.aimd.ledger import core_hours
from zno_book.aimd.run import RunLock, RunProtocol, Stage, run, status
from zno_book.aimd.settings import BOOK, SETTINGS, AIMDSetting, DFTStepper
from zno_book.aimd.ship import relabel_steps, write_manifest
from zno_book.paths import models_dir
from zno_book.reference.engine import DFTSettings


@pytest.fixture(scope="module")
def plip_calc():
    return mliplib.load(models_dir() / "plip.npz").calculator()


def protocol(setting=SETTINGS["pw500_gamma"], n_formula=4, stages=None):
    stages = stages or (Stage("heat", "langevin", 2, friction_per_fs=0.02), Stage("equilibrate", "bussi", 2, taut_fs=20.0),
                        Stage("nve", "nve", 2))
    return RunProtocol(setting=setting, n_formula=n_formula, density=4.9, temperature=3000.0, timestep_fs=2.0,
                       seed=3, stages=stages)


def _quiet(_):
    pass


def test_protocol_round_trip_and_stages():
    p = protocol()
    assert RunProtocol.from_dict(json.loads(json.dumps(p.as_dict()))) == p
    assert p.total_steps == 6
    assert [p.stage_of(s).name for s in range(1, 7)] == ["heat"] * 2 + ["equilibrate"] * 2 + ["nve"] * 2
    with pytest.raises(ValueError):
        p.stage_of(7)
    with pytest.raises(ValueError):
        Stage("x", "bussi", 3)  # no time constant
    with pytest.raises(ValueError):
        RunProtocol(SETTINGS["pw500_gamma"], 4, 4.9, 3000.0, 2.0, 1, p.stages, config_type="liquid")


def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, plip_calc):
    p = protocol()
    assert run(tmp_path / "a", p, calc=plip_calc, log=_quiet) == 6
    # the same run in pieces, with a torn frame appended after the last checkpoint (a kill mid-write)
    b = tmp_path / "b"
    assert run(b, p, calc=plip_calc, max_steps=2, log=_quiet) == 2
    assert run(b, p, calc=plip_calc, max_steps=1, log=_quiet) == 3  # resumes across the stage boundary
    with open(b / "trajectory.extxyz", "a") as fh:
        fh.write("8\nLattice=\"1 0 0 0 1 0 0 0 1\" Properties=species:S:1:pos:R:3\nZn 0.0 0.0")
    messages = []
    assert run(b, p, calc=plip_calc, log=messages.append) == 6
    assert any("dropped a frame" in m for m in messages)
    first, second = read(tmp_path / "a" / "trajectory.extxyz", ":"), read(b / "trajectory.extxyz", ":")
    assert [f.info["step"] for f in second] == list(range(7))
    assert [f.info["stage"] for f in second] == ["start"] + ["heat"] * 2 + ["equilibrate"] * 2 + ["nve"] * 2
    for x, y in zip(first, second):
        assert np.allclose(x.positions, y.positions, atol=1e-10)
        assert np.allclose(x.get_momenta(), y.get_momenta(), atol=1e-10)
        assert np.allclose(x.get_forces(), y.get_forces(), atol=1e-10)
        assert x.get_potential_energy() == pytest.approx(y.get_potential_energy(), abs=1e-10)
        assert x.info["thermostat_work"] == pytest.approx(y.info["thermostat_work"], abs=1e-10)
        assert "aimd" in y.info["config_type"] and y.info["time_fs"] == 2.0 * y.info["step"]
        assert y.get_stress(voigt=True).shape == (6,)
    s = status(b)
    assert s["steps_done"] == 6 and s["simulated_fs"] == 12.0 and not s["running"]
    # a completed run does nothing more; another protocol in the same directory is refused
    assert run(b, p, calc=plip_calc, log=_quiet) == 6
    with pytest.raises(ValueError, match="different protocol"):
        run(b, protocol(n_formula=5), calc=plip_calc, log=_quiet)


def test_manifest_and_relabel_choice(tmp_path, plip_calc):
    p = protocol(stages=(Stage("equilibrate", "bussi", 2, taut_fs=20.0), Stage("production", "bussi", 12, taut_fs=20.0)))
    run(tmp_path / "aimd" / "nvt", p, calc=plip_calc, log=_quiet)
    frames = read(tmp_path / "aimd" / "nvt" / "trajectory.extxyz", ":")
    assert relabel_steps(frames, 4) == [3, 7, 10, 14]
    manifest = write_manifest(tmp_path)
    assert manifest["runs"]["nvt"]["frames"] == 15 and manifest["runs"]["nvt"]["relabel_vs_book"] is None
    assert {"nvt/trajectory.extxyz", "nvt/checkpoint.npz", "nvt/protocol.json"} <= set(manifest["files"])
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())


def test_nve_segment_conserves_energy(tmp_path, plip_calc):
    p = protocol(stages=(Stage("nve", "nve", 20),))
    run(tmp_path, p, calc=plip_calc, log=_quiet)
    frames = read(tmp_path / "trajectory.extxyz", ":")
    total = np.array([f.get_potential_energy() + f.info["energy_kinetic"] for f in frames])
    kinetic = np.array([f.info["energy_kinetic"] for f in frames])
    assert np.ptp(total) < 0.05 * np.ptp(kinetic)


def test_one_process_per_run(tmp_path):
    with RunLock(tmp_path), pytest.raises(RuntimeError, match="another process"), RunLock(tmp_path):
        pass


def test_settings_validation_and_book_matches_engine():
    ref = DFTSettings()
    assert (BOOK.ecut, BOOK.kpt_density, BOOK.smearing, BOOK.xc) == (ref.ecut, ref.kpt_density, ref.smearing, ref.xc)
    assert AIMDSetting.from_dict(json.loads(json.dumps(SETTINGS["pw500_gamma"].as_dict()))) == SETTINGS["pw500_gamma"]
    with pytest.raises(ValueError):
        AIMDSetting("bad", "lcao", ecut=500.0, basis="dzp")


def test_gpaw_run_cold_then_warm(tmp_path):
    """Two MD steps of a 4-atom ZnO cell with GPAW (PW 250 eV, Γ): cold then warm SCF, ledger charged."""
    pytest.importorskip("gpaw")
    setting = AIMDSetting("test_pw250_gamma", "pw", ecut=250.0)
    p = protocol(setting=setting, n_formula=2, stages=(Stage("nve", "nve", 2),))
    assert run(tmp_path / "run", p, log=_quiet) == 2
    frames = read(tmp_path / "run" / "trajectory.extxyz", ":")
    assert [f.info["start"] for f in frames] == ["cold", "warm", "warm"]
    assert frames[2].info["scf_iterations"] < frames[0].info["scf_iterations"]
    assert np.abs(frames[1].get_forces()).max() > 0 and frames[1].get_stress(voigt=True).shape == (6,)
    assert core_hours(tmp_path)["run"] > 0
    stepper = DFTStepper(frames[0], setting)
    again = stepper.evaluate(frames[0].copy())
    assert again.start == "cold"
    assert np.allclose(again.forces, frames[0].get_forces(), atol=2e-3)
