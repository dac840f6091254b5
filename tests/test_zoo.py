"""The model cache: train_all writes models + manifest; load_or_train reuses it while the data checksum
matches and retrains when the data change. Runs on a temporary book root (ZNO_BOOK_ROOT) holding
model-potential frames."""

import hashlib
import json

import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from zno_pair import ZnOPair, relaxed_wurtzite

import mliplib
from mliplib.builders import rattled, supercell_of
from zno_book import zoo
from zno_book.datasets import load_zno
from zno_book.paths import data_dir, models_dir


def _write_data(root, n):
    cell = relaxed_wurtzite()
    frames = []
    for k in range(n):
        atoms = rattled(supercell_of(cell, (1, 1, 2)), 0.03 + 0.01 * k, k)
        atoms.calc = ZnOPair()
        energy, forces, stress = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces, stress=stress)
        atoms.info.update(task=f"toy/wurtzite/{k}", config_type="wurtzite_rattle")
        frames.append(atoms)
    path = root / "train.extxyz"
    write(path, frames, format="extxyz")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (root / "manifest.json").write_text(json.dumps({"files": {"train.extxyz": {"sha256": digest, "frames": n}}}))
    return digest


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A book root in tmp_path (ZNO_BOOK_ROOT) with an empty data folder; returns the data folder."""
    monkeypatch.setenv("ZNO_BOOK_ROOT", str(tmp_path))
    root = data_dir()
    root.mkdir(parents=True)
    return root


def test_train_all_and_cache(data, tmp_path, monkeypatch):
    models = models_dir()
    assert data == tmp_path / "data" / "zno" and models == tmp_path / "models" / "v1"  # both from the root
    digest = _write_data(data, 12)
    manifest = zoo.train_all(kinds=["linear_bp"], committees=True, progress=False, log=lambda *a: None)
    assert manifest["data"]["sha256"] == digest
    for name in ("linear_bp", "linear_bp_committee"):
        entry = manifest["models"][name]
        assert (models / entry["file"]).exists() and entry["current"]
        assert entry["data_sha256"] == digest and entry["n_frames_train"] + manifest["data"]["n_frames_test"] == 12
        assert entry["train_wall_time_s"] >= 0 and entry["environment"]["mliplib"]
        assert entry["hyperparameters"]["descriptor"]["kind"] == "BehlerParrinello"
        assert entry["train_errors"]["forces_rmse_meV_A"] < 200
    assert zoo.is_current("linear_bp", root=models) and zoo.is_current("linear_bp")
    assert not zoo.is_current("plip", root=models)

    # a current cache is loaded, not retrained
    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache is current")

    real_train = zoo.train
    monkeypatch.setattr(zoo, "train", no_training)
    model = zoo.load_or_train("linear_bp", root=models)
    atoms = load_zno("train")[0]
    reference = mliplib.load(models / "linear_bp.npz").predict(atoms)["energy"]
    assert model.predict(atoms)["energy"] == reference
    committee = zoo.load_or_train("linear_bp", committee=True, root=models)
    assert len(committee.members) == zoo.COMMITTEE_SIZE
    monkeypatch.setattr(zoo, "train", real_train)

    # new data: the cache is stale, retrain=False refuses, the default retrains and updates the manifest
    new_digest = _write_data(data, 14)
    assert not zoo.is_current("linear_bp", root=models)
    with pytest.raises(RuntimeError, match="stale"):
        zoo.load_or_train("linear_bp", root=models, retrain=False)
    zoo.load_or_train("linear_bp", root=models, progress=False)
    manifest = zoo.read_manifest(models)
    assert manifest["models"]["linear_bp"]["data_sha256"] == new_digest
    assert manifest["models"]["linear_bp"]["current"]
    assert not manifest["models"]["linear_bp_committee"]["current"]


def test_reproducible_and_errors(tmp_path):
    _write_data(tmp_path, 10)
    frames = load_zno("all_train", tmp_path)
    a = zoo.train("nnp", frames, progress=False, epochs=3, patience=3)
    b = zoo.train("nnp", frames, progress=False, epochs=3, patience=3)
    assert a.predict(frames[0])["energy"] == b.predict(frames[0])["energy"]
    errors = zoo.evaluate(a, frames)
    assert set(errors) >= {"energy_rmse_meV_atom", "forces_rmse_meV_A", "n_frames"}
    assert zoo.evaluate(a, []) is None
    with pytest.raises(ValueError, match="unknown model kind"):
        zoo.hyperparameters("gap")


def test_missing_data_is_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="not been generated"):
        zoo.load_or_train("plip", root=tmp_path / "empty", data_root=tmp_path / "no data")


def test_shipped_cache_is_small():
    """models/v1 is committed: keep it to a few MB."""
    if not models_dir().exists():
        pytest.skip("no shipped models yet")
    size = sum(p.stat().st_size for p in models_dir().iterdir() if p.is_file())
    assert size < 5e6, f"{models_dir()} holds {size / 1e6:.1f} MB"
