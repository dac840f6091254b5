"""The campaign: tasks and their names, the staged liquid protocol and nanoparticle MD (their accounting of
events, survival and temperature), the tidy table and its summaries, and the DFT candidates of the cluster
MD. Real MD runs here are tiny and use a cheap pair potential (tests/zno_pair.py) as the "members"."""

import hashlib
import io
import json

import numpy as np
import pytest
from ase import Atoms
from ase.io import read, write
from threadpoolctl import threadpool_limits
from zno_pair import ZnOPair

from mliplib.md import MDEvent, MDLog, MDResult
from zno_book import campaign, driver, executors
from zno_book.clusters import (
    ClusterMDProtocol,
    cluster_md_metrics,
    first_persistent,
    run_cluster_md,
)
from zno_book.liquid import (
    StagedLiquidProtocol,
    run_staged_liquid,
    staged_liquid_metrics,
)
from zno_book.reference import recipes
from zno_book.reference.plan import (
    CLUSTER_MD_FRAMES,
    MODEL_KINDS,
    all_tasks,
    cluster_md_candidates,
    cluster_md_tasks,
    nanoparticle_clusters,
)
from zno_book.structures import ionic_packing

ENSEMBLE = "test_campaign:pair_ensemble"
TINY_LIQUID = StagedLiquidProtocol(heat_steps=20, settle_steps=20, nvt_steps=200, temperature=1500.0,
                                   temperature_block_fs=50.0)
PILOT_KINDS = ("linear_bp", "nnp")  # two of the book's kinds, played by the pair potential
TINY_MD = {"hot": ClusterMDProtocol("hot", 600.0, 60), "ramp": ClusterMDProtocol("ramp", (300.0, 900.0), 60,
                                                                                   ramp_interval=20)}


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    with threadpool_limits(limits=1, user_api="blas"):
        yield


class PairMember:
    """A stand-in ensemble member: the ZnO pair potential, with an identity."""

    def __init__(self, name):
        self.name = name

    def calculator(self):
        return ZnOPair()

    def digest(self):
        return hashlib.sha256(self.name.encode()).hexdigest()


def pair_ensemble(kind):
    """Two members per kind (the loader named by ENSEMBLE)."""
    return [PairMember(f"{kind}{k}") for k in range(2)]


# ------------------------------------------------------------------------------------------------ tasks


def test_tasks_are_named_ordered_and_runnable():
    todo = campaign.tasks(ENSEMBLE, kinds=("a", "b"), seeds=(0, 1), cluster_names=("ring3",), schedules=TINY_MD)
    names = [t.name for t in todo]
    assert len(names) == len(set(names))
    ids = campaign.member_ids(ENSEMBLE, "a")
    assert ids == [f"m{k:02d}-{PairMember(f'a{k}').digest()[:8]}" for k in range(2)]
    assert names[0] == f"a/{ids[0]}/bulk" and names[1] == f"b/{campaign.member_ids(ENSEMBLE, 'b')[0]}/bulk"
    tests = [n.split("/")[2] for n in names]
    # static tests first, then every liquid run, then the cluster MD seed by seed
    assert tests.index("liquid") > max(tests.index(t) for t in ("bulk", "surfaces", "phonons", "clusters"))
    assert tests.index("cluster_md") > len(tests) - 1 - tests[::-1].index("liquid")
    md = [n for n in names if "/cluster_md/" in n]
    assert len(md) == 2 * 2 * 2 * len(TINY_MD) and md[0].endswith("seed0") and md[-1].endswith("seed1")
    for task in todo:
        driver.resolve(task.fn)
        json.dumps(task.kwargs)
        assert task.cost > 0 and task.kwargs["ensemble"] == ENSEMBLE
    liquid = [t for t in todo if "/liquid/" in t.name]
    assert {t.kwargs["protocol"]["seed"] for t in liquid} == {0, 1}
    assert campaign.tasks(ENSEMBLE, kinds=("a",), tests=("bulk",), member_indices=[1])[0].name == f"a/{ids[1]}/bulk"
    with pytest.raises(ValueError, match="unknown tests"):
        campaign.tasks(ENSEMBLE, tests=("melting",))


