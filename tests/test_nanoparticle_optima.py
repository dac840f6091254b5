"""Cluster diagnostics, and the bookkeeping of "the honest test": DFT single points at the models' own
nanoparticle optima (sampler → candidate files → plan tasks). No DFT and no shipped model is run here."""

import json

import numpy as np
import pytest
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

from mliplib.properties.nanoparticles import (bond_lengths, cluster_diagnostics, formula_units, fragments,
                                              shortest_distance)
from mliplib.reference import plan, sampling
from mliplib.reference.engine import DFTSettings
from mliplib.reference.plan import (MODEL_KINDS, all_tasks, model_optimum_candidates, model_optimum_tasks,
                                    nanoparticle_clusters, nanoparticle_tasks)
from mliplib.reference.recipes import build
from mliplib.reference.runner import Store, runnable
from mliplib.reference.structures import cage_cluster, in_box, ring_cluster, wurtzite_cluster


# --------------------------------------------------------------------------------------- diagnostics
def test_diagnostics_of_sane_and_broken_clusters():
    ring = ring_cluster(3)  # Zn–O 1.86 Å
    d = cluster_diagnostics(ring, energy=-30.0, bulk_energy=-11.0)
    assert d["problems"] == [] and d["n_fragments"] == 1 and d["largest_fragment"] == 6
    assert d["mean_cn"] == 2.0 and d["mean_bond"] == pytest.approx(1.86)
    assert d["shortest"] == pytest.approx(1.86) and d["n_formula"] == 3
    assert d["excess_energy"] == pytest.approx(1.0)  # −30/3 − (−11) eV per ZnO
    assert len(bond_lengths(cage_cluster())) == 36  # 24 atoms, three bonds each
    assert len(set(fragments(wurtzite_cluster(12)))) == 1
    blown = ring.copy()
    blown.positions *= 1.5  # Zn–O 2.8 Å: no bond left
    d = cluster_diagnostics(blown)
    assert d["n_fragments"] == 6 and any("no bonds left" in p for p in d["problems"])
    assert np.isnan(d["mean_bond"]) and d["mean_cn"] == 0.0
    squashed = ring.copy()
    squashed.positions *= 0.5
    assert any("apart" in p for p in cluster_diagnostics(squashed)["problems"])
    assert shortest_distance(squashed) == pytest.approx(0.93)
    low = cluster_diagnostics(ring, energy=-40.0, bulk_energy=-11.0)
    assert low["excess_energy"] < 0 and any("below the bulk" in p for p in low["problems"])
    assert "non-finite energy" in cluster_diagnostics(ring, energy=np.nan)["problems"]
    bad = ring.copy()
    bad.positions[0, 0] = np.nan
    assert cluster_diagnostics(bad)["problems"] == ["non-finite positions"]


def test_diagnostics_reject_non_stoichiometric():
    with pytest.raises(ValueError, match="stoichiometric"):
        cluster_diagnostics(ring_cluster(3)[:5])
    assert formula_units(cage_cluster()) == 12


# ------------------------------------------------------------------------------------- plan bookkeeping
def test_model_optimum_tasks_bookkeeping():
    from mliplib.models import zoo

    assert MODEL_KINDS == zoo.KINDS
    clusters = nanoparticle_clusters()
    assert list(clusters) == [t.name.split("/")[1] for t in nanoparticle_tasks()]
    tasks = model_optimum_tasks()
    assert len(tasks) == len(MODEL_KINDS) * len(clusters)
    names = {t.name for t in all_tasks()}
    for t in tasks:
        _, cluster, at = t.name.split("/")
        kind = at.removeprefix("at_")
        (step,) = t.recipe
        assert t.name in names and t.kind == "single" and t.relax is None and t.settings is None
        assert (t.dataset, t.config_type, t.priority) == ("nanoparticles", "cluster_model_optimum", 5)
        assert step == {"op": "frame", "file": model_optimum_candidates(kind), "index": list(clusters).index(cluster)}
    with pytest.raises(ValueError, match="unknown model kind"):
        model_optimum_candidates("gap")


