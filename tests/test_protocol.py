"""The training protocol: one fold assignment and one score for every kind, stresses in the NNP loss, the
weight penalty, the frame-wise early-stopping split, linear fits along an α path."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.units import GPa
from potentials import BP, SMALL_PLIP, known_linear, synthetic_frames
from sklearn.linear_model import LassoLars, Ridge

from mliplib.descriptors import descriptor_from_dict
from mliplib.models import LinearPotential, NeuralNetworkPotential
from mliplib.models.nnp import validation_split
from zno_book import protocol

HERE = Path(__file__).parent


def named(frames, isolated=0):
    """Frames with task names (and ``isolated`` single-atom frames labelled isolated_atom)."""
    out = [atoms.copy() for atoms in frames]
    for k, (atoms, source) in enumerate(zip(out, frames)):
        atoms.info.update(source.info, task=f"train/frame{k:02d}", config_type="rattle")
        atoms.arrays["forces"] = source.arrays["forces"].copy()
    for symbol, energy in list(zip(("Zn", "O"), (-0.2, -1.5)))[:isolated]:
        atom = Atoms(symbol, cell=[10, 10, 10], pbc=False)
        atom.info.update(energy=energy, task=f"train/atom/{symbol}", config_type="isolated_atom")
        atom.arrays["forces"] = np.zeros((1, 3))
        out.append(atom)
    return out


@pytest.fixture(scope="module")
def frames():
    return named(synthetic_frames(known_linear(BP), n=12), isolated=2)


# -- folds and score ---------------------------------------------------------------------------------
def test_folds_come_from_task_names_alone(frames):
    folds = protocol.fold_assignment(frames)
    by_name = {a.info["task"]: f for a, f in zip(frames, folds)}
    shuffled = [frames[k] for k in np.random.default_rng(5).permutation(len(frames))]
    assert {a.info["task"]: f for a, f in zip(shuffled, protocol.fold_assignment(shuffled))} == by_name
    assert by_name["train/atom/Zn"] == by_name["train/atom/O"] == -1
    sizes = np.bincount(folds[folds >= 0], minlength=protocol.N_FOLDS)
    assert sizes.max() - sizes.min() <= 1 and sizes.min() >= 2


def test_every_fold_trains_on_the_isolated_atoms_and_validates_each_frame_once(frames):
    validated = []
    for fold in range(protocol.N_FOLDS):
        train, validation = protocol.split(frames, fold)
        assert {"train/atom/Zn", "train/atom/O"} <= {a.info["task"] for a in train}
        assert len(train) + len(validation) == len(frames)
        validated += [a.info["task"] for a in validation]
    assert sorted(validated) == sorted(a.info["task"] for a in frames if a.info["config_type"] != "isolated_atom")


def test_folds_refuse_unnamed_frames(frames):
    unnamed = [a.copy() for a in frames]
    unnamed[3].info.pop("task")
    with pytest.raises(ValueError, match="task"):
        protocol.fold_assignment(unnamed)


def test_score_of_reference_errors_is_three_and_rmse_pools_frames():
    assert protocol.score({"energy": 0.002, "forces": 0.1, "stress": 0.5}) == pytest.approx(3.0)
    errors = {"energy": np.array([1.0, 3.0]), "forces": np.array([2.0, 6.0]), "n_forces": np.array([2.0, 6.0]),
              "stress": np.array([0.0, 12.0]), "n_stress": np.array([6.0, 6.0])}
    out = protocol.rmse(errors)
    assert out["energy"] == pytest.approx(np.sqrt(2.0))
    assert out["forces"] == pytest.approx(1.0)
    assert out["stress"] == pytest.approx(1.0)
    assert protocol.rmse(errors, rows=[1, 1])["stress"] == pytest.approx(np.sqrt(2.0))


def test_frame_errors_vanish_for_the_model_that_labelled_the_frames():
    truth = known_linear(BP)
    frames = synthetic_frames(truth, n=3)
    errors = protocol.rmse(protocol.frame_errors(truth, frames))
    assert max(errors.values()) < 1e-12


def test_the_same_loss_weights_build_every_kind():
    for key in protocol.LOSS_WEIGHTS:
        linear = protocol.build("linear_bp", {"loss_weights": key, "alpha": 1e-3})
        nnp = protocol.build("nnp", {**protocol.NNP_BASE, "loss_weights": key})
        for name in ("sigma_energy", "sigma_forces", "sigma_stress"):
            assert getattr(linear, name) == getattr(nnp, name)
    assert protocol.loss_weights("E2meV_F0.1_S0.5GPa")["sigma_stress"] == pytest.approx(0.5 * GPa)


# -- NNP: stresses in the loss, weight decay, validation split ----------------------------------------
def self_labelled(model, frames):
    """The frames relabelled with the model's own energies, forces and stresses."""
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        prediction = model.predict(atoms)
        atoms.info.update(energy=prediction["energy"], stress=prediction["stress"])
        atoms.arrays["forces"] = prediction["forces"]
        out.append(atoms)
    return out


