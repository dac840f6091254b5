"""Models: forces and stress are exact derivatives, saving is lossless and safe, fits recover known truths."""


import numpy as np
import pytest
import torch
from ase.build import bulk
from potentials import (
    BP,
    SMALL_PLIP,
    known_linear,
    read_model_file,
    synthetic_frames,
    write_model_file,
)
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LassoLars, Ridge

import mliplib
from mliplib.descriptors import PLIP, BehlerParrinello
from mliplib.models import (
    Committee,
    LinearPotential,
    ModelFileError,
    NeuralNetworkPotential,
)
from mliplib.builders import rattled, strained, supercell_of
from zno_book.structures import polymorph


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(known_linear(BP))


@pytest.fixture(scope="module")
def fitted(frames):
    linear = LinearPotential(BP, Ridge(alpha=1e-10), sigma_stress=0.01).fit(frames)
    plip = LinearPotential(SMALL_PLIP, LassoLars(alpha=1e-6), sigma_energy=None).fit(frames)
    nnp = NeuralNetworkPotential(BP, hidden=(8, 8), epochs=5, progress=False).fit(frames)
    committee = Committee.of(LinearPotential(BP, Ridge(alpha=1e-6)), 3, subsample=0.7).fit(frames)
    return {"linear": linear, "plip": plip, "nnp": nnp, "committee": committee}


