"""Verdicts: the declared claims are decided by their intervals, in the paper's direction or against it; a part
without its data is not resolved, with the reason; the command refuses when the ensembles or the campaign's
results do not exist, and otherwise writes verdicts.json from the campaign's stored results (synthetic here,
read by the campaign's own collect) and the members' errors (stand-in members with known errors)."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from ase import Atoms

from mliplib.statistics import grouped_bootstrap_difference, grouped_bootstrap_interval
from zno_book import campaign, verdicts
from zno_book.clusters import CLUSTER_MD
from zno_book.constants import MODEL_KINDS, MODEL_LABELS, POLYMORPHS
from zno_book.datasets import load_zno
from zno_book.driver import FolderStore, Task
from zno_book.paths import data_dir
from zno_book.verdicts import CLAIMS, Claim, MissingResults, Part, claim_verdicts, evaluate, tied_ranks, write

RNG = np.random.default_rng(7)


def samples(centres, members=8, seeds=4, spread=1.0):
    """{kind: [values per member]} around the given centres (independent normal members and seeds)."""
    return {k: [c + spread * RNG.normal() + 0.5 * spread * RNG.normal(size=seeds) for _ in range(members)]
            for k, c in centres.items()}


def part(kinds, direction, tolerance=None, data=None, needs=()):
    return Part("p", "metric", "u", lambda *_: data, kinds, direction, tolerance=tolerance, needs=needs)


def decide(p):
    return evaluate(None, None, None, [Claim("c", (p,))])[0]


def test_a_comparison_follows_its_interval():
    far_apart = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 10.0})
    assert decide(part(("nnp", "plip"), "greater", data=far_apart))["verdict"] == "reproduced"
    assert decide(part(("nnp", "plip"), "less", data=far_apart))["verdict"] == "contradicted"
    alike = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 0.0}, spread=3.0)
    row = decide(part(("nnp", "plip"), "greater", data=alike))
    assert row["interval"][0] < 0 < row["interval"][1] and row["verdict"] == "not resolved"
    assert row["n"] == {"NNP": {"members": 8, "values": 32}, "PLIP": {"members": 8, "values": 32}}


def test_an_agreement_compares_the_interval_with_the_tolerance():
    data = {k: [np.array([v]) for v in RNG.normal(0.5, 0.05, 8)] for k in MODEL_KINDS}
    assert decide(part(("plip",), "below", tolerance=1.0, data=data))["verdict"] == "reproduced"
    assert decide(part(("plip",), "below", tolerance=0.2, data=data))["verdict"] == "contradicted"
    assert decide(part(("plip",), "below", tolerance=0.5, data=data))["verdict"] == "not resolved"


def test_a_claim_needs_all_its_parts():
    rows = [{"claim": "a", "verdict": "reproduced"}, {"claim": "a", "verdict": "not resolved"},
            {"claim": "b", "verdict": "reproduced"}, {"claim": "c", "verdict": "reproduced"},
            {"claim": "c", "verdict": "contradicted"}, {"claim": "c", "verdict": "not resolved"}]
    assert claim_verdicts(rows) == {"a": "not resolved", "b": "reproduced", "c": "contradicted"}


def test_ties_inside_the_uncertainty_share_a_rank():
    data = samples({"linear_bp": 0.0, "plip": 0.3, "nnp": 20.0})
    assert tied_ranks(data, lower_is_better=True) == {"linear_bp": 1, "plip": 1, "nnp": 3}
    assert tied_ranks(data, lower_is_better=False) == {"linear_bp": 2, "plip": 2, "nnp": 1}


def test_the_grouped_bootstrap_counts_members_not_seeds():
    # 2 members × 1000 seeds: the seeds say nothing about a new member, so the interval stays wide
    groups = [np.full(1000, 0.0) + RNG.normal(0, 0.01, 1000), np.full(1000, 10.0) + RNG.normal(0, 0.01, 1000)]
    wide = grouped_bootstrap_interval(groups, np.mean)
    assert wide.low < 1.0 and wide.high > 9.0
    same = [RNG.normal(0, 1, 5) for _ in range(8)]
    interval, p = grouped_bootstrap_difference(same, same, np.mean)
    assert interval.low <= 0 <= interval.high and p > 0.5


def test_the_declared_claims_are_the_papers_seven_with_tests():
    assert len(CLAIMS) == 7 and all(c.parts for c in CLAIMS)
    for claim in CLAIMS:
        for p in claim.parts:
            assert p.direction in (("below",) if len(p.kinds) == 1 else ("less", "greater"))
            assert (p.tolerance is not None) == (len(p.kinds) == 1) and p.unit and p.metric
            assert set(p.kinds) <= set(MODEL_KINDS)


def test_metrics_read_the_campaign_table():
    rows, dft = [], []
    for kind, scale in (("linear_bp", 1.02), ("plip", 1.001), ("nnp", 1.005)):
        for m in range(3):
            for metric in verdicts.LATTICE:
                rows.append((kind, f"m{m}", "bulk", -1, metric, 4.0 * scale, "Å"))
            rows += [(kind, f"m{m}", verdicts.LIQUID_TEST, 0, "survival_fs", 100.0 * m, "fs"),
                     (kind, f"m{m}", verdicts.LIQUID_TEST, 1, "survival_fs", 100.0 * m + 50, "fs"),
                     (kind, f"m{m}", "liquid/4.90gcc-1500K", 0, "survival_fs", 1e4, "fs")]  # another state
    dft = pd.DataFrame([("bulk", metric, 4.0, "Å") for metric in verdicts.LATTICE],
                       columns=["test", "metric", "value", "unit"])
    campaign = pd.DataFrame(rows, columns=["kind", "member", "test", "seed", "metric", "value", "unit"])
    lattice = verdicts.lattice_error(campaign, dft, None)
    assert np.allclose([v[0] for v in lattice["linear_bp"]], 2.0) and np.allclose(lattice["plip"][0], 0.1)
    survival = verdicts.liquid_survival(campaign, dft, None)
    assert [list(v) for v in survival["nnp"]] == [[0.0, 50.0], [100.0, 150.0], [200.0, 250.0]]
    with pytest.raises(ValueError, match="no DFT value"):
        verdicts.surface_error(campaign, dft, None)


def test_written_file_is_a_list_of_parts(tmp_path):
    data = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 10.0})
    rows = evaluate(None, None, None, [Claim("c", (part(("nnp", "plip"), "greater", data=data),))])
    path = write(rows, tmp_path / "verdicts.json", {"ensemble": "test"})
    content = json.loads(path.read_text())
    assert isinstance(content, list) and content[0]["claim_verdict"] == "reproduced"
    assert {"claim", "metric", "direction", "test", "n", "effect", "interval", "p", "verdict"} <= set(content[0])
    assert set(content[0]["n"]) == {MODEL_LABELS["nnp"], MODEL_LABELS["plip"]}


def test_a_part_without_its_data_is_not_resolved_with_the_reason():
    data = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 10.0})
    needs_heldout = part(("nnp", "plip"), "greater", data=data, needs=("heldout",))
    row = evaluate(None, None, None, [Claim("c", (needs_heldout,))], {"heldout": "not computed yet"})[0]
    assert row["verdict"] == "not resolved" and "not computed yet" in row["reason"]
    assert row["effect"] is None and row["interval"] is None and row["p"] is None
    assert row["n"] == {"NNP": {"members": 0, "values": 0}, "PLIP": {"members": 0, "values": 0}}
    assert decide(needs_heldout)["verdict"] == "reproduced"  # the same part with its data
    one_member = {**data, "plip": data["plip"][:1]}
    row = decide(part(("nnp", "plip"), "greater", data=one_member))
    assert row["verdict"] == "not resolved" and "'PLIP': 1" in row["reason"]
    assert row["n"]["PLIP"] == {"members": 1, "values": 4}


def test_only_complete_members_enter_a_test():
    # an MD part of 3 runs per seed: 8 members × 4 seeds × 3 runs are complete, a member with 1 seed is not
    data = samples({"linear_bp": 0.0, "plip": 0.0, "nnp": 10.0}, seeds=12)
    md_part = Part("p", "metric", "u", lambda *_: data, ("nnp", "plip"), "greater", runs_per_seed=3)
    row = decide(md_part)
    assert row["verdict"] == "reproduced" and row["n"]["NNP"] == {"members": 8, "values": 96}
    halfway = {**data, "nnp": [v[:3] for v in data["nnp"][:5]] + data["nnp"][5:]}  # 5 members ran 1 seed
    row = decide(Part("p", "metric", "u", lambda *_: halfway, ("nnp", "plip"), "greater", runs_per_seed=3))
    assert row["verdict"] == "not resolved" and "members with all 12 runs (4 MD seeds × 3): {'NNP': 3}" in row["reason"]
    assert evaluate(None, None, None, [Claim("c", (md_part,))], min_seeds=5)[0]["verdict"] == "not resolved"
    assert evaluate(None, None, None, [Claim("c", (md_part,))], min_members=9)[0]["verdict"] == "not resolved"


def test_the_heldout_set_must_exist_and_separate_the_models(tmp_path, monkeypatch):
    def frame(force):
        atoms = Atoms("ZnO", positions=[[0, 0, 0], [0, 0, 2]])
        atoms.arrays["forces"] = np.array([[0, 0, force], [0, 0, -force]])
        return atoms

    assert verdicts.heldout_problem([frame(0.5)] * 3, min_frames=3) is None
    problem = verdicts.heldout_problem([frame(0.5)] * 2 + [frame(0.0)] * 5, min_frames=3)
    assert "2 frames with non-zero forces" in problem and "3" in problem
    monkeypatch.setattr(verdicts, "SPLITS", ("train",))  # a checkout without the held-out split
    frames, problem = verdicts.heldout_frames("heldout")
    assert frames == [] and "no 'heldout' split" in problem
    monkeypatch.setenv("ZNO_BOOK_ROOT", str(tmp_path))  # a data folder without the file
    frames, problem = verdicts.heldout_frames("train")
    assert frames == [] and "train.extxyz is not in the data yet" in problem and str(tmp_path) not in problem


# ------------------------------------------------------------------ the command, on synthetic campaign results

ENSEMBLE = "test_verdicts:stand_in_ensemble"
MEMBERS = 4
#: the stand-in campaign is complete with its 4 members and 2 MD seeds (liquid; not the cluster MD)
COMPLETE = {"min_members": MEMBERS, "min_seeds": 2}
#: force error (eV/Å per component) of member k of each kind: base + 0.01 k
FORCE_ERROR = {"linear_bp": 0.2, "plip": 0.1, "nnp": 0.4}
#: relative errors of the lattice constants and of the relaxed surface energies
LATTICE_ERROR = {"linear_bp": 0.003, "plip": 0.002, "nnp": 0.001}
SURFACE_ERROR = {"linear_bp": 0.5, "plip": -0.1, "nnp": 0.1}


class StandIn:
    """An ensemble member whose predictions are the DFT labels of the frame plus known errors."""

    def __init__(self, kind, k):
        self.name, self.force_error = f"{kind}{k}", FORCE_ERROR[kind] + 0.01 * k

    def calculator(self):
        raise NotImplementedError("the campaign's results are synthetic")

    def digest(self):
        return hashlib.sha256(self.name.encode()).hexdigest()

    def predict(self, atoms):
        return {"energy": atoms.info["energy"] + 1e-3 * len(atoms), "forces": atoms.arrays["forces"] + self.force_error}


def stand_in_ensemble(kind):
    """The loader named by ENSEMBLE."""
    return [StandIn(kind, k) for k in range(MEMBERS)]


def bulk_result(dft, error):
    """The bulk test's result: DFT's numbers, with the lattice constants off by ``error`` (relative)."""
    values = dft[dft["test"] == "bulk"].set_index("metric")["value"]
    out = {"phase": np.array(POLYMORPHS), "error": np.array([""] * len(POLYMORPHS))}
    for key in ("a", "c", "u", "volume", "b0", "de"):
        scale = 1 + error if key in ("a", "c") else 1e-3 if key == "de" else 1.0  # de stored in eV/ZnO
        out[key] = np.array([values.get(f"{key}:{phase}", np.nan) * scale for phase in POLYMORPHS])
    return out


def surfaces_result(dft, error):
    gamma = dft[dft["test"] == "surfaces"].set_index("metric")["value"]
    faces = ["10-10", "11-20"]
    relaxed = np.array([gamma[f"gamma_relaxed:{f}"] * (1 + error) for f in faces])
    return {"surface": np.array(faces), "status": np.array(["intact", "intact"]), "gamma_relaxed": relaxed,
            "gamma_unrelaxed": 1.1 * relaxed}


def phonons_result(overlap):
    return {f"{key}_{where}": value for where in ("dft_structures", "own_cell")
            for key, value in (("overlap", overlap), ("min_frequency", 0.0), ("max_frequency", 16.0))}


def clusters_result(flagged):
    names = ["ring3", "ring6", "cage12", "wurtzite8"]
    return {"cluster": np.array(names), "flagged": np.array(flagged), "shortest": np.full(4, 1.9),
            "n_fragments": np.ones(4), "mean_cn": np.full(4, 2.5), "energy": np.full(4, -20.0),
            "excess_energy": np.full(4, 0.5), "rmsd_dft": np.full(4, 0.1)}


def liquid_result(survival, seed):
    return {"survival_fs": survival, "censored": float(survival >= 2000.0),
            "event_kind": "none" if survival >= 2000.0 else "min_distance", "event_stage": "nvt",
            "protocol": json.dumps({"steps": 2000, "seed": seed})}


def cluster_md_result(seed):
    return {"intact": 1.0, "survival_fs": 1000.0, "censored": 1.0, "first_event_fs": np.nan, "max_T_K": 320.0,
            "rmsd_A": 0.2, "mean_cn": 2.5, "first_event_kind": "none", "cn_fractions": np.array([0.0, 0.2, 0.8]),
            "protocol": json.dumps({"steps": 1000, "seed": seed})}


def write_campaign(dft, stale=True):
    """Stored results of every test of every stand-in member (and of one member no longer in the ensemble)."""
    store = FolderStore(campaign.campaign_dir(ENSEMBLE))

    def save(name, result):
        store.save(Task(name, "zno_book.campaign:run_bulk"), {**result, "cpu_time_s": 1.0})

    for kind in MODEL_KINDS:
        for k, member in enumerate(campaign.member_ids(ENSEMBLE, kind)):
            save(f"{kind}/{member}/bulk", bulk_result(dft, LATTICE_ERROR[kind] + 1e-4 * k))
            save(f"{kind}/{member}/surfaces", surfaces_result(dft, SURFACE_ERROR[kind] + 0.01 * k))
            save(f"{kind}/{member}/phonons", phonons_result(0.95 - 0.01 * k))
            save(f"{kind}/{member}/clusters", clusters_result([int(kind == "nnp" and c <= k % 3) for c in range(4)]))
            for seed in range(2):
                survival = 2000.0 if kind == "nnp" else 100.0 + 50.0 * k + 20.0 * seed
                save(f"{kind}/{member}/{verdicts.LIQUID_TEST}/seed{seed}", liquid_result(survival, seed))
                save(f"{kind}/{member}/cluster_md/ring3/300K/seed{seed}", cluster_md_result(seed))
    if stale:
        save("nnp/m07-deadbeef/surfaces", surfaces_result(dft, 5.0))


@pytest.fixture
def book(tmp_path, monkeypatch):
    """A book root with this checkout's data and nothing else."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "zno").symlink_to(data_dir().resolve())
    monkeypatch.setenv("ZNO_BOOK_ROOT", str(tmp_path))
    return tmp_path