def test_members_are_checked_by_digest():
    ids = campaign.member_ids(ENSEMBLE, "a")
    assert campaign.load_member(ENSEMBLE, "a", ids[1]).digest().startswith(ids[1].split("-")[1])
    with pytest.raises(RuntimeError, match="retrained"):
        campaign.load_member(ENSEMBLE, "a", "m01-00000000")
    with pytest.raises(ImportError, match="cannot load the 'no_such_module:f' ensemble"):
        campaign.members("no_such_module:f", "a")


def test_v1_committees_are_the_pilot_ensembles():
    for kind in MODEL_KINDS:
        ids = campaign.member_ids("v1", kind)
        assert len(ids) == 5 and len(set(ids)) == 5
        assert campaign.load_member("v1", kind, ids[-1]).digest().startswith(ids[-1].split("-")[1])


# ------------------------------------------------------------------------------------- the liquid protocol


def test_staged_protocol_heats_in_stages_to_the_target():
    p = StagedLiquidProtocol()
    stages = p.stages()
    assert [s.name for s in stages] == ["heat1000K", "heat2000K", "settle", "liquid"]
    assert [s.temperature_K for s in stages] == pytest.approx([1000.0, 2000.0, 3000.0, 3000.0])
    assert stages[-1].ensemble == "nvt" and all(s.ensemble == "langevin" for s in stages[:-1])
    assert p.target_start_step == 1000 and p.total_steps == 6500 and p.n_atoms == 36
    other = StagedLiquidProtocol(temperature=2400.0, density=5.2)
    assert [s.temperature_K for s in other.stages()[:2]] == pytest.approx([800.0, 1600.0])
    assert StagedLiquidProtocol(**json.loads(json.dumps(p.as_dict()))) == p
    with pytest.raises(ValueError, match="ascending fractions"):
        StagedLiquidProtocol(heating=(0.5, 1.2))


def synthetic_run(p, temperatures, event_step=None, kind="min_distance"):
    """An MDResult of ``p``'s length with the given temperature samples (every interval) and frames of a
    packing with velocities, for the accounting of staged_liquid_metrics."""
    steps = np.arange(0, p.total_steps + 1, p.interval)
    if event_step is not None:
        steps = steps[steps <= event_step]
    temperatures = np.asarray(temperatures, float)[:len(steps)]
    log = MDLog(steps.astype(float), steps * p.timestep_fs, temperatures, np.zeros(len(steps)), np.zeros(len(steps)),
                np.zeros(len(steps)), n_atoms=p.n_atoms)
    atoms = ionic_packing(p.n_formula, p.density, p.seed)
    frames = []
    for k in range(len(steps)):
        frame = atoms.copy()
        frame.positions += 0.01 * np.sqrt(k)
        frame.set_momenta(np.full((len(frame), 3), 0.01))
        frames.append(frame)
    event = MDEvent(kind, int(event_step), event_step * p.timestep_fs, "test") if event_step is not None else None
    return MDResult(atoms, log, frames, event, int(steps[-1]), p.total_steps, 1.0)