def fd_check(model, atoms, h=1e-5):
    """Forces and stress against central finite differences of the energy."""
    out = model.predict(atoms)
    rng = np.random.default_rng(3)
    for a in rng.choice(len(atoms), 3, replace=False):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[a, k] += h
            minus.positions[a, k] -= h
            fd = -(model.predict(plus)["energy"] - model.predict(minus)["energy"]) / (2 * h)
            assert out["forces"][a, k] == pytest.approx(fd, abs=1e-6)
    for v, (x, y) in enumerate([(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]):
        eps = np.zeros((3, 3))
        eps[x, y] = eps[y, x] = h
        plus, minus = strained(atoms, eps), strained(atoms, -eps)
        de = model.predict(plus)["energy"] - model.predict(minus)["energy"]
        factor = 2 if x != y else 1  # a symmetric off-diagonal strain moves two Voigt components
        fd = de / (2 * h) / atoms.get_volume() / factor
        assert out["stress"][v] == pytest.approx(fd, abs=1e-7)


@pytest.mark.parametrize("kind", ["linear", "plip", "nnp", "committee"])
def test_forces_and_stress_are_derivatives(fitted, kind):
    atoms = rattled(supercell_of(polymorph("wurtzite"), (2, 1, 1)), 0.1, 7)
    fd_check(fitted[kind], atoms)


@pytest.mark.parametrize("kind", ["linear", "plip", "nnp", "committee"])
def test_save_load_identical(fitted, kind, tmp_path):
    model = fitted[kind]
    path = model.save(tmp_path / kind)
    again = mliplib.load(path)
    atoms = rattled(polymorph("rocksalt", cubic=True), 0.05, 2)
    a, b = model.predict(atoms), again.predict(atoms)
    assert a["energy"] == b["energy"]
    np.testing.assert_array_equal(a["forces"], b["forces"])
    np.testing.assert_array_equal(a["stress"], b["stress"])


def test_calculator_matches_predict(fitted):
    model = fitted["nnp"]
    atoms = rattled(polymorph("bct"), 0.05, 1)
    atoms.calc = model.calculator()
    out = model.predict(atoms)
    assert atoms.get_potential_energy() == pytest.approx(out["energy"])
    np.testing.assert_allclose(atoms.get_forces(), out["forces"])
    np.testing.assert_allclose(atoms.get_stress(), out["stress"])
    np.testing.assert_allclose(atoms.get_potential_energies().sum(), out["energy"])


def test_linear_fit_recovers_known_potential():
    """With identifiable columns the fitted weights equal the generating ones. (Per-element BP weights are
    not all identifiable: Σ_{i∈Zn} G2_i[O] and Σ_{i∈O} G2_i[Zn] are the same pair sum, so only the sum of
    their two weights is defined; PLIP's shared Zn–O channel has no such redundancy.)"""
    descriptor = PLIP(["Zn", "O"], cutoff=4.0, a=(1.0,), b=(2.0, 3.2), l_max=1, many_body=False)
    truth = known_linear(descriptor, seed=4)
    data = synthetic_frames(truth, n=12, seed=5)
    fit = LinearPotential(descriptor, Ridge(alpha=1e-12)).fit(data)
    np.testing.assert_allclose(fit.weights_, truth.weights_, atol=1e-6)
    # offsets: only their composition-weighted sum is defined for stoichiometric data
    assert fit.offsets_.mean() == pytest.approx(truth.offsets_.mean(), abs=1e-6)
    test = rattled(polymorph("zincblende", cubic=True), 0.1, 99)
    np.testing.assert_allclose(fit.predict(test)["forces"], truth.predict(test)["forces"], atol=1e-8)


def test_forces_only_fit_then_offsets(frames):
    """The PLIP protocol: weights from forces only, offsets from energies afterwards."""
    model = LinearPotential(BP, Ridge(alpha=1e-12), sigma_energy=None).fit(frames)
    assert model.fit_info_["rows"]["energy"] == 0
    errors = [model.predict(a)["energy"] - a.info["energy"] for a in frames]
    assert np.abs(errors).max() < 1e-6


def test_committee_spread(fitted):
    out = fitted["committee"].predict(rattled(polymorph("wurtzite"), 0.05, 3))
    spread = np.sqrt(np.mean(np.sum((out["member_forces"] - out["forces"]) ** 2, axis=2), axis=0))
    np.testing.assert_allclose(out["forces_spread"], spread)
    assert out["member_forces"].shape[0] == 3


def test_committee_always_includes_the_anchor_frames(frames, tmp_path):
    """Frames of an ``always_include`` config type are in every member's subsample (the isolated atoms
    of the ZnO set), the rest is subsampled; the choice survives save/load."""
    anchors = [a.copy() for a in frames[:2]]
    for a, original in zip(anchors, frames[:2]):
        a.calc = None
        a.info, a.arrays["forces"] = {**original.info, "config_type": "anchor"}, original.arrays["forces"]
    seen = []

    class Recording(LinearPotential):
        def fit(self, subset):
            seen.append([a.info.get("config_type") for a in subset])
            return super().fit(subset)

    data = anchors + frames[2:]
    committee = Committee.of(Recording(BP, Ridge(alpha=1e-6)), 4, subsample=0.3, always_include=("anchor",))
    committee.fit(data)
    assert [types.count("anchor") for types in seen] == [2] * 4
    assert all(len(types) == 2 + round(0.3 * (len(data) - 2)) for types in seen)
    committee.save(tmp_path / "c.npz")
    assert mliplib.load(tmp_path / "c.npz").always_include == ("anchor",)


def test_nnp_is_deterministic(frames):
    a = NeuralNetworkPotential(BP, hidden=(6,), epochs=3, seed=11, progress=False).fit(frames)
    b = NeuralNetworkPotential(BP, hidden=(6,), epochs=3, seed=11, progress=False).fit(frames)
    atoms = frames[0]
    assert a.predict(atoms)["energy"] == b.predict(atoms)["energy"]
    assert len(a.history_) == 3 and "val_rmse_forces" in a.history_[0]


def test_nnp_switches_off_inputs_the_data_never_vary(frames, tmp_path):
    """A G2 shell at 0.8 Å is ~0 in every crystal frame: its input is switched off (std = inf), so no
    value of it, however far from the data, reaches the untrained weights; the other inputs stay on."""
    bp = BehlerParrinello(["Zn", "O"], 4.5, g2=[(0.8, 0.0), (20.0, 0.8)], g4=[(0.02, 1, 1)])
    model = NeuralNetworkPotential(bp, hidden=(6,), epochs=2, progress=False).fit(frames)
    off = ~np.isfinite(model.input_statistics()[1])  # (species, features)
    G = np.vstack([bp.compute(a) for a in frames])
    species = np.concatenate([bp.species_index(a) for a in frames])
    spread = np.array([G[species == s].std(0) for s in range(2)])
    np.testing.assert_array_equal(off, spread <= model.min_input_std)
    assert off.any() and not off.all()
    shifted = G + 5.0 * off[species]  # move every switched-off input far outside its training range
    e0, _ = model.energies_and_gradient(G, species)
    e1, g1 = model.energies_and_gradient(shifted, species)
    np.testing.assert_array_equal(e0, e1)
    assert np.all(g1[off[species]] == 0) and np.all(np.isfinite(g1))
    again = mliplib.load(model.save(tmp_path / "off"))
    np.testing.assert_array_equal(again.energies_and_gradient(shifted, species)[0], e1)
    with pytest.raises(ValueError, match="min_input_std"):
        NeuralNetworkPotential(bp, min_input_std=0.0).fit(frames)


def frames_for_errors():
    return synthetic_frames(known_linear(BP), n=2)


def test_clear_errors(fitted, tmp_path):
    model = fitted["linear"]
    with pytest.raises(ValueError, match="does not know"):
        model.predict(bulk("Cu", "fcc", a=3.6))
    with pytest.raises(NotFittedError, match="not fitted"):
        LinearPotential(BP).predict(polymorph("wurtzite"))
    atoms = polymorph("wurtzite")
    atoms.positions[1] = atoms.positions[0] + 0.01
    with pytest.raises(ValueError, match="overlap"):
        model.predict(atoms)
    atoms = polymorph("wurtzite")
    atoms.positions[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(atoms)
    meta, arrays = read_model_file(model.save(tmp_path / "model"))
    meta["format_version"] = 999
    write_model_file(tmp_path / "future.npz", meta, arrays)
    with pytest.raises(ModelFileError, match="format version 999"):
        mliplib.load(tmp_path / "future.npz")
    unfit = LinearPotential(BP, sigma_energy=None, sigma_forces=None)  # parameters are checked by fit
    with pytest.raises(ValueError, match="nothing to fit"):
        unfit.fit(frames_for_errors())


@pytest.mark.parametrize("activation", ["tanh", "softplus", "silu"])
def test_nnp_numpy_prediction_matches_torch(frames, activation):
    """Prediction runs the networks in NumPy; it must equal the PyTorch graph used in training."""
    model = NeuralNetworkPotential(BP, hidden=(7, 5), activation=activation, epochs=2, progress=False).fit(frames)
    atoms = frames[3]
    G = torch.from_numpy(BP.compute(atoms) * 3.0).requires_grad_(True)  # ×3: reach softplus's linear branch too
    species = torch.from_numpy(BP.species_index(atoms))
    energies = model.networks_(G, species)
    (grad,) = torch.autograd.grad(energies.sum(), G)
    e2, g2 = model.energies_and_gradient(G.detach().numpy(), species.numpy())
    np.testing.assert_allclose(e2, energies.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g2, grad.numpy(), rtol=1e-10, atol=1e-14)


def test_nnp_lbfgs_training(frames, tmp_path):
    """Full-batch L-BFGS: deterministic, lowers the loss, and its settings survive save/load."""
    kw = {"hidden": (6,), "epochs": 4, "patience": 4, "optimizer": "lbfgs", "lbfgs_iterations": 5, "seed": 3,
          "progress": False}
    a = NeuralNetworkPotential(BP, **kw).fit(frames)
    b = NeuralNetworkPotential(BP, **kw).fit(frames)
    assert a.predict(frames[0])["energy"] == b.predict(frames[0])["energy"]
    assert a.history_[-1]["loss"] < a.history_[0]["loss"]
    again = mliplib.load(a.save(tmp_path / "lbfgs"))
    assert again.optimizer == "lbfgs" and again.lbfgs_iterations == 5
    with pytest.raises(ValueError, match="optimizer"):
        NeuralNetworkPotential(BP, optimizer="sgd").fit(frames)