def test_the_command_refuses_without_ensembles_or_campaign_results(book, capsys):
    with pytest.raises(MissingResults, match="train_ensembles.py"):
        verdicts.compute("v2")  # no models/v2/ensembles under this root
    assert verdicts.main(["--ensemble", "v2"]) == 2
    assert "python scripts/train_ensembles.py" in capsys.readouterr().err
    with pytest.raises(MissingResults, match=f"python -m zno_book.campaign run --ensemble {ENSEMBLE}"):
        verdicts.compute(ENSEMBLE)  # members, but no campaign results
    save = FolderStore(campaign.campaign_dir(ENSEMBLE)).save
    save(Task("plip/m09-deadbeef/bulk", "zno_book.campaign:run_bulk"), {"cpu_time_s": 1.0, **bulk_result(
        campaign.dft_reference(), 0.0)})
    with pytest.raises(MissingResults, match="no longer in"):
        verdicts.compute(ENSEMBLE)
    assert not verdicts.verdicts_path().exists()


def test_the_command_decides_the_claims_from_the_stored_results(book):
    dft = campaign.dft_reference()
    write_campaign(dft)
    rows, provenance = verdicts.compute(ENSEMBLE, heldout_split="train", **COMPLETE)  # any labelled split ≥ 60
    claims = claim_verdicts(rows)
    assert claims == {
        "crystals: all three agree well with DFT": "contradicted",  # linear-BP's surfaces 50 % off
        "crystals: linear-BP the least accurate": "contradicted",  # the NNP's held-out forces are worse
        "crystals: NNP and PLIP the best": "reproduced",
        "nanoparticles: NNP poor": "not resolved",  # NNP optima flagged, but the cluster MD is incomplete
        "liquid: linear models better than the NNP": "contradicted",  # the NNP's liquid lives longest
        "away from the data: PLIP better than the NNP": "reproduced",
        "away from the data: linear-BP better than the NNP": "reproduced"}
    by_part = {(r["claim"], r["part"]): r for r in rows}
    far = by_part["away from the data: PLIP better than the NNP", "PLIP vs NNP"]
    assert far["n"] == {"PLIP": {"members": MEMBERS, "values": MEMBERS}, "NNP": {"members": MEMBERS, "values": MEMBERS}}
    assert np.isclose(far["effect"], 1e3 * (FORCE_ERROR["plip"] - FORCE_ERROR["nnp"]))  # medians, meV/Å
    liquid = by_part["liquid: linear models better than the NNP", "PLIP vs NNP"]
    assert liquid["n"]["NNP"] == {"members": MEMBERS, "values": 2 * MEMBERS} and liquid["interval"][1] < 0
    assert provenance["stale_campaign_results"] == ["nnp/m07-deadbeef"]  # its 500 % surface error left out
    md = by_part["nanoparticles: NNP poor", "NNP vs PLIP (MD)"]
    runs = 2 * len(campaign.CLUSTERS) * len(CLUSTER_MD)  # 2 seeds of every cluster and schedule
    assert md["verdict"] == "not resolved" and f"members with all {runs} runs" in md["reason"]
    surfaces = by_part["crystals: all three agree well with DFT", "NNP: surfaces"]
    assert surfaces["verdict"] == "reproduced" and surfaces["n"]["NNP"]["members"] == MEMBERS
    assert provenance["heldout"] == {"split": "train", "frames": len(load_zno("train")), "status": "used"}

    rows, provenance = verdicts.compute(ENSEMBLE, heldout_split="not_computed_yet", **COMPLETE)
    for row in rows:
        if row["claim"] == "crystals: linear-BP the least accurate":
            assert row["verdict"] == "not resolved" and "no 'not_computed_yet' split" in row["reason"]
    assert claim_verdicts(rows)["crystals: linear-BP the least accurate"] == "not resolved"
    assert len(rows) == sum(len(c.parts) for c in CLAIMS)  # nothing dropped


def test_the_command_writes_verdicts_json(book):
    write_campaign(campaign.dft_reference(), stale=False)
    assert verdicts.main(["--ensemble", ENSEMBLE, "--version", "vtest"]) == 0
    path = book / "artefacts" / "vtest" / "findings" / "verdicts.json"
    content = json.loads(path.read_text())
    assert isinstance(content, list) and len(content) == sum(len(c.parts) for c in CLAIMS)
    for row in content:
        assert {"claim", "metric", "direction", "test", "n", "effect", "verdict", "claim_verdict"} <= set(row)
        assert "interval" in row or "p" in row
        assert row["verdict"] in verdicts.VERDICTS and set(row["n"]) <= set(MODEL_LABELS.values())
        assert row["verdict"] != "not resolved" or row["interval"] is not None or row["reason"]
    provenance = json.loads(path.with_suffix(".provenance.json").read_text())
    assert provenance["ensemble"] == ENSEMBLE and len(provenance["members"]["nnp"]) == MEMBERS
