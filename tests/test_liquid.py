"""The liquid: starting packings, the MD protocol and its artefacts, the candidate frames of each model's
own trajectory and the DFT tasks that label them (plan bookkeeping only; no DFT is run)."""

import dataclasses
import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write
from threadpoolctl import threadpool_limits
from zno_pair import ZnOPair

from mliplib.md import MDEvent, MDLog
from mliplib.properties.structure import shortest_distance
from zno_book import zoo
from zno_book.liquid import (
    PACKING_DISTANCES,
    LiquidProtocol,
    LiquidRun,
    ionic_packing,
    liquid_artefact_name,
    liquid_trajectory,
    pick_candidates,
    run_liquid,
)
from zno_book.reference import sampling
from zno_book.reference.plan import (
    LIQUID_DENSITY,
    LIQUID_MODEL_FRAMES,
    MODEL_KINDS,
    Task,
    all_tasks,
    liquid_model_candidates,
    liquid_model_tasks,
)
from zno_book.reference.recipes import build
from zno_book.reference.runner import inputs_ready, labelled
from zno_book.reference.sampling import sample_liquid_models

TINY = LiquidProtocol(melt_steps=20, equil_steps=10, production_steps=40, interval=10, frame_interval=10)


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_model_liquid_tasks_bookkeeping():
    assert MODEL_KINDS == zoo.KINDS
    tasks = liquid_model_tasks()
    assert len(tasks) == len(MODEL_KINDS) * LIQUID_MODEL_FRAMES
    everything = {t.name: t for t in all_tasks()}
    for t in tasks:
        assert everything[t.name] == t  # in the plan, once
        kind, frame = t.name.split("/")[1:]
        kind = kind.removeprefix("at_")
        assert t.dataset == "liquid" and t.kind == "single" and t.priority == 5 and t.settings is None
        assert t.config_type == f"liquid_model_{kind}"
        (step,) = t.recipe
        assert step == {"op": "frame", "file": f"candidates/liquid_{kind}.extxyz", "index": int(frame[5:])}
    # same settings as the GFN1 liquid frames, and before them in the queue (the GFN1 frames are not
    # liquid ZnO; see liquid_tasks)
    gfn1 = [t for t in everything.values() if t.config_type == "liquid"]
    assert gfn1 and all(t.settings is None and t.kind == "single" for t in gfn1)
    order = [t.name for t in all_tasks()]
    assert max(order.index(t.name) for t in tasks) < min(order.index(t.name) for t in gfn1)
    with pytest.raises(ValueError, match="unknown model kind"):
        liquid_model_candidates("mace")


def test_model_liquid_tasks_wait_for_candidates(tmp_path):
    tasks = [t for t in liquid_model_tasks() if t.config_type == "liquid_model_plip"]
    assert not any(inputs_ready(t, tmp_path, set()) for t in tasks)
    path = tmp_path / liquid_model_candidates("plip")
    path.parent.mkdir()
    write(path, [ionic_packing(4, LIQUID_DENSITY, seed) for seed in range(2)])
    assert [inputs_ready(t, tmp_path, set()) for t in tasks] == [True, True] + [False] * (len(tasks) - 2)
    atoms = build(list(tasks[1].recipe), root=str(tmp_path))
    assert len(atoms) == 8 and atoms.calc is None


def test_labelled_frame_keeps_the_sampler_provenance():
    frame = ionic_packing(2, LIQUID_DENSITY, 0)
    frame.info.update(sampled_by="nnp", model_sha256="ab" * 32, temperature_K=3000.0, md_step=1200)
    task = Task("liquid/at_nnp/frame00", "liquid", "liquid_model_nnp",
                ({"op": "frame", "file": "candidates/liquid_nnp.extxyz", "index": 0},), 6)
    result = {"energy": -10.0, "energy_zero_smearing": -10.01, "forces": np.zeros((4, 3)), "stress": np.zeros(6),
              "wall_time_s": 1.0, "kpts": [2, 2, 2]}
    out = labelled(frame, result, task, {})
    assert out.info["sampled_by"] == "nnp" and out.info["model_sha256"] == "ab" * 32
    assert out.info["config_type"] == "liquid_model_nnp" and out.info["md_step"] == 1200


