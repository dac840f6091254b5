"""Cluster diagnostics, and the bookkeeping of "the honest test": DFT single points at the models' own
nanoparticle optima (sampler → candidate files → plan tasks). No DFT and no shipped model is run here."""

import json

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.io import read

from mliplib.builders import in_box
from mliplib.properties.nanoparticles import formula_units, relax_cluster
from mliplib.properties.structure import shortest_distance
from zno_book import zoo
from zno_book.clusters import (
    bond_lengths,
    cluster_diagnostics,
    fragments,
    ring_geometry,
)
from zno_book.reference import sampling
from zno_book.reference.plan import (
    MODEL_KINDS,
    all_tasks,
    model_optimum_candidates,
    model_optimum_tasks,
    nanoparticle_clusters,
    nanoparticle_tasks,
)
from zno_book.reference.recipes import build
from zno_book.reference.runner import inputs_ready
from zno_book.structures import cage_cluster, ring_cluster, wurtzite_cluster


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


class _Plateau(Calculator):
    """E(ρ) of the radius of gyration ρ: a constant inward pull down to a narrow well at ρ ≈ 1.3 Å (width
    0.01 Å, far below BFGS's 0.2 Å step) and, further in, a flat plateau 2 eV up: a model whose energy
    saturates off its training data (like a network with saturated units)."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.atoms.positions.mean(axis=0)
        rho = np.sqrt(np.mean(np.sum(d ** 2, axis=1)))
        pull, plateau, rho_c, width = 1.0, 2.0, 1.3, 0.01
        sig = 0.5 * (1.0 + np.tanh((rho - rho_c) / (2 * width)))
        dsig = sig * (1.0 - sig) / width
        energy = pull * (rho - rho_c) * sig + plateau * (1.0 - sig)
        de_drho = pull * sig + (pull * (rho - rho_c) - plateau) * dsig
        self.results = {"energy": energy, "forces": -de_drho * d / (len(d) * rho)}


def test_a_relaxation_that_ends_above_its_start_is_flagged():
    ring = ring_cluster(3)  # ρ = 1.86 Å
    relaxed, log = relax_cluster(ring, _Plateau())
    # BFGS jumps over the narrow well onto the plateau and reports convergence there, uphill from the start
    assert log.converged and log.failure is None and log.energies[-1] > log.energies[0] + 1.0
    assert shortest_distance(relaxed) > 1.2  # ... with no atoms on top of each other: the old checks pass
    assert cluster_diagnostics(relaxed, energy=log.energies[-1])["problems"] == []
    d = cluster_diagnostics(relaxed, energy=log.energies[-1], start_energy=log.energies[0])
    assert d["relaxation_energy"] == pytest.approx((log.energies[-1] - log.energies[0]) / 3)
    assert d["problems"] == [f"ended {d['relaxation_energy']:.3f} eV/ZnO above its start"]
    downhill = cluster_diagnostics(ring, energy=-30.0, start_energy=-29.0)
    assert downhill["problems"] == [] and downhill["relaxation_energy"] == pytest.approx(-1 / 3)
    assert np.isnan(cluster_diagnostics(ring, energy=-30.0)["relaxation_energy"])


def test_ring_geometry():
    for n in (3, 6):
        ring = ring_cluster(n, bond=1.9)
        g = ring_geometry(ring)
        assert g["is_ring"] and g["mean_bond"] == pytest.approx(1.9) and g["bond_range"] == pytest.approx(0, abs=1e-12)
        # a regular planar 2n-gon: every interior angle 180° (2n − 2) / 2n, Zn and O on one circle
        assert g["angle_zn"] == pytest.approx(180 * (n - 1) / n) == g["angle_o"]
        assert g["nonplanarity"] == pytest.approx(0, abs=1e-12) and g["radius_zn"] == pytest.approx(g["radius_o"])
    ring = ring_cluster(3)
    ring.positions[ring.numbers == 8] *= 1.1  # O pushed out in the plane: sharper at O, angles still add to 240°
    g = ring_geometry(ring)
    assert g["radius_o"] > g["radius_zn"] and g["angle_o"] < g["angle_zn"] and g["nonplanarity"] < 1e-12
    assert g["angle_zn"] + g["angle_o"] == pytest.approx(240)
    ring.positions[0, 2] += 0.3  # one Zn lifted out of the plane
    assert ring_geometry(ring)["nonplanarity"] > 0.05
    cage = ring_geometry(cage_cluster())
    assert not cage["is_ring"] and np.isnan(cage["angle_zn"]) and cage["mean_bond"] == pytest.approx(1.93)


def test_diagnostics_reject_non_stoichiometric():
    with pytest.raises(ValueError, match="stoichiometric"):
        cluster_diagnostics(ring_cluster(3)[:5])
    assert formula_units(cage_cluster(), "ZnO") == 12
    assert formula_units(Atoms("Al4O6"), "Al2O3") == 2
    for wrong in (Atoms("Zn2O2H"), Atoms("Zn"), Atoms("Al3O6")):
        with pytest.raises(ValueError, match="stoichiometric"):
            formula_units(wrong, "Al2O3" if "Al" in wrong.get_chemical_formula() else "ZnO")


# ------------------------------------------------------------------------------------- plan bookkeeping
def test_model_optimum_tasks_bookkeeping():
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


def test_nanoparticle_optima_frames_and_dft_safety():
    quick = {"fmax": 0.05, "steps": 40, "optimizer": "BFGS"}
    with pytest.raises(ValueError, match="fingerprint"):
        sampling.nanoparticle_optima("plip", model=_Model(), progress=False, relax_settings=quick)
    frames, energies = sampling.nanoparticle_optima("plip", model=_Model(), fingerprint="abc", progress=False,
                                                    relax_settings=quick)
    clusters = nanoparticle_clusters()
    assert [f.info["cluster"] for f in frames] == list(clusters) == list(energies)
    for frame, (name, recipe) in zip(frames, clusters.items()):
        assert frame.info["model"] == "plip" and frame.info["model_fingerprint"] == "abc"
        assert json.loads(frame.info["start_recipe"]) == recipe
        assert frame.info["model_step"] == frame.info["model_steps"] == len(energies[name]) - 1
        assert frame.info["model_energy"] == energies[name][-1] and energies[name][-1] < energies[name][0]
        assert shortest_distance(frame) < 1.0  # the toy model collapses every cluster ...
    safe, _ = sampling.nanoparticle_optima("plip", model=_Model(), fingerprint="abc", for_dft=True, progress=False,
                                           relax_settings=quick)
    for frame, start in zip(safe, clusters.values()):  # ... so the sampler sends an earlier step to DFT
        assert shortest_distance(frame) >= sampling.DFT_MIN_DISTANCE
        assert frame.info["model_step"] < frame.info["model_steps"] and "instead" in frame.info["dft_note"]
        assert not frame.pbc.any() and frame.cell.lengths().min() >= 10.0 - 1e-9  # boxed with the start's vacuum
        assert len(frame) == len(build(start))


def test_sampler_writes_candidates_the_tasks_read(tmp_path, monkeypatch):
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
    tasks = model_optimum_tasks()
    assert not any(inputs_ready(t, tmp_path, set()) for t in tasks)
    sampling.sample_nanoparticle_optima(tmp_path, kinds=["nnp"], progress=False)
    ready = {t.name for t in tasks if inputs_ready(t, tmp_path, set())}
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
