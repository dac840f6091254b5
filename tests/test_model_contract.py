"""Potentials as scikit-learn estimators and ASE calculators: parameters stored verbatim and checked by fit,
frame-wise cross-validation by default, untrained elements refused, bad labels named, the stress rows of
the design matrix, and ASE's rules for properties a calculator cannot compute."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import PropertyNotImplementedError
from potentials import BP, known_linear, synthetic_frames
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.model_selection import KFold
from sklearn.utils import estimator_checks

import mliplib
from mliplib.descriptors import BehlerParrinello
from mliplib.models import Committee, LinearPotential, NeuralNetworkPotential
from mliplib.properties.relax import snapshot
from mliplib.builders import rattled, strained
from zno_book.structures import polymorph

BP_ZNOS = BehlerParrinello(["Zn", "O", "S"], 4.5, g2=[(0.3, 2.0), (0.3, 3.2)], g4=[(0.02, 1, 1)])
NNP_SMALL = {"hidden": (4,), "epochs": 2, "threads": 1, "progress": False}


def unfitted():
    return {"linear": LinearPotential(BP, Ridge(alpha=1e-6)), "nnp": NeuralNetworkPotential(BP, **NNP_SMALL),
            "committee": Committee.of(LinearPotential(BP, Ridge(alpha=1e-6)), 2)}


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(known_linear(BP), n=8)


@pytest.mark.parametrize("kind", ["linear", "nnp", "committee"])
@pytest.mark.parametrize("check", ["check_no_attributes_set_in_init", "check_estimator_cloneable",
                                   "check_get_params_invariance", "check_set_params",
                                   "check_do_not_raise_errors_in_init_or_set_params", "check_estimator_repr"])
def test_scikit_learn_estimator_checks(kind, check):
    """The parts of scikit-learn's estimator checks that do not assume X, y arrays."""
    model = unfitted()[kind]
    getattr(estimator_checks, check)(type(model).__name__, model)


@pytest.mark.parametrize("kind", ["linear", "nnp", "committee"])
def test_parameters_are_stored_verbatim_and_listed_once(kind, frames, tmp_path):
    model = unfitted()[kind]
    params = model.get_params(deep=False)
    assert all(getattr(model, name) is value for name, value in params.items())
    fitted = model.fit(frames)
    assert [k for k in vars(fitted) if k.endswith("_") and not k.startswith("_")]  # fitted state, named so
    stored = mliplib.load(fitted.save(tmp_path / kind)).get_params(deep=False)
    assert stored.keys() == params.keys()  # the file records exactly the constructor's parameters
    again = clone(fitted)
    assert not again.is_fitted and again.get_params(deep=False).keys() == params.keys()


def test_clone_refits_identically_and_nested_parameters_set(frames):
    model = LinearPotential(BP, Ridge(alpha=1e-6)).fit(frames)
    np.testing.assert_array_equal(clone(model).fit(frames).weights_, model.weights_)
    model.set_params(estimator__alpha=1.0, sigma_forces=0.2)
    assert model.estimator.alpha == 1.0 and model.sigma_forces == 0.2
    assert not np.array_equal(clone(model).fit(frames).weights_, model.weights_)


@pytest.mark.parametrize("model, message", [
    (LinearPotential(BP, sigma_energy=None, sigma_forces=None), "nothing to fit"),
    (LinearPotential(BP, sigma_forces=-1.0), "sigma_forces"),
    (LinearPotential(BP, RidgeCV(cv=KFold(3))), "cv must be None or a number of folds"),
    (NeuralNetworkPotential(BP, activation="relu"), "activation"),
    (NeuralNetworkPotential(BP, hidden=()), "hidden"),
    (NeuralNetworkPotential(BP, validation_fraction=1.0), "validation_fraction"),
    (Committee([LinearPotential(BP)]), "at least two"),
    (Committee.of(LinearPotential(BP), 2, subsample=1.5), "subsample"),
    (Committee([LinearPotential(BP), LinearPotential(BP_ZNOS)]), "different elements")],
    ids=["no-rows", "sigma", "cv-splitter", "activation", "hidden", "validation", "one-member", "subsample", "species"])