def test_ionic_packing_density_and_distances():
    atoms = ionic_packing(18, LIQUID_DENSITY, seed=3)
    mass = atoms.get_masses().sum() / 6.02214076e23  # g
    assert mass / (atoms.get_volume() * 1e-24) == pytest.approx(LIQUID_DENSITY, rel=1e-9)
    assert atoms.get_chemical_formula() == "O18Zn18"
    d = atoms.get_all_distances(mic=True)
    z = atoms.numbers
    for (a, b), dmin in PACKING_DISTANCES.items():
        za, zb = {"Zn": 30, "O": 8}[a], {"Zn": 30, "O": 8}[b]
        mask = np.outer(z == za, z == zb) & ~np.eye(len(atoms), dtype=bool)
        assert d[mask].min() > dmin - 0.03, (a, b)
    with pytest.raises(ValueError, match="positive"):
        ionic_packing(2, LIQUID_DENSITY, min_distances={("Zn", "O"): -1.0})
    with pytest.raises(RuntimeError, match="no packing"):
        ionic_packing(18, 15.0, max_iterations=20)


def test_protocol_validation_and_stages():
    assert TINY.n_atoms == 36 and TINY.total_steps == 70
    assert [TINY.stage_of(s) for s in (0, 20, 21, 30, 31, 70)] == ["melt", "melt", "equilibrate", "equilibrate",
                                                                    "production", "production"]
    with pytest.raises(ValueError, match="multiple"):
        LiquidProtocol(interval=10, frame_interval=15)
    with pytest.raises(ValueError):
        LiquidProtocol(temperature=-1.0)


def _fake_run(times_fs, stage="production", event=None):
    frames = []
    for t in times_fs:
        a = Atoms("ZnO", positions=[[0, 0, 0], [2, 0, 0]], cell=[5, 5, 5], pbc=True)
        a.info.update(step=int(t), time_fs=float(t), stage=stage)
        frames.append(a)
    return LiquidRun(frames, MDLog.empty(2), event, 0.0, TINY)


def test_pick_candidates_spacing_and_fallbacks():
    run = _fake_run(range(2000, 7001, 20))
    picked = pick_candidates(run, 6)
    times = [f.info["time_fs"] for f in picked]
    assert len(picked) == 6 and times[0] == 2000 and times[-1] == 7000 and min(np.diff(times)) >= 500
    assert len(pick_candidates(_fake_run(range(2000, 3001, 20)), 6, min_separation_fs=500)) == 3
    # a run that failed in the melt stage still yields its last states (never the starting packing)
    event = MDEvent("min_distance", 18, 18.0, "atoms 1 and 2 are 1.1 Å apart", 1.1)
    failed = _fake_run([0, 18], stage="melt", event=event)
    assert [f.info["step"] for f in pick_candidates(failed, 6)] == [18]
    early = _fake_run(range(0, 100, 20), stage="melt", event=event)
    assert [f.info["step"] for f in pick_candidates(early, 3)] == [20, 40, 80]
    with pytest.raises(ValueError):
        pick_candidates(run, 0)


def test_pick_candidates_tops_up_farthest_in_time():
    run = _fake_run(range(2000, 7001, 20))
    taken = [f.info["time_fs"] for f in pick_candidates(run, 6)]  # 2000, 3000, …, 7000
    added = [f.info["time_fs"] for f in pick_candidates(run, 4, 500.0, taken_fs=taken)]
    assert added == [2500, 3500, 4500, 5500]
    everything = np.sort(taken + added)
    assert min(np.diff(everything)) >= 500 and len(set(everything)) == 10
    last = [f.info["time_fs"] for f in pick_candidates(run, 3, 500.0, taken_fs=everything)]
    assert last == [6500]  # then nothing is ≥ 500 fs from every frame of 2000, 2500, …, 7000
    assert pick_candidates(run, 3, 500.0, taken_fs=list(everything) + last) == []
    # a failed run: only frames not taken, and only far enough from the taken ones
    event = MDEvent("min_distance", 100, 100.0, "atoms 0 and 1 are 1.1 Å apart", 1.1)
    early = _fake_run(range(0, 101, 20), stage="melt", event=event)
    assert [f.info["step"] for f in pick_candidates(early, 3, 0.0, taken_fs=[20, 60, 100])] == [40, 80]
    assert pick_candidates(early, 3, 500.0, taken_fs=[20, 60, 100]) == []


