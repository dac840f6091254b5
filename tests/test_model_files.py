"""Model files: what save writes is what load gives back (the estimator included), and every damaged,
edited or foreign file is refused with one error that names the file and the problem."""

import json
import zipfile

import numpy as np
import pytest
from potentials import (
    BP,
    SMALL_PLIP,
    known_linear,
    read_model_file,
    synthetic_frames,
    write_model_file,
)
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge, RidgeCV

import mliplib
from mliplib.descriptors import BehlerParrinello
from mliplib.models import (
    Committee,
    LinearPotential,
    ModelFileError,
    NeuralNetworkPotential,
)
from mliplib.models.base import content_digest
from mliplib.models.lasso_path import LassoLarsPathCV
from mliplib.builders import rattled
from zno_book.structures import polymorph


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(known_linear(BP), n=8)


@pytest.fixture(scope="module")
def linear(frames):
    return LinearPotential(BP, Ridge(alpha=1e-6)).fit(frames)


@pytest.fixture
def saved(linear, tmp_path):
    return linear.save(tmp_path / "linear.npz")


def predictions_equal(a, b, atoms):
    pa, pb = a.predict(atoms), b.predict(atoms)
    return pa["energy"] == pb["energy"] and np.array_equal(pa["forces"], pb["forces"])


def test_save_and_load_with_or_without_the_suffix(linear, tmp_path):
    path = linear.save(tmp_path / "model")
    assert path == tmp_path / "model.npz" and path.exists()
    atoms = rattled(polymorph("wurtzite"), 0.05, 1)
    for name in (tmp_path / "model", str(tmp_path / "model"), path):
        assert predictions_equal(mliplib.load(name), linear, atoms)
    with pytest.raises(FileNotFoundError, match="no model file"):
        mliplib.load(tmp_path / "absent")


@pytest.mark.parametrize("model", [LinearPotential(BP), NeuralNetworkPotential(BP),
                                   Committee.of(LinearPotential(BP), 2)], ids=["linear", "nnp", "committee"])
def test_unfitted_models_are_not_saved(model, tmp_path):
    with pytest.raises(NotFittedError, match="not fitted"):
        model.save(tmp_path / "unfitted")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("estimator", [RidgeCV(alphas=np.logspace(-4, 0, 5), cv=3),
                                       LassoLarsPathCV(cv=3, n_alphas=12, rule="1se")], ids=["ridgecv", "lassolars-path"])
def test_the_estimator_survives_save_and_load(frames, estimator, tmp_path):
    """A loaded model refits the way the saved one was fitted (today's plip.npz records LassoLarsPathCV(rule='1se'))."""
    descriptor = BP if isinstance(estimator, RidgeCV) else SMALL_PLIP
    model = LinearPotential(descriptor, estimator, sigma_energy=0.01, cv_seed=3).fit(frames)
    loaded = mliplib.load(model.save(tmp_path / "m"))
    assert type(loaded.estimator) is type(estimator)
    for name, value in estimator.get_params().items():
        np.testing.assert_array_equal(loaded.estimator.get_params()[name], value)
    assert loaded.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    assert (loaded.sigma_energy, loaded.cv_seed, loaded.descriptor.to_dict()) == (0.01, 3, descriptor.to_dict())
    assert loaded.fit_info_ == model.fit_info_
    refit = clone(loaded).fit(frames)
    np.testing.assert_array_equal(refit.weights_, model.weights_)


def test_the_committee_and_nnp_round_trip(frames, tmp_path):
    nnp = NeuralNetworkPotential(BP, hidden=(5,), epochs=2, seed=4, threads=1, progress=False).fit(frames)
    committee = Committee.of(LinearPotential(BP, Ridge(alpha=1e-5)), 3, subsample=0.6, seed=2).fit(frames)
    atoms = rattled(polymorph("rocksalt", cubic=True), 0.05, 3)
    for model in (nnp, committee):
        loaded = mliplib.load(model.save(tmp_path / model.kind))
        assert predictions_equal(loaded, model, atoms)
        assert loaded.digest() == model.digest()
    loaded = mliplib.load(tmp_path / "Committee")
    assert [type(m) for m in loaded.members] == [LinearPotential] * 3 and not hasattr(loaded.members[0], "weights_")
    assert (loaded.subsample, loaded.seed) == (0.6, 2)
    assert mliplib.load(tmp_path / "NeuralNetworkPotential").history_ == nnp.history_