def test_parameters_are_checked_by_fit(model, message, frames):
    with pytest.raises(ValueError, match=message):
        model.fit(frames)


def test_the_default_fit_uses_frame_wise_folds(frames):
    """RidgeCV(cv=None) (leave-one-row-out) used to leak a frame's other rows into the training folds."""
    seen = []

    class FoldRecorder(RidgeCV):
        def fit(self, X, y, **kwargs):
            seen.append(self.cv)
            return super().fit(X, y, **kwargs)

    model = LinearPotential(BP, FoldRecorder(alphas=np.logspace(-6, 0, 7))).fit(frames)
    folds = seen[0]
    assert len(folds) == 5 and "alpha" in model.fit_info_
    row_frame = np.concatenate([np.arange(len(frames))] + [np.full(3 * len(a), s) for s, a in enumerate(frames)])
    covered = np.sort(np.concatenate([test for _, test in folds]))
    np.testing.assert_array_equal(covered, np.arange(len(row_frame)))  # every row validated exactly once
    for train, test in folds:
        assert not set(row_frame[train]) & set(row_frame[test])  # no frame on both sides
    assert LinearPotential(BP).fit(frames).fit_info_["alpha"] > 0  # the default estimator: the same, ridge


def test_untrained_elements_are_refused(frames, tmp_path):
    """A descriptor may know S while the training data have none: S weights would be untrained noise."""
    zns = bulk("ZnS", "zincblende", a=5.41)
    models = [LinearPotential(BP_ZNOS, Ridge(alpha=1e-6)).fit(frames),
              NeuralNetworkPotential(BP_ZNOS, **NNP_SMALL).fit(frames),
              Committee.of(LinearPotential(BP_ZNOS, Ridge(alpha=1e-6)), 2, subsample=0.8).fit(frames)]
    for model in models:
        assert model.trained_species_ == ["O", "Zn"]
        model.predict(frames[0])  # ZnO is fine
        loaded = mliplib.load(model.save(tmp_path / model.kind))
        for m in (model, loaded):
            with pytest.raises(ValueError, match="S, absent from this .* training data"):
                m.predict(zns)
            with pytest.raises(ValueError, match="S, absent"):
                zns.calc = m.calculator()
                zns.get_potential_energy()


def with_label(frames, index, where, key, value):
    """Copies of ``frames`` with one label of frame ``index`` replaced (an array label: one component)."""
    frames = [a.copy() for a in frames]
    target = frames[index]
    if where == "info":
        target.info[key] = value
    else:
        target.arrays[key] = target.arrays[key].copy()
        target.arrays[key][1, 2] = value
    return frames


@pytest.mark.parametrize("where, key, value, what", [("info", "energy", np.nan, "non-finite energy"),
                                                     ("arrays", "forces", np.inf, "non-finite forces on atoms \\[1\\]"),
                                                     ("info", "stress", np.full(6, np.nan), "non-finite stress")])
def test_non_finite_labels_name_the_frame(frames, where, key, value, what):
    bad = with_label(frames, 3, where, key, value)
    formula = bad[3].get_chemical_formula()
    with pytest.raises(ValueError, match=f"training frame 3 \\({formula}\\) has (a )?{what}"):
        LinearPotential(BP, Ridge(alpha=1e-6), sigma_stress=0.01).fit(bad)
    if key != "stress":
        with pytest.raises(ValueError, match=f"frame 3 .* {what}"):
            NeuralNetworkPotential(BP, **NNP_SMALL).fit(bad)
        with pytest.raises(ValueError, match=f"frame 3 .* {what}"):
            Committee.of(LinearPotential(BP), 2).fit(bad)