def test_pick_candidates_skips_overlapping_frames():
    # a run that collapsed: the state at the event has two atoms 0.9 Å apart (periodic images count)
    event = MDEvent("min_distance", 60, 60.0, "atoms 0 and 1 are 0.9 Å apart", 0.9)
    failed = _fake_run([0, 20, 40, 60], stage="melt", event=event)
    failed.frames[-1].positions[1] = [4.1, 0.0, 0.0]  # 0.9 Å from atom 0 through the cell boundary
    assert shortest_distance(failed.frames[-1]) == pytest.approx(0.9)
    assert shortest_distance(failed.frames[1]) == pytest.approx(2.0)
    assert [f.info["step"] for f in pick_candidates(failed, 6)] == [20, 40, 60]
    assert [f.info["step"] for f in pick_candidates(failed, 6, min_distance=1.0)] == [20, 40]
    # in production too, and nothing at all if every frame overlaps
    prod = _fake_run(range(2000, 3001, 500), event=dataclasses.replace(event, step=3000, time_fs=3000.0))
    prod.frames[-1].positions[1] = [0.5, 0.0, 0.0]
    assert [f.info["step"] for f in pick_candidates(prod, 3, min_distance=1.0)] == [2000, 2500]
    assert pick_candidates(prod, 3, min_distance=2.5) == []


def test_run_liquid_reports_instead_of_raising_and_round_trips(tmp_path):
    run = run_liquid(ZnOPair(), TINY, progress=False)
    assert run.steps_done <= TINY.total_steps and len(run.frames) >= 1
    assert run.frames[0].info["step"] == 0 and run.frames[0].info["stage"] == "melt"
    assert all(f.info["step"] % TINY.frame_interval == 0 for f in run.frames[:-1])
    copy = LiquidRun.from_artefacts(run.frames, run.arrays())
    assert copy.protocol == TINY and copy.event == run.event and np.allclose(copy.log.temperature,
                                                                            run.log.temperature)
    # a calculator that pulls two atoms together ends the run with an event, not an exception
    collapsing = LiquidProtocol(**{**TINY.as_dict(), "min_distance": 2.5})
    failed = run_liquid(ZnOPair(), collapsing, progress=False)
    assert not failed.ok and failed.event.kind == "min_distance" and failed.event.step == 0
    assert "STOPPED" in failed.summary("pair")


def test_liquid_trajectory_cache_and_sampler(tmp_path, capsys):
    first = liquid_trajectory("linear_bp", TINY, progress=False, root=tmp_path / "art")
    meta = json.loads((tmp_path / "art" / f"{liquid_artefact_name('linear_bp', TINY)}.json").read_text())
    assert meta["key"]["model_sha256"] == zoo.fingerprint("linear_bp") and meta["key"]["protocol"] == TINY.as_dict()
    again = liquid_trajectory("linear_bp", TINY, progress=False, root=tmp_path / "art")  # from the cache
    assert np.allclose(again.frames[-1].positions, first.frames[-1].positions)
    counts = sample_liquid_models(tmp_path / "data", kinds=("linear_bp",), n_frames=3, protocol=TINY,
                                  min_separation_fs=10.0, artefact_root=tmp_path / "art", repeat_seeds=())
    frames = read(tmp_path / "data" / "candidates" / "liquid_linear_bp.extxyz", index=":")
    assert counts == {"linear_bp": len(frames)} and 1 <= len(frames) <= 3
    for f in frames:
        assert f.info["sampled_by"] == "linear_bp" and f.info["model_sha256"] == zoo.fingerprint("linear_bp")
        assert f.info["temperature_K"] == TINY.temperature and f.info["density_g_cm3"] == TINY.density
        assert json.loads(f.info["md_protocol"]) == TINY.as_dict() and f.info["md_step"] > 0
        assert f.info["md_event_fs"] == (first.event.time_fs if first.event else -1.0)
        assert shortest_distance(f) >= 1.0  # DFT_MIN_DISTANCE
    before = (tmp_path / "data" / "candidates" / "liquid_linear_bp.extxyz").read_bytes()
    sample_liquid_models(tmp_path / "data", kinds=("linear_bp",), n_frames=len(frames), protocol=TINY,
                         artefact_root=tmp_path / "art")
    assert "exists" in capsys.readouterr().out  # a complete file is kept as it is
    assert (tmp_path / "data" / "candidates" / "liquid_linear_bp.extxyz").read_bytes() == before


