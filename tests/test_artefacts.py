"""The versioned artefact cache: round trips, key invalidation, tampering, bad names and values."""

import numpy as np
import pytest
from ase.build import bulk

from zno_book.artefacts import cached, load_artefact, store_artefact


def test_atoms_round_trip_and_reuse(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        atoms = bulk("ZnO", "rocksalt", a=4.3)
        atoms.info["step"] = 7
        return [atoms, atoms.copy()]

    first = cached("frames", {"model": "abc", "T": 3000.0}, compute, root=tmp_path)
    again = cached("frames", {"T": 3000.0, "model": "abc"}, compute, root=tmp_path)  # key order is irrelevant
    assert len(calls) == 1 and len(again) == 2
    assert np.allclose(first[0].positions, again[0].positions) and again[0].info["step"] == 7


def test_new_key_recomputes(tmp_path):
    store_artefact("spectrum", {"model": "abc"}, {"g": np.arange(3.0)}, root=tmp_path)
    assert load_artefact("spectrum", {"model": "abd"}, root=tmp_path) is None
    value = cached("spectrum", {"model": "abd"}, lambda: {"g": np.ones(2)}, root=tmp_path)
    assert np.array_equal(value["g"], np.ones(2))


def test_tampered_file_is_not_trusted(tmp_path):
    store_artefact("spectrum", {"k": 1}, {"g": np.arange(3.0)}, root=tmp_path)
    np.savez(tmp_path / "spectrum.npz", g=np.zeros(3))
    assert load_artefact("spectrum", {"k": 1}, root=tmp_path) is None


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="plain file stem"):
        store_artefact("../escape", {}, {"g": np.ones(1)}, root=tmp_path)
    with pytest.raises(TypeError, match="list of ase.Atoms or a dict"):
        store_artefact("x", {}, [1, 2], root=tmp_path)
    with pytest.raises(TypeError, match="JSON-serialisable"):
        store_artefact("x", {"f": object()}, {"g": np.ones(1)}, root=tmp_path)
    with pytest.raises(TypeError, match=r"\['labels'\] are object arrays"):
        store_artefact("x", {}, {"labels": np.array(["a", None], dtype=object), "g": np.ones(1)}, root=tmp_path)
    assert not (tmp_path / "x.npz").exists()  # nothing written by a refused call
    store_artefact("x", {}, {"labels": np.array(["a", "b"])}, root=tmp_path)  # strings are fine
    assert list(load_artefact("x", {}, root=tmp_path)["labels"]) == ["a", "b"]