def test_an_edit_breaks_the_digest(saved, tmp_path):
    """Editing the cutoff 6 → 4 Å of a shipped file used to load and shift energies by 1.14 eV."""
    meta, arrays = read_model_file(saved)
    meta["params"]["descriptor"]["__descriptor__"]["cutoff"] = 4.0
    with np.load(saved) as data:
        stale_digest = str(data["__digest__"])
    edited = write_model_file(tmp_path / "edited.npz", meta, arrays, digest=stale_digest)
    with pytest.raises(ModelFileError, match="modified after it was saved") as error:
        mliplib.load(edited)
    assert str(edited) in str(error.value)
    meta, arrays = read_model_file(saved)
    arrays["weights"] = arrays["weights"].copy()
    arrays["weights"][0, 0] += 1e-12
    with pytest.raises(ModelFileError, match="modified"):
        mliplib.load(write_model_file(tmp_path / "weights.npz", meta, arrays, digest=stale_digest))


def edit_nan_weights(meta, arrays):
    arrays["weights"] = np.full_like(arrays["weights"], np.nan)


def edit_fewer_features(meta, arrays):
    meta["params"]["descriptor"]["__descriptor__"]["g2"] = meta["params"]["descriptor"]["__descriptor__"]["g2"][:-1]


def edit_species(meta, arrays):
    meta["fitted"]["trained_species"] = ["O", "S"]


def edit_extra_array(meta, arrays):
    arrays["bias"] = np.zeros(3)


def edit_unknown_estimator(meta, arrays):
    meta["params"]["estimator"] = {"__estimator__": "os.system", "params": {}}


def edit_unknown_kind(meta, arrays):
    meta["kind"] = "GaussianProcess"


def edit_missing_fitted(meta, arrays):
    del meta["fitted"]


def edit_string_version(meta, arrays):
    meta["format_version"] = "2"


def edit_bad_parameter(meta, arrays):
    meta["params"]["sigma_forcez"] = 0.1


@pytest.mark.parametrize("edit, message", [
    (edit_nan_weights, "NaN"), (edit_fewer_features, "shape"), (edit_species, "trained species"),
    (edit_extra_array, "unexpected"), (edit_unknown_estimator, "unknown estimator 'os.system'"),
    (edit_unknown_kind, "unknown model kind"), (edit_missing_fitted, "missing entry 'fitted'"),
    (edit_string_version, "format_version is '2', not an integer"), (edit_bad_parameter, "sigma_forcez")])
def test_inconsistent_content_is_refused_even_with_a_matching_digest(saved, tmp_path, edit, message):
    """The digest guards against edits; these checks catch files whose content does not fit together."""
    meta, arrays = read_model_file(saved)
    edit(meta, arrays)
    path = write_model_file(tmp_path / "odd.npz", meta, arrays)
    with pytest.raises(ModelFileError, match=message) as error:
        mliplib.load(path)
    assert str(path) in str(error.value)


def truncated(saved, path):
    path.write_bytes(saved.read_bytes()[: saved.stat().st_size // 2])


def text_file(saved, path):
    path.write_text("weights: 1, 2, 3\n")


def empty_file(saved, path):
    path.write_bytes(b"")


def pickled(saved, path):
    np.savez(path, __metadata__=np.array([{"format_version": 2}], dtype=object))


def no_metadata(saved, path):
    np.savez(path, weights=np.zeros(3))


def not_json(saved, path):
    text = "{format_version: 2"
    np.savez(path, __metadata__=np.array(text), __digest__=np.array(content_digest(text, {})))


def format_1(saved, path):  # the files this mliplib no longer reads: no digest
    np.savez(path, __metadata__=np.array(json.dumps({"format_version": 1, "kind": "LinearPotential"})))


def corrupted_member(saved, path):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as archive:
        info = archive.getinfo("weights.npy")
    data[info.header_offset + 30 + len(info.filename) + 200] ^= 0xFF  # a byte inside the stored array
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage, message", [
    (truncated, "not an .npz archive"), (text_file, "not an .npz archive"),
    (empty_file, "not an .npz archive"), (pickled, "Python objects"), (no_metadata, "no __metadata__"),
    (not_json, "Expecting property name"), (format_1, "format version 1"), (corrupted_member, "CRC")])
def test_damaged_and_foreign_files_raise_one_clear_error(saved, tmp_path, damage, message):
    path = tmp_path / "damaged.npz"
    damage(saved, path)
    with pytest.raises(ModelFileError, match=message) as error:
        mliplib.load(path)
    assert str(path) in str(error.value)


def test_unknown_estimators_are_refused_at_save(frames, tmp_path):
    class MyRidge(Ridge):
        pass

    model = LinearPotential(BP, MyRidge(alpha=1e-6)).fit(frames)  # fitting works with any estimator
    with pytest.raises(ValueError, match="can record only the estimators"):
        model.save(tmp_path / "custom")


def test_the_shipped_descriptor_presets_round_trip(tmp_path):
    """A default_zno descriptor (the shipped models') survives the parameter encoding unchanged."""
    model = known_linear(BehlerParrinello.default_zno())
    loaded = mliplib.load(model.save(tmp_path / "bp"))
    assert loaded.descriptor.to_dict() == model.descriptor.to_dict()
    np.testing.assert_array_equal(loaded.weights_, model.weights_)