@pytest.fixture(scope="module")
def nnp(frames):
    return NeuralNetworkPotential(BP, hidden=(5, 4), epochs=3, sigma_stress=0.01, weight_decay=1e-3,
                                  progress=False, threads=1).fit(frames[:6])


def test_stress_in_the_loss_is_the_models_stress(nnp, frames):
    labelled = self_labelled(nnp, frames[:4])
    data_only = nnp.loss(labelled).item() - 1e-3 * sum(
        np.sum(W ** 2) for s in nnp.species for W, _ in nnp.layer_weights(s))
    assert abs(data_only) < 1e-12
    shifted = [a.copy() for a in labelled]
    shifted[2].info["stress"] = shifted[2].info["stress"] + np.array([0, 0, 0, 0, 0.004, 0])
    expected = 0.004 ** 2 / (6 * len(shifted)) / 0.01 ** 2
    assert nnp.loss(shifted).item() - nnp.loss(labelled).item() == pytest.approx(expected, rel=1e-9)


def test_gradient_of_the_loss_with_stress_and_weight_decay_matches_finite_differences(nnp, frames):
    params = list(nnp.networks_.parameters())
    grads = torch.autograd.grad(nnp.loss(frames[:5]), params)
    rng = np.random.default_rng(0)
    h = 1e-6
    for p, g in zip(params, grads):
        flat, gflat = p.data.view(-1), g.view(-1)
        for k in rng.choice(flat.numel(), size=min(2, flat.numel()), replace=False):
            old = flat[k].item()
            flat[k] = old + h
            plus = nnp.loss(frames[:5]).item()
            flat[k] = old - h
            minus = nnp.loss(frames[:5]).item()
            flat[k] = old
            assert gflat[k].item() == pytest.approx((plus - minus) / (2 * h), rel=1e-5, abs=1e-6)


def test_stress_labels_change_training_only_with_sigma_stress(frames):
    unstressed = [a.copy() for a in frames[:8]]
    for atoms in unstressed:
        atoms.info.pop("stress")
    kw = {"hidden": (5,), "epochs": 2, "progress": False, "threads": 1, "seed": 4}
    a = NeuralNetworkPotential(BP, **kw).fit(frames[:8])
    b = NeuralNetworkPotential(BP, **kw).fit(unstressed)
    c = NeuralNetworkPotential(BP, sigma_stress=0.01, **kw).fit(frames[:8])
    weights = [np.concatenate([W.ravel() for W, _ in m.layer_weights("Zn")]) for m in (a, b, c)]
    assert np.array_equal(weights[0], weights[1])
    assert not np.allclose(weights[0], weights[2])
    assert "rmse_stress" in c.history_[-1] and "rmse_stress" not in a.history_[-1]
    with pytest.raises(ValueError, match="sigma_stress"):
        NeuralNetworkPotential(BP, sigma_stress=0.01, **kw).fit(unstressed)


