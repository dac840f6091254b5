"""Ensembles and learning curves built alike: bootstrap and subsets always hold the isolated atoms; members,
fold results and learning-curve models are trained through the driver, stored, loaded back, and a rerun
skips what is finished. Runs on a temporary book root holding ten real ZnO frames."""

import hashlib
import json

import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

import mliplib
from mliplib.models import Committee
from zno_book import ensembles, learning_curves, protocol
from zno_book.datasets import load_zno
from zno_book.driver import FolderStore, run
from zno_book.executors import serial

#: A tiny NNP recipe (the protocol's keys, few epochs).
TINY_NNP = {**protocol.NNP_BASE, "hidden": [4], "epochs": 2, "lbfgs_iterations": 3, "validation_fraction": 0.2}
LINEAR = {"loss_weights": "E2meV_F0.1_S0.5GPa", "alpha": 1e-3}


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A book root with data/zno/train.extxyz: the two isolated atoms and eight small real frames."""
    root = tmp_path_factory.mktemp("book")
    frames = load_zno("train")
    chosen = [a for a in frames if a.info["config_type"] == "isolated_atom"]
    chosen += [a for a in frames if len(a) <= 4 and a.info["config_type"] != "isolated_atom"][:8]
    for atoms in chosen:
        results = {"energy": atoms.info.pop("energy"), "forces": atoms.arrays.pop("forces")}
        if "stress" in atoms.info:
            results["stress"] = atoms.info.pop("stress")
        atoms.calc = SinglePointCalculator(atoms, **results)
    data = root / "data" / "zno"
    data.mkdir(parents=True)
    write(data / "train.extxyz", chosen, format="extxyz")
    digest = hashlib.sha256((data / "train.extxyz").read_bytes()).hexdigest()
    (data / "manifest.json").write_text(json.dumps({"files": {"train.extxyz": {"sha256": digest,
                                                                                "frames": len(chosen)}}}))
    models = root / "models" / "v2"
    models.mkdir(parents=True)
    (models / "protocol.json").write_text(json.dumps({"reference": protocol.REFERENCE, "chosen": {
        "linear_bp": {"hyperparameters": LINEAR}, "nnp": {"hyperparameters": TINY_NNP}}}))
    return root


def test_bootstrap_always_holds_the_isolated_atoms_and_is_seeded_by_the_member(book):
    frames = load_zno("train", book / "data" / "zno")
    atoms = set(ensembles.always_trained(frames).tolist())
    assert len(atoms) == 2
    draws = [ensembles.bootstrap(frames, m) for m in range(6)]
    for rows in draws:
        assert len(rows) == len(frames) and atoms <= set(rows.tolist())
        assert all(np.sum(rows == k) == 1 for k in atoms)  # once, not drawn again
    assert np.array_equal(draws[0], ensembles.bootstrap(frames, 0))
    assert len({tuple(rows) for rows in draws}) == len(draws)
    assert any(len(set(rows.tolist())) < len(rows) for rows in draws)  # with replacement


def test_learning_curve_subsets_hold_the_isolated_atoms_and_grow(book):
    frames = load_zno("train", book / "data" / "zno")
    atoms = set(ensembles.always_trained(frames).tolist())
    for fraction in learning_curves.FRACTIONS:
        rows = learning_curves.subset(frames, fraction, 1)
        assert atoms <= set(rows.tolist()) and len(set(rows.tolist())) == len(rows)
        assert len(rows) == 2 + max(2, round(fraction * (len(frames) - 2)))
    assert len(learning_curves.subset(frames, 1.0, 2)) == len(frames)


def test_two_member_ensembles_train_through_the_driver_load_back_and_resume(book):
    data = str(book / "data" / "zno")
    report = ensembles.train("serial", kinds=("linear_bp", "nnp"), size=2, root=book, data_root=data)
    assert report.ok and sorted(report.done) == ["linear_bp/member_0", "linear_bp/member_1", "nnp/member_0",
                                                 "nnp/member_1"]
    files = sorted((book / "models" / "v2" / "ensembles").rglob("member_*.npz"))
    assert [f.relative_to(book / "models" / "v2").as_posix() for f in files] == [
        "ensembles/linear_bp/member_0.npz", "ensembles/linear_bp/member_1.npz", "ensembles/nnp/member_0.npz",
        "ensembles/nnp/member_1.npz"]
    frames = load_zno("train", data)
    members = ensembles.load_ensemble("linear_bp", book)
    direct = protocol.build("linear_bp", LINEAR).fit([frames[k] for k in ensembles.bootstrap(frames, 1)])
    np.testing.assert_allclose(members[1].weights_, direct.weights_)
    assert not np.allclose(members[0].weights_, members[1].weights_)
    assert mliplib.load(files[2]).seed == 0 and ensembles.load_ensemble("nnp", book)[1].seed == 1
    committee = ensembles.committee("nnp", book)
    assert isinstance(committee, Committee) and len(committee.members_) == 2
    prediction = committee.predict(frames[3])
    forces = np.array([member.predict(frames[3])["forces"] for member in ensembles.load_ensemble("nnp", book)])
    spread = np.sqrt(np.mean(np.sum((forces - forces.mean(axis=0)) ** 2, axis=2), axis=0))
    np.testing.assert_allclose(prediction["forces_spread"], spread)
    manifest = json.loads((book / "models" / "v2" / "manifest.json").read_text())
    record = manifest["ensembles"]["nnp"]["members"][1]
    assert {"train/atom/Zn", "train/atom/O"} <= set(record["frames"]) and record["seed"] == 1
    assert manifest["data"]["sha256"] == json.loads((book / "data" / "zno" / "manifest.json").read_text())[
        "files"]["train.extxyz"]["sha256"]
    again = ensembles.train("serial", kinds=("linear_bp", "nnp"), size=2, root=book, data_root=data)
    assert again.ok and again.done == [] and len(again.skipped) == 4


def test_every_kind_is_validated_on_the_same_folds_and_the_search_resumes(book, tmp_path):
    data = str(book / "data" / "zno")
    store = FolderStore(tmp_path / "protocol")
    tasks = protocol.linear_tasks(["linear_bp"], data)
    first = run(tasks, store, serial, workers=1)
    assert first.ok and len(first.done) == len(protocol.LOSS_WEIGHTS) * protocol.N_FOLDS
    again = run(tasks, store, serial, workers=1)
    assert again.done == [] and len(again.skipped) == len(tasks)
    nnp = protocol.cv_nnp(TINY_NNP, fold=2, data_root=data)
    linear = store.load("linear_bp/E2meV_F0.1_S0.5GPa/fold2")
    frames = load_zno("train", data)
    assert nnp["n_validation"] == linear["n_validation"] == np.sum(protocol.fold_assignment(frames) == 2)
    written = protocol.write_protocol(store, tmp_path / "protocol.json", data)
    table = protocol.summary(protocol.cv_table(store))
    assert written["chosen"]["linear_bp"]["score"] == pytest.approx(table[table["kind"] == "linear_bp"]["score"].min())
    assert "nnp" not in written["chosen"]


def test_learning_curves_train_once_and_evaluate_on_any_held_out_set(book):
    data = str(book / "data" / "zno")
    report = learning_curves.train("serial", kinds=("linear_bp",), root=book, data_root=data)
    assert report.ok and len(report.done) == len(learning_curves.FRACTIONS) * learning_curves.N_SUBSETS
    held_out = load_zno("train", data)[2:6]
    table, curves = learning_curves.evaluate(held_out, book, n_bootstrap=200)
    assert len(table) == len(report.done) and set(curves["quantity"]) == {"energy", "forces", "stress"}
    assert np.all(curves["low"] <= curves["high"])
    full = curves[curves["fraction"] == 1.0]
    assert np.all(full["subset_std"] == 0.0)  # at 100 % the linear fits coincide
    assert learning_curves.train("serial", kinds=("linear_bp",), root=book, data_root=data).done == []