def test_sampler_tops_up_a_collapsed_run_from_independent_repeats(tmp_path, monkeypatch):
    def fake_run(protocol, steps, stage="melt", event_step=None, event_distance=None):
        frames = []
        for step in steps:
            a = Atoms("ZnO", positions=[[0, 0, 0], [2, 0, 0]], cell=[5, 5, 5], pbc=True)
            a.info.update(step=step, time_fs=float(step), stage=stage, temperature_K=3000.0,
                          energy_potential_eV=-9.0)
            frames.append(a)
        event = None
        if event_step is not None:
            frames[-1].positions[1] = [event_distance, 0, 0]
            event = MDEvent("min_distance", event_step, float(event_step), "two atoms too close", event_distance)
        return LiquidRun(frames, MDLog.empty(2), event, 0.0, protocol)

    calls = []

    def fake_trajectory(kind, protocol=None, progress=True, root=None):
        calls.append(protocol.seed)
        if protocol.seed == 0:  # the main run collapses to 0.9 Å at 40 fs: only its frame at 20 fs is usable
            return fake_run(protocol, [0, 20, 40], event_step=40, event_distance=0.9)
        if protocol.seed == 1:  # collapses to 1.1 Å: that state is still DFT-safe
            return fake_run(protocol, [0, 57], event_step=57, event_distance=1.1)
        assert protocol.seed >= 2 and protocol.production_steps == 0  # survives melt and equilibration
        return fake_run(protocol, range(1100, 2001, 100), stage="equilibrate")

    monkeypatch.setattr(sampling, "liquid_trajectory", fake_trajectory)
    counts = sample_liquid_models(tmp_path, kinds=("plip",), n_frames=3, protocol=TINY)
    assert counts == {"plip": 3} and calls == [0, 1, 2]  # seeds 3 and 4 not needed
    frames = read(tmp_path / "candidates" / "liquid_plip.extxyz", index=":")
    seeds = [json.loads(f.info["md_protocol"])["seed"] for f in frames]
    assert seeds == [0, 1, 2] and [f.info["md_step"] for f in frames] == [20, 57, 2000]
    assert [f.info["md_event"] for f in frames] == ["min_distance", "min_distance", "none"]
    assert [f.info["md_event_fs"] for f in frames] == [40.0, 57.0, -1.0]
    assert all(shortest_distance(f) >= 1.0 for f in frames)

    # a larger n_frames tops the file up: the frames above stay first and unchanged (they may be
    # labelled already), new ones come from further seeds, and a file of another model version is kept
    before = (tmp_path / "candidates" / "liquid_plip.extxyz").read_bytes()
    calls.clear()
    counts = sample_liquid_models(tmp_path, kinds=("plip",), n_frames=5, protocol=TINY, repeat_seeds=(1, 2, 3, 4))
    after = (tmp_path / "candidates" / "liquid_plip.extxyz").read_bytes()
    assert after.startswith(before) and counts == {"plip": 5} and calls == [0, 3, 4]
    frames = read(tmp_path / "candidates" / "liquid_plip.extxyz", index=":")
    assert [json.loads(f.info["md_protocol"])["seed"] for f in frames] == [0, 1, 2, 3, 4]
    for f in frames[:3]:
        f.info["model_sha256"] = "an earlier model"
    write(tmp_path / "candidates" / "liquid_plip.extxyz", frames)
    calls.clear()
    assert sample_liquid_models(tmp_path, kinds=("plip",), n_frames=8, protocol=TINY) == {"plip": 5}
    assert calls == []