def test_missing_frames_and_labels_are_explained(frames):
    with pytest.raises(ValueError, match="at least one reference frame"):
        Committee.of(LinearPotential(BP), 2).fit([])
    with pytest.raises(ValueError, match="at least one reference frame"):
        LinearPotential(BP).fit([])
    unlabelled = [a.copy() for a in frames]
    for atoms in unlabelled:
        atoms.info = {}
    with pytest.raises(ValueError, match="frame 0 .* no info\\['energy'\\]"):
        NeuralNetworkPotential(BP, **NNP_SMALL).fit(unlabelled)
    with pytest.raises(ValueError, match="frame 0 .* Cu, which this descriptor does not know"):
        LinearPotential(BP).fit([bulk("Cu")] + frames)


def test_stress_rows_of_the_design_matrix(frames):
    """Stress rows · weights is the stress: checked against finite differences of the energy under strain."""
    truth = known_linear(BP, seed=7)
    model = LinearPotential(BP, sigma_energy=None, sigma_forces=None, sigma_stress=0.01)
    sample = frames[:3]
    X, y, kinds, _, _ = model.design_matrix(sample)
    assert list(kinds) == ["stress"] * 6 * len(sample)
    rows = X.reshape(len(sample), 6, -1) * model.sigma_stress
    h = 1e-5
    for atoms, block in zip(sample, rows):
        stress = block @ truth.weights_.ravel()
        for v, (a, b) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
            eps = np.zeros((3, 3))
            eps[a, b] = eps[b, a] = h
            de = truth.predict(strained(atoms, eps))["energy"] - truth.predict(strained(atoms, -eps))["energy"]
            fd = de / (2 * h) / atoms.get_volume() / (2 if a != b else 1)
            assert stress[v] == pytest.approx(fd, abs=1e-7)
        np.testing.assert_allclose(stress, truth.predict(atoms)["stress"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(y.reshape(len(sample), 6) * model.sigma_stress, [a.info["stress"] for a in sample])


def test_calculator_follows_ase_rules(frames):
    model = LinearPotential(BP, Ridge(alpha=1e-6)).fit(frames)
    cluster = Atoms("ZnO", positions=[[0, 0, 0], [1.8, 0, 0]], cell=[10, 10, 10])
    slab = rattled(polymorph("wurtzite"), 0.05, 4)
    slab.pbc = [True, True, False]
    for atoms in (cluster, slab):
        atoms.calc = model.calculator(skin=0.3)
        assert np.isfinite(atoms.get_potential_energy())
        with pytest.raises(PropertyNotImplementedError, match="periodic in all three directions"):
            atoms.get_stress()
        assert "stress" not in snapshot(atoms, stress=True).calc.results  # relax's narrow catch
    bulk_atoms = rattled(polymorph("wurtzite"), 0.05, 4)
    bulk_atoms.calc = model.calculator()
    assert bulk_atoms.get_stress().shape == (6,)
    recorded = cluster.calc.todict()
    assert recorded == {"model": "LinearPotential", "model_sha256": model.digest(), "skin": 0.3}
    assert LinearPotential(BP).calculator().todict()["model_sha256"] is None


def test_nnp_diagnostics_are_the_network_inputs(frames):
    """The public diagnostics agree with the networks: standardised inputs and first-layer pre-activations."""
    model = NeuralNetworkPotential(BP, hidden=(6, 3), epochs=2, threads=1, progress=False).fit(frames)
    atoms = frames[2]
    species = BP.species_index(atoms)
    mean, std = model.input_statistics()
    x = model.standardised_inputs(atoms)
    np.testing.assert_allclose(x, (BP.compute(atoms) - mean[species]) / std[species])
    z = model.first_layer_preactivations(atoms)
    assert z.shape == (len(atoms), 6)
    for s, element in enumerate(model.species):
        W, b = model.layer_weights(element)[0]
        np.testing.assert_allclose(z[species == s], x[species == s] @ W + b)
        assert [w.shape for w, _ in model.layer_weights(element)] == [(BP.n_features, 6), (6, 3), (3, 1)]
    with pytest.raises(ValueError, match="not one of"):
        model.layer_weights("S")
    with pytest.raises(NotFittedError):
        NeuralNetworkPotential(BP).standardised_inputs(atoms)