# ------------------------------------------------------------------------------------------ sampler
class _Toy(Calculator):
    """E = k Σ_i |r_i − r̄|²: pulls every atom to the centroid (a model that collapses a cluster)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k=1.0):
        super().__init__()
        self.k = k

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.atoms.positions.mean(axis=0)
        self.results = {"energy": self.k * float(np.sum(d ** 2)), "forces": -2 * self.k * d}


class _Model:
    def __init__(self, k=1.0):
        self.k = k

    def calculator(self):
        return _Toy(self.k)


def test_nanoparticle_optima_frames_and_dft_safety(monkeypatch):
    monkeypatch.setattr(plan, "MODEL_OPTIMUM_RELAX", {"fmax": 0.05, "steps": 40, "optimizer": "BFGS"})
    with pytest.raises(ValueError, match="fingerprint"):
        sampling.nanoparticle_optima("plip", model=_Model(), progress=False)
    frames, energies = sampling.nanoparticle_optima("plip", model=_Model(), fingerprint="abc", progress=False)
    clusters = nanoparticle_clusters()
    assert [f.info["cluster"] for f in frames] == list(clusters) == list(energies)
    for frame, (name, recipe) in zip(frames, clusters.items()):
        assert frame.info["model"] == "plip" and frame.info["model_fingerprint"] == "abc"
        assert json.loads(frame.info["start_recipe"]) == recipe
        assert frame.info["model_step"] == frame.info["model_steps"] == len(energies[name]) - 1
        assert frame.info["model_energy"] == energies[name][-1] and energies[name][-1] < energies[name][0]
        assert shortest_distance(frame) < 1.0  # the toy model collapses every cluster ...
    safe, _ = sampling.nanoparticle_optima("plip", model=_Model(), fingerprint="abc", for_dft=True, progress=False)
    for frame, start in zip(safe, clusters.values()):  # ... so the sampler sends an earlier step to DFT
        assert shortest_distance(frame) >= sampling.DFT_MIN_DISTANCE
        assert frame.info["model_step"] < frame.info["model_steps"] and "instead" in frame.info["dft_note"]
        assert not frame.pbc.any() and frame.cell.lengths().min() >= 10.0 - 1e-9  # boxed with the start's vacuum
        assert len(frame) == len(build(start))


def test_sampler_writes_candidates_the_tasks_read(tmp_path, monkeypatch):
    from mliplib.models import zoo

    def fake_optima(kind, for_dft=False, progress=True):
        frames = []
        for name, recipe in nanoparticle_clusters().items():
            atoms = in_box(build(recipe), 5.0)
            atoms.info = {"cluster": name, "model": kind, "model_fingerprint": f"fp-{kind}", "model_converged": True,
                          "model_failure": "none", "dft_note": "none"}
            frames.append(atoms)
        return frames, {}

    monkeypatch.setattr(sampling, "nanoparticle_optima", fake_optima)
    monkeypatch.setattr(zoo, "load_or_train", lambda kind, progress=True: None)
    monkeypatch.setattr(zoo, "fingerprint", lambda kind: f"fp-{kind}")
    store = Store(tmp_path, DFTSettings())
    tasks = model_optimum_tasks()
    assert not any(runnable(t, store, {}) for t in tasks)
    sampling.sample_nanoparticle_optima(tmp_path, kinds=["nnp"], progress=False)
    ready = {t.name for t in tasks if runnable(t, store, {})}
    assert ready == {t.name for t in tasks if t.name.endswith("/at_nnp")}
    for t in tasks:
        if t.name in ready:
            atoms = build(list(t.recipe), root=str(tmp_path))
            assert atoms.info["cluster"] == t.name.split("/")[1] and atoms.info["model_converged"] is True
            assert atoms.info["model_failure"] == "none" and atoms.calc is None
    path = tmp_path / model_optimum_candidates("nnp")
    before = path.read_bytes()
    monkeypatch.setattr(zoo, "fingerprint", lambda kind: "retrained")
    sampling.sample_nanoparticle_optima(tmp_path, kinds=["nnp"], progress=False)  # kept, with a note
    assert path.read_bytes() == before and len(read(path, index=":")) == len(nanoparticle_clusters())