def test_survival_is_counted_in_the_target_part():
    p = TINY_LIQUID
    target = np.full(p.total_steps // p.interval + 1, p.temperature)
    died_in_liquid = staged_liquid_metrics(synthetic_run(p, target, event_step=150), p, ZnOPair())
    assert died_in_liquid["survival_fs"] == (150 - p.target_start_step) * p.timestep_fs
    assert died_in_liquid["censored"] == 0 and died_in_liquid["event_stage"] == "liquid"
    assert "D_Zn_A2_ps" not in died_in_liquid  # diffusion and g(r) only for runs that live
    died_heating = staged_liquid_metrics(synthetic_run(p, target, event_step=30), p, ZnOPair())
    assert died_heating["survival_fs"] == 0.0 and died_heating["event_stage"] == "heat1000K"
    lived = staged_liquid_metrics(synthetic_run(p, target), p, ZnOPair())
    assert lived["censored"] == 1 and lived["survival_fs"] == (p.total_steps - p.target_start_step) * p.timestep_fs
    assert lived["overshoot"] == 0 and lived["max_T_block_target_K"] == pytest.approx(p.temperature)
    assert np.isfinite(lived["pressure_mean_GPa"]) and lived["pressure_error_GPa"] >= 0
    assert lived["rdf_r_A"].shape == lived["rdf_Zn-O"].shape and np.isfinite(lived["D_O_A2_ps"])


def test_a_block_of_overshoot_is_flagged_and_a_single_spike_is_not():
    p = TINY_LIQUID
    n = p.total_steps // p.interval + 1
    spike = np.full(n, p.temperature)
    spike[10] = 1.4 * p.temperature  # one sample of five in its block: an instantaneous fluctuation
    quiet = staged_liquid_metrics(synthetic_run(p, spike), p, ZnOPair())
    assert quiet["overshoot"] == 0 and quiet["max_T_K"] == 1.4 * p.temperature
    hot = np.full(n, p.temperature)
    hot[2:4] = 1.5 * p.temperature  # a heating stage's whole block far above the target
    assert staged_liquid_metrics(synthetic_run(p, hot), p, ZnOPair())["overshoot"] == 1


def test_tiny_staged_run_with_a_pair_potential():
    calc = ZnOPair()
    result = run_staged_liquid(calc, TINY_LIQUID)
    out = staged_liquid_metrics(result, TINY_LIQUID, calc)
    assert len(out["time_fs"]) == len(out["temperature_K"]) and out["time_fs"][0] == 0
    assert out["max_T_block_heating_K"] < 1.5 * TINY_LIQUID.temperature  # strong thermostat: no runaway
    assert 0 <= out["survival_fs"] <= TINY_LIQUID.nvt_steps + TINY_LIQUID.settle_steps
    assert out["shortest_A"] > 0.5


# ------------------------------------------------------------------------------------------ cluster MD


def test_first_persistent():
    assert first_persistent([0, 1, 1, 0, 1, 1, 1], 3) == 4
    assert first_persistent([1, 1, 0], 3) is None and first_persistent([0, 1], 1) == 1


def cluster_run(positions, temperatures, event=None):
    ring = recipes.build(nanoparticle_clusters()["ring3"])
    frames = []
    for x in positions:
        frame = ring.copy()
        frame.positions = x
        frames.append(frame)
    n = len(frames)
    times = np.arange(n) * 10.0
    log = MDLog(times, times, np.asarray(temperatures, float), np.zeros(n), np.zeros(n), np.zeros(n), len(ring))
    return ring, MDResult(ring, log, frames, event, int(times[-1]), int(times[-1]), 1.0)


def test_cluster_md_accounting():
    p = ClusterMDProtocol("test", 1000.0, 300, persistence_fs=50.0)
    ring = recipes.build(nanoparticle_clusters()["ring3"])
    apart = ring.positions.copy()
    apart[0] += 20.0  # a Zn atom gone
    n = 31
    # in pieces from sample 10 to 13 (40 fs: shorter than the persistence) and from 20 on (for good)
    positions = [apart if 10 <= k <= 13 or k >= 20 else ring.positions for k in range(n)]
    temperatures = np.linspace(300, 1200, n)
    start, result = cluster_run(positions, temperatures)
    out = cluster_md_metrics(result, start, p)
    assert out["fragmentation_time_fs"] == 200.0 and out["first_event_kind"] == "fragmentation"
    assert out["survival_fs"] == 200.0 and out["censored"] == 0 and out["intact"] == 0
    labels = list(out["snapshot_labels"])
    assert labels == ["before_event", "hottest", "final"]
    assert out["snapshot_time_fs"][0] == 190.0 and out["snapshot_time_fs"][1] == 190.0  # heating: hottest last
    # a watchdog event before the fragmentation is the first event
    event = MDEvent("min_distance", 150, 150.0, "test", 1.0)
    _, early = cluster_run(positions[:16], temperatures[:16], event)
    out = cluster_md_metrics(early, start, p)
    assert out["first_event_kind"] == "min_distance" and out["first_event_fs"] == 150.0
    # nothing happened: censored at the run's length, intact, back at the start
    _, calm = cluster_run([ring.positions] * n, np.full(n, 1000.0))
    out = cluster_md_metrics(calm, start, p)
    assert out["censored"] == 1 and out["intact"] == 1 and out["survival_fs"] == p.steps * p.timestep_fs
    assert out["rmsd_A"] == pytest.approx(0.0, abs=1e-6) and out["cn_fractions"].sum() == pytest.approx(1.0)


def test_tiny_cluster_md_with_a_pair_potential():
    ring = recipes.build(nanoparticle_clusters()["ring3"])
    result = run_cluster_md(ring, ZnOPair(), TINY_MD["ramp"], seed=1)
    out = cluster_md_metrics(result, ring, TINY_MD["ramp"])
    assert len(out["time_fs"]) == len(out["n_fragments"]) and out["snapshot_positions"].shape == (3, 6, 3)
    assert out["max_T_K"] > 0 and np.all(out["n_fragments"] >= 1)


# ------------------------------------------------------------------------------------- table and DFT


@pytest.fixture(scope="module")
def pilot(tmp_path_factory):
    """The tiny campaign (liquid and cluster MD of two pair-potential members per kind) run by the driver."""
    root = tmp_path_factory.mktemp("book")
    todo = campaign.tasks(ENSEMBLE, kinds=PILOT_KINDS, tests=("liquid", "cluster_md"), seeds=(0, 1),
                          cluster_names=("ring3",), schedules=TINY_MD, liquid=TINY_LIQUID)
    report = driver.run(todo, driver.FolderStore(campaign.campaign_dir(ENSEMBLE, root)),
                        executors.factory("serial", 1), workers=1, log=io.StringIO())
    assert report.ok, report.failed
    return root, todo


def test_collect_gives_a_tidy_table(pilot):
    root, todo = pilot
    frame = campaign.collect(ENSEMBLE, root)
    assert list(frame.columns) == campaign.COLUMNS
    assert set(frame["kind"]) == set(PILOT_KINDS) and frame.groupby("kind")["member"].nunique().tolist() == [2, 2]
    liquid = campaign.liquid_test(TINY_LIQUID)
    assert liquid == "liquid/4.90gcc-1500K" and campaign.REFERENCE_LIQUID == "liquid/4.90gcc-3000K"
    assert set(frame["test"]) == {liquid, "cluster_md/ring3/hot", "cluster_md/ring3/ramp"}
    assert set(frame["seed"]) == {0, 1}
    runs = frame[frame["metric"] == "survival_fs"]
    assert len(runs) == len(todo)  # one survival time per run
    one_hot = frame[frame["metric"].str.startswith("event=")].groupby(["kind", "member", "test", "seed"])["value"]
    assert (one_hot.sum() == 1).all()  # each run ends in exactly one way
    table = campaign.summary(frame)
    row = table.loc[("nnp", liquid, "survival_fs", "fs")]
    assert row["n"] == 4 and row["members"] == 2 and row["low"] <= row["median"] <= row["high"]
    assert row["median_low"] <= row["median"] <= row["median_high"]
    curves = campaign.survival_curves(frame, liquid)
    assert set(curves) == set(PILOT_KINDS) and all(c.n == 4 for c in curves.values())
    assert all(np.all(np.diff(c.survival) <= 0) for c in curves.values())


def test_cluster_md_candidates_within_budget(pilot, tmp_path):
    root, _ = pilot
    written = campaign.write_cluster_md_candidates(ENSEMBLE, kinds=PILOT_KINDS, budget_s=3600.0, root=root,
                                                   data_root=tmp_path)
    for kind, frames in written.items():
        assert 1 <= len(frames) <= CLUSTER_MD_FRAMES
        assert sum(a.info["estimated_cost_s"] for a in frames) <= 1800.0
        stored = read(tmp_path / f"candidates/cluster_md_{kind}.extxyz", index=":")
        assert len(stored) == len(frames) and all(not a.pbc.any() for a in stored)
        assert all(a.info["kind"] == kind and a.info["cluster"] == "ring3" for a in stored)


def test_cluster_md_candidates_only_from_the_seeds_asked(pilot, tmp_path):
    root, _ = pilot
    written = campaign.write_cluster_md_candidates(ENSEMBLE, kinds=PILOT_KINDS, budget_s=3600.0, seeds=[1],
                                                   root=root, data_root=tmp_path)
    assert all(a.info["seed"] == 1 for frames in written.values() for a in frames)
    with pytest.raises(RuntimeError, match="no cluster MD results"):
        campaign.write_cluster_md_candidates(ENSEMBLE, kinds=PILOT_KINDS, seeds=[7], root=root, data_root=tmp_path)


def test_cluster_md_dft_check_compares_every_member_of_the_kind(pilot, tmp_path):
    root, _ = pilot
    written = campaign.write_cluster_md_candidates(ENSEMBLE, kinds=PILOT_KINDS, budget_s=3600.0, root=root,
                                                   data_root=tmp_path)
    labelled = []  # "DFT": the pair potential with its energy shifted by 0.1 eV per atom, forces scaled 1.1×
    for kind, frames in written.items():
        for k, atoms in enumerate(frames):
            atoms = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell)  # only what DFT returns
            atoms.calc = ZnOPair()
            step = {"op": "frame", "file": cluster_md_candidates(kind), "index": k}
            atoms.info.update(task=f"nanoparticles/md/{kind}/frame{k:02d}", recipe=json.dumps([step]),
                              energy=atoms.get_potential_energy() - 0.1 * len(atoms))
            atoms.arrays["forces"] = 1.1 * atoms.get_forces()
            atoms.calc = None
            labelled.append(atoms)
    check = campaign.cluster_md_dft_check(ENSEMBLE, labelled, data_root=tmp_path)
    assert len(check) == 2 * len(labelled)  # every frame against both members of its kind
    assert (check.groupby("task")["kind"].nunique() == 1).all()
    assert set(check["kind"]) == set(PILOT_KINDS) and check["seed"].notna().all()  # the MD's record
    assert np.allclose(check["energy_error"], 100.0)  # meV/atom
    forces = {a.info["task"]: a.arrays["forces"] for a in labelled}
    expected = [1e3 * np.sqrt(np.mean(np.square(forces[t] / 11))) for t in check["task"]]
    assert np.allclose(check["forces_rmse"], expected)
    own = check[check["member"] == check["source"]]
    assert len(own) == len(labelled) and np.allclose(own["energy_drift"], 0.0, atol=1e-6)
    assert check.loc[check["member"] != check["source"], "energy_drift"].isna().all()
    assert check["dft_above_relaxed"].notna().any()  # ring3 has a DFT relaxation in the data set
    moved = labelled[0].copy()
    moved.positions[0] += 0.1
    with pytest.raises(ValueError, match="not the structure DFT computed"):
        campaign.cluster_md_dft_check(ENSEMBLE, [moved], data_root=tmp_path)
    candidates = tmp_path / cluster_md_candidates(PILOT_KINDS[0])
    stranger = read(candidates, index=":")
    stranger[0].info["member"] = "m09-deadbeef"
    write(candidates, stranger, format="extxyz")
    with pytest.raises(ValueError, match="not a member"):
        campaign.cluster_md_dft_check(ENSEMBLE, labelled[:1], data_root=tmp_path)


def test_dft_cost_model_grows_with_size():
    small = Atoms("ZnO", positions=[[0, 0, 0], [1.8, 0, 0]], cell=[12, 12, 12])
    large = recipes.build(nanoparticle_clusters()["wurtzite16"])
    assert 0 < campaign.dft_cost_seconds(small) < campaign.dft_cost_seconds(large)


def test_cluster_md_dft_tasks_in_the_plan():
    planned = cluster_md_tasks()
    assert len(planned) == CLUSTER_MD_FRAMES * len(MODEL_KINDS)
    everything = {t.name: t for t in all_tasks()}
    for task in planned:
        kind = task.name.split("/")[2]
        assert everything[task.name] == task and task.dataset == "nanoparticles"
        assert task.config_type == f"cluster_md_{kind}" and task.kind == "single"
        assert task.recipe[0]["file"] == cluster_md_candidates(kind)