def test_default_training_reproduces_the_code_before_stresses():
    """Weights trained by the NNP of commit 27eb54f (before sigma_stress, weight_decay, always_train),
    stored with their frames: today's defaults give the same (bitwise on the machine that stored them)."""
    with np.load(HERE / "nnp_reference.npz") as data:
        ref = {k: data[k] for k in data.files}
    descriptor = descriptor_from_dict(json.loads(str(ref["descriptor"])))
    frames = []
    for k in range(len([key for key in ref if key.endswith("/numbers")])):
        atoms = Atoms(ref[f"frame{k}/numbers"], positions=ref[f"frame{k}/positions"], cell=ref[f"frame{k}/cell"],
                      pbc=True)
        atoms.info.update(energy=float(ref[f"frame{k}/energy"]), stress=ref[f"frame{k}/stress"])
        atoms.arrays["forces"] = ref[f"frame{k}/forces"]
        frames.append(atoms)
    for name, kw in json.loads(str(ref["settings"])).items():
        model = NeuralNetworkPotential(descriptor, hidden=(5, 4), progress=False, threads=1, seed=2, **kw).fit(frames)
        for key, value in model.networks_.state_dict().items():
            np.testing.assert_allclose(value.numpy(), ref[f"{name}/{key}"], rtol=0, atol=1e-10, err_msg=f"{name} {key}")


def test_weight_decay_shrinks_the_weights(frames):
    kw = {"hidden": (6,), "optimizer": "lbfgs", "epochs": 5, "validation_fraction": 0.0, "progress": False, "threads": 1}
    norms = [sum(np.sum(W ** 2) for s in ("Zn", "O") for W, _ in m.layer_weights(s))
             for m in (NeuralNetworkPotential(BP, weight_decay=wd, **kw).fit(frames[:8]) for wd in (0.0, 1.0))]
    assert norms[1] < 0.5 * norms[0]


def test_validation_split_is_by_frame_keeps_repeats_together_and_never_holds_out_isolated_atoms(frames):
    resample = [frames[k] for k in (0, 0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 8, 12, 13)]
    order = np.random.default_rng(1).permutation(len(resample))
    validation, train = validation_split(resample, order, 0.3, ("isolated_atom",))
    held = {id(resample[k]) for k in validation}
    assert len(validation) == len(held) == round(0.3 * 11)  # of the 11 distinct frames
    assert set(train) == {k for k in range(len(resample)) if id(resample[k]) not in held}
    assert all(resample[k].info["config_type"] != "isolated_atom" for k in validation)
    plain = list(range(10))
    assert validation_split(frames[:10], np.array(plain[::-1]), 0.2, ()) == (plain[::-1][:2], plain[::-1][2:])


# -- linear models along the α path --------------------------------------------------------------------
@pytest.mark.parametrize("estimator, descriptor", [(Ridge(), BP), (LassoLars(max_iter=5000), SMALL_PLIP)])
def test_fit_path_equals_one_fit_per_alpha(frames, estimator, descriptor):
    alphas = [1e-2, 1e-4]
    template = LinearPotential(descriptor, estimator, sigma_stress=0.01)
    path = template.fit_path(frames[:10], alphas)
    for alpha, model in zip(alphas, path):
        single = LinearPotential(descriptor, type(estimator)(alpha=alpha, **({"max_iter": 5000} if
                                 isinstance(estimator, LassoLars) else {})), sigma_stress=0.01).fit(frames[:10])
        assert model.estimator.alpha == alpha
        np.testing.assert_allclose(model.weights_, single.weights_, atol=1e-8 * np.abs(single.weights_).max())
        np.testing.assert_allclose(model.offsets_, single.offsets_, atol=1e-8)
    assert path[0].n_nonzero <= path[1].n_nonzero or isinstance(estimator, Ridge)
    with pytest.raises(TypeError, match="Ridge or LassoLars"):
        LinearPotential(descriptor).fit_path(frames[:10], alphas)
