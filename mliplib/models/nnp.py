"""Behler–Parrinello neural-network potential: one small MLP per element, E = Σ_i NN_{Z_i}(G_i) + Σ_i b_{Z_i}.

Trained on energies, forces and (optionally) stresses. Forces never need autograd through the descriptor:
the network gives ∂E/∂G_i, and the descriptor's analytic per-pair gradients contract it into forces
(F_j −= g_ij, F_i += g_ij with g_ij = Σ_f ∂E/∂G_if · ∂G_if/∂r_ij) and into the virial (W −= r_ij ⊗ g_ij,
ASE stress −W/V), inside the PyTorch graph for training and in the descriptor's Numba kernel (no stored
gradients) for prediction.

The model and its trainer are apart (as TorchANI's ``ANIModel`` and its training code):
:class:`AtomicNetworks` is the model — per-element networks, input standardisation and energy offsets,
a ``torch.nn.Module`` — and :class:`NeuralNetworkPotential` the scikit-learn estimator that trains one
(``fit``), predicts with it and saves it.

Prediction does not use PyTorch: the networks are a few small matrix products, and the forward pass
plus the analytic backward pass to ∂E/∂G run in NumPy (:func:`mlp_energy_and_gradient`). For a
2×25 network on 96 atoms this is ~0.1 ms instead of several ms of PyTorch dispatch and intra-op thread
wake-ups, which on a busy 2-core machine cost more than the descriptor itself.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import torch
from ase import Atoms
from sklearn.exceptions import NotFittedError
from tqdm.auto import tqdm

from mliplib.models.base import (
    Potential,
    check_array,
    check_array_names,
    check_labels,
    stress_from_virial,
    trained_species,
)

ACTIVATIONS = {"tanh": torch.nn.Tanh, "softplus": torch.nn.Softplus, "silu": torch.nn.SiLU}


def _activation(name: str, z: np.ndarray):
    """Value and derivative of an activation, matching torch (Softplus: beta = 1, threshold = 20)."""
    if name == "tanh":
        a = np.tanh(z)
        return a, 1.0 - a * a
    if name == "softplus":
        linear = z > 20.0
        zc = np.where(linear, 0.0, z)
        a = np.where(linear, z, np.log1p(np.exp(zc)))
        return a, np.where(linear, 1.0, 1.0 / (1.0 + np.exp(-zc)))
    if name == "silu":
        sig = 1.0 / (1.0 + np.exp(-z))
        return z * sig, sig * (1.0 + z * (1.0 - sig))
    raise ValueError(f"unknown activation {name!r}")


def mlp_energy_and_gradient(x: np.ndarray, layers, activation: str):
    """Output of an MLP and its gradient, by an explicit forward and backward pass in NumPy.

    Parameters
    ----------
    x : numpy.ndarray
        (n, n_in) inputs.
    layers : list of (numpy.ndarray, numpy.ndarray)
        [(W (n_in, n_out), b (n_out,)), …]; the activation follows every layer but the last, whose
        n_out is 1.
    activation : str
        "tanh", "softplus" or "silu".

    Returns
    -------
    out : numpy.ndarray
        (n,) outputs.
    grad : numpy.ndarray
        (n, n_in) d(output)/dx.
    """
    h, slopes = x, []
    for W, b in layers[:-1]:
        h, d = _activation(activation, h @ W + b)
        slopes.append(d)
    W, b = layers[-1]
    out = (h @ W + b)[:, 0]
    g = np.broadcast_to(W[:, 0], h.shape)
    for (W, _), d in zip(reversed(layers[:-1]), reversed(slopes)):
        g = (g * d) @ W.T
    return out, g


def _mlp(n_in: int, hidden, activation: str) -> torch.nn.Sequential:
    layers, width = [], n_in
    for h in hidden:
        layers += [torch.nn.Linear(width, h), ACTIVATIONS[activation]()]
        width = h
    layers.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*layers).double()


class AtomicNetworks(torch.nn.Module):
    """The model of a Behler–Parrinello NNP: E_i = NN_{s_i}((G_i − μ_{s_i}) / σ_{s_i}) + b_{s_i}.

    Parameters
    ----------
    n_features : int
        Descriptor length.
    n_species : int
        Number of elements (one network each, in the descriptor's species order).
    hidden : sequence of int
        Hidden layer widths.
    activation : str
        "tanh", "softplus" or "silu" (after every hidden layer).

    Attributes
    ----------
    nets : torch.nn.ModuleList
        One ``Sequential`` (Linear, activation, …, Linear(·, 1)) per element, float64.
    mean, std : torch.Tensor
        (n_species, n_features) buffers: input standardisation per element, descriptor units (std = inf
        switches an input off: it enters as 0).
    offsets : torch.Tensor
        (n_species,) buffer: energy offset per element, eV.
    """

    def __init__(self, n_features: int, n_species: int, hidden, activation: str):
        super().__init__()
        self.activation = activation
        self.nets = torch.nn.ModuleList(_mlp(n_features, hidden, activation) for _ in range(n_species))
        self.register_buffer("mean", torch.zeros((n_species, n_features), dtype=torch.float64))
        self.register_buffer("std", torch.ones((n_species, n_features), dtype=torch.float64))
        self.register_buffer("offsets", torch.zeros(n_species, dtype=torch.float64))

    def forward(self, G: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        """Per-atom energies (differentiable).

        Parameters
        ----------
        G : torch.Tensor
            (n_atoms, n_features) descriptors, float64.
        species : torch.Tensor
            (n_atoms,) int64 species index of every atom.

        Returns
        -------
        torch.Tensor
            (n_atoms,) energies, eV.
        """
        x = (G - self.mean[species]) / self.std[species]
        out = torch.empty(G.shape[0], dtype=G.dtype)
        for s, net in enumerate(self.nets):
            mask = species == s
            if torch.any(mask):
                out[mask] = net(x[mask])[:, 0]
        return out + self.offsets[species]

    def layers(self, s: int) -> list:
        """NumPy copies of the layers of the network of species ``s``.

        Parameters
        ----------
        s : int
            Species index (descriptor order).

        Returns
        -------
        list of (numpy.ndarray, numpy.ndarray)
            [(W (n_in, n_out), b (n_out,)), …] from the input to the output layer.
        """
        return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                for m in self.nets[s] if isinstance(m, torch.nn.Linear)]

    def energies_and_gradient(self, G: np.ndarray, species: np.ndarray):
        """Per-atom energies and ∂E/∂G in NumPy (no autograd: an explicit backward pass).

        Parameters
        ----------
        G : numpy.ndarray
            (n_atoms, n_features) descriptors.
        species : numpy.ndarray
            (n_atoms,) int species index of every atom.

        Returns
        -------
        energies : numpy.ndarray
            (n_atoms,) eV.
        dE_dG : numpy.ndarray
            (n_atoms, n_features), eV per descriptor unit.
        """
        mean, std, offsets = self.mean.numpy(), self.std.numpy(), self.offsets.numpy()
        energies = np.empty(G.shape[0])
        dE_dG = np.empty_like(G)
        for s in range(len(self.nets)):
            rows = np.flatnonzero(species == s)
            if len(rows):
                e, g = mlp_energy_and_gradient((G[rows] - mean[s]) / std[s], self.layers(s), self.activation)
                energies[rows] = e + offsets[s]
                dE_dG[rows] = g / std[s]
        return energies, dE_dG


# -- training -------------------------------------------------------------------------------------------
#: (row, column) of the Voigt components xx yy zz yz xz xy in a 3×3 tensor
VOIGT = ((0, 1, 2, 1, 0, 0), (0, 1, 2, 2, 2, 1))


def _frame_tensors(descriptor, frames: list[Atoms], progress: bool, stress: bool = False) -> list[dict]:
    """Descriptors, gradients and labels of every frame as tensors (with ``stress``: also the pair
    vectors, the volume and the stress label, NaN for frames without one)."""
    data = []
    for atoms in tqdm(frames, desc="descriptors", disable=not progress, leave=False):
        G, grads = descriptor.compute(atoms, gradients=True)
        data.append({"G": torch.from_numpy(G), "species": torch.from_numpy(descriptor.species_index(atoms)),
                     "i": torch.from_numpy(grads.i), "j": torch.from_numpy(grads.j),
                     "dG": torch.from_numpy(grads.values), "n": len(atoms),
                     "energy": float(atoms.info["energy"]),
                     "forces": torch.from_numpy(np.asarray(atoms.arrays["forces"], float))})
        if stress:
            labelled = "stress" in atoms.info and bool(np.all(atoms.pbc))
            data[-1].update(vectors=torch.from_numpy(grads.vectors),
                            volume=float(atoms.get_volume()) if labelled else 1.0,
                            stress=torch.from_numpy(np.asarray(atoms.info["stress"], float) if labelled
                                                    else np.full(6, np.nan)))
    return data


def _collate(batch: list[dict]) -> dict:
    """One graph's worth of structures: concatenated tensors with shifted pair indices."""
    offset, cat = 0, {"G": [], "species": [], "i": [], "j": [], "dG": [], "forces": [], "owner": []}
    for s, d in enumerate(batch):
        for key in ("G", "species", "dG", "forces"):
            cat[key].append(d[key])
        cat["i"].append(d["i"] + offset)
        cat["j"].append(d["j"] + offset)
        cat["owner"].append(torch.full((d["n"],), s, dtype=torch.long))
        offset += d["n"]
    t = {k: torch.cat(v) for k, v in cat.items()}
    t["n_atoms"] = torch.tensor([d["n"] for d in batch], dtype=t["G"].dtype)
    t["energy"] = torch.tensor([d["energy"] for d in batch], dtype=t["G"].dtype)
    if "stress" in batch[0]:
        t["vectors"] = torch.cat([d["vectors"] for d in batch])
        t["volume"] = torch.tensor([d["volume"] for d in batch], dtype=t["G"].dtype)
        t["stress"] = torch.stack([d["stress"] for d in batch])
    return t


def _batch_stress(t: dict, g: torch.Tensor) -> torch.Tensor:
    """(n_frames, 6) ASE stress (eV/Å³, Voigt) from the per-pair energy gradients g_p = ∂E/∂r_p:
    σ = −W/V = Σ_p r_p ⊗ g_p / V, symmetrised (the virial is linear in ∂E/∂G, as the forces are)."""
    outer = t["vectors"][:, :, None] * g[:, None, :]
    pair_frame = t["owner"][t["i"]]
    sums = torch.zeros((len(t["n_atoms"]), 3, 3), dtype=g.dtype).index_add(0, pair_frame, outer)
    rows, cols = VOIGT
    return 0.5 * (sums[:, rows, cols] + sums[:, cols, rows]) / t["volume"][:, None]


def _batch_loss(networks: AtomicNetworks, t: dict, sigma_energy: float, sigma_forces: float,
                create_graph: bool = True, sigma_stress: float | None = None):
    """Loss of a collated batch and its sums: (loss, Σ(ΔE/N)², ΣΔF², number of force components, ΣΔS²,
    number of stress components); the stress sums are 0 without ``sigma_stress``."""
    n_frames, offset = len(t["n_atoms"]), len(t["G"])
    G = t["G"].clone().requires_grad_(True)
    e_atom = networks(G, t["species"])
    energy = torch.zeros(n_frames, dtype=G.dtype).index_add(0, t["owner"], e_atom)
    (dE_dG,) = torch.autograd.grad(energy.sum(), G, create_graph=create_graph)
    g = torch.einsum("pf,pfx->px", dE_dG[t["i"]], t["dG"])
    forces = torch.zeros((offset, 3), dtype=G.dtype).index_add(0, t["i"], g).index_add(0, t["j"], -g)
    e_err = (energy - t["energy"]) / t["n_atoms"]
    f_err = forces - t["forces"]
    loss = torch.mean(e_err ** 2) / sigma_energy ** 2 + torch.mean(f_err ** 2) / sigma_forces ** 2
    s_sum, s_count = 0.0, 0
    if sigma_stress is not None:
        labelled = torch.isfinite(t["stress"][:, 0])
        if torch.any(labelled):
            s_err = (_batch_stress(t, g) - t["stress"])[labelled]
            loss = loss + torch.mean(s_err ** 2) / sigma_stress ** 2
            s_sum, s_count = torch.sum(s_err ** 2).item(), s_err.numel()
    return loss, torch.sum(e_err ** 2).item(), torch.sum(f_err ** 2).item(), f_err.numel(), s_sum, s_count


def _weight_penalty(networks: AtomicNetworks) -> torch.Tensor:
    """Σ w² over the weight matrices of every network (biases and offsets are not penalised)."""
    return sum(torch.sum(m.weight ** 2) for net in networks.nets for m in net if isinstance(m, torch.nn.Linear))


def validation_split(frames: list[Atoms], order: np.ndarray, fraction: float, always_train) -> tuple[list, list]:
    """The early-stopping split of :class:`NeuralNetworkPotential`: whole frames, never a repeat on both sides.

    The first ``round(fraction · n_distinct)`` distinct frames in ``order`` that may be held out are the
    validation set; repeats of one ``Atoms`` object (a bootstrap resample) stay on one side, and frames
    whose ``info["config_type"]`` is in ``always_train`` are never held out. Without repeats or such
    frames this is ``order[:n_val]``, ``order[n_val:]``.

    Parameters
    ----------
    frames : list of ase.Atoms
        The training frames (repeats allowed).
    order : numpy.ndarray
        A permutation of ``range(len(frames))`` (the seeded shuffle).
    fraction : float
        Fraction of the distinct frames held out, in [0, 1).
    always_train : collection of str
        ``config_type`` values never held out.

    Returns
    -------
    validation, training : list of int
        Indices into ``frames``: each held-out frame once, and every index of the other frames (repeats
        included), in the order of ``order``.
    """
    first = {}
    for k, atoms in enumerate(frames):
        first.setdefault(id(atoms), k)
    unique = [k for k in order if first[id(frames[k])] == k]
    n_val = round(fraction * len(unique))
    candidates = [k for k in unique if frames[k].info.get("config_type") not in always_train]
    if n_val > len(candidates):
        raise ValueError(f"validation_fraction={fraction} holds out {n_val} frames but only {len(candidates)} "
                         f"distinct frames may be held out (always_train={tuple(always_train)}); lower it")
    val = candidates[:n_val]
    held = {id(frames[k]) for k in val}
    train = [k for k in order if id(frames[k]) not in held]
    return val, train


def _standardisation(train: list[dict], n_species: int, min_input_std: float):
    """Per-element input mean and std (inf where the spread is ≤ min_input_std) and energy offsets."""
    G = torch.cat([d["G"] for d in train])
    species = torch.cat([d["species"] for d in train])
    mean = torch.zeros((n_species, G.shape[1]), dtype=G.dtype)
    std = torch.ones((n_species, G.shape[1]), dtype=G.dtype)
    for s in range(n_species):
        if torch.any(species == s):
            mean[s] = G[species == s].mean(0)
            spread = G[species == s].std(0, unbiased=False)
            std[s] = torch.where(spread > min_input_std, spread, torch.inf)
    counts = np.array([np.bincount(d["species"].numpy(), minlength=n_species) / d["n"] for d in train])
    energies = np.array([d["energy"] / d["n"] for d in train])
    return mean, std, torch.from_numpy(np.linalg.lstsq(counts, energies, rcond=None)[0])


class NeuralNetworkPotential(Potential):
    """Behler–Parrinello NNP on any mliplib descriptor (typically :class:`BehlerParrinello`).

    Loss = mean((ΔE/N)²)/sigma_energy² + mean(ΔF²)/sigma_forces² [+ mean(ΔS²)/sigma_stress², over the
    Voigt components of the frames periodic in 3 directions with ``info["stress"]``]
    [+ weight_decay · Σ w² over the weight matrices]; ``validation_fraction`` of the structures held out
    (whole frames; the repeats of one ``Atoms`` object in a bootstrap resample stay together, and frames
    whose ``config_type`` is in ``always_train`` are never held out); the weights of the epoch with the
    lowest validation loss (without the weight penalty; the training loss without validation) are kept,
    and training stops after ``patience`` epochs without improvement or after ``epochs``. Inputs are
    standardised per element with the mean and standard deviation of the training environments. An
    input whose standard deviation is at most ``min_input_std`` is switched off for that element
    (stored std = inf, so it enters as 0): the data say nothing about it, its
    weights would stay at their random initial values, and dividing by a near-zero spread would amplify
    a value never seen in training (e.g. a G2 shell at 1 Å, exactly 0 in every crystal) by up to 1e8
    into them. Linear models give such columns zero weight for the same reason. Deterministic for a
    given ``seed``.

    Parameters
    ----------
    descriptor : mliplib.descriptors.base.Descriptor
        The features.
    hidden : sequence of int
        Widths of the hidden layers (default two layers of 25).
    activation : str
        "tanh", "softplus" or "silu".
    sigma_energy : float
        Energy scale of the loss, eV/atom.
    sigma_forces : float
        Force scale of the loss, eV/Å.
    sigma_stress : float or None
        Stress scale of the loss, eV/Å³ (1 GPa = 1/160.2 eV/Å³); None (default) leaves stresses out.
    weight_decay : float
        Coefficient of the L2 penalty Σ w² on the networks' weight matrices (biases and energy offsets
        are not penalised), in units of the (dimensionless) loss; 0 (default) for none. Added to the loss
        for both optimizers.
    always_train : tuple of str
        ``info["config_type"]`` values of frames never held out for validation (e.g. the isolated atoms,
        which alone fix each element's energy constant).
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Structures per Adam step.
    learning_rate : float
        Initial Adam learning rate.
    lr_patience : int
        Adam: epochs without improvement before the learning rate is halved.
    patience : int
        Epochs without improvement before training stops.
    validation_fraction : float
        Fraction of the distinct structures held out for early stopping, in [0, 1), drawn with ``seed``.
    seed : int
        Seed of the split, the batches and the initial weights.
    threads : int or None
        PyTorch CPU threads during training (None: all cores, at most 4).
    progress : bool
        Show tqdm progress bars.
    optimizer : str
        "adam" (mini-batches) or "lbfgs" (full batch, strong-Wolfe line search, ``lbfgs_iterations``
        per epoch; ``batch_size``, ``learning_rate`` and ``lr_patience`` unused). For the small reference
        sets of this project (≲ 10⁴ atoms, the whole set in one graph) L-BFGS reaches in tens of seconds
        force errors that Adam does not reach in minutes (a 16-frame, 512-atom test set: 0.06 vs 0.4 eV/Å).
    lbfgs_iterations : int
        L-BFGS iterations per epoch.
    min_input_std : float
        Inputs with a smaller spread in the training data are switched off, descriptor units.

    Attributes
    ----------
    networks_ : AtomicNetworks
        The trained model.
    history_ : list of dict
        Per epoch: ``epoch``, ``loss`` (with the weight penalty), ``lr``, ``rmse_energy`` (eV/atom),
        ``rmse_forces`` (eV/Å), with ``sigma_stress`` ``rmse_stress`` (eV/Å³) and, with validation,
        ``val_loss``, ``val_rmse_energy``, ``val_rmse_forces`` (and ``val_rmse_stress``).
    trained_species_ : list of str
        Elements present in the training frames.
    """

    kind = "NeuralNetworkPotential"

    def __init__(self, descriptor, hidden=(25, 25), activation: str = "tanh", sigma_energy: float = 0.002,
                 sigma_forces: float = 0.1, epochs: int = 400, batch_size: int = 8, learning_rate: float = 5e-3,
                 lr_patience: int = 15, patience: int = 50, validation_fraction: float = 0.1, seed: int = 0,
                 threads: int | None = None, progress: bool = True, optimizer: str = "adam",
                 lbfgs_iterations: int = 20, min_input_std: float = 1e-3, sigma_stress: float | None = None,
                 weight_decay: float = 0.0, always_train: tuple[str, ...] = ()):
        self.descriptor = descriptor
        self.hidden = hidden
        self.activation = activation
        self.sigma_energy = sigma_energy
        self.sigma_forces = sigma_forces
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_patience = lr_patience
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.seed = seed
        self.threads = threads
        self.progress = progress
        self.optimizer = optimizer
        self.lbfgs_iterations = lbfgs_iterations
        self.min_input_std = min_input_std
        self.sigma_stress = sigma_stress
        self.weight_decay = weight_decay
        self.always_train = always_train

    # -- checks -----------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if isinstance(self.hidden, (str, bytes)) or not np.iterable(self.hidden) or len(self.hidden) == 0 \
                or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1 for h in self.hidden):
            raise ValueError(f"hidden must list positive integer layer widths, got {self.hidden!r}")
        if self.optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {self.optimizer!r}")
        for name in ("sigma_energy", "sigma_forces", "learning_rate", "min_input_std"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float, np.number)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("epochs", "batch_size", "lr_patience", "patience", "lbfgs_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not (isinstance(self.validation_fraction, (int, float, np.number)) and 0 <= self.validation_fraction < 1):
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        if self.sigma_stress is not None and not (isinstance(self.sigma_stress, (int, float, np.number))
                                                  and np.isfinite(self.sigma_stress) and self.sigma_stress > 0):
            raise ValueError("sigma_stress must be a positive finite number (eV/Å³) or None, "
                             f"got {self.sigma_stress!r}")
        if not (isinstance(self.weight_decay, (int, float, np.number)) and np.isfinite(self.weight_decay)
                and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be a finite number ≥ 0, got {self.weight_decay!r}")
        if isinstance(self.always_train, (str, bytes)) or not all(isinstance(c, str) for c in self.always_train):
            raise ValueError(f"always_train must be a tuple of config_type strings, got {self.always_train!r}")

    def check_frames(self, frames) -> None:
        """Raise ValueError naming the first frame this model cannot be trained on.

        Parameters
        ----------
        frames : sequence of ase.Atoms
            At least two reference frames (one may be held out) with finite ``info["energy"]`` (eV) and
            ``arrays["forces"]`` (eV/Å), finite positions and elements the descriptor knows; with
            ``sigma_stress``, at least one frame periodic in 3 directions with a finite ``info["stress"]``
            (eV/Å³).
        """
        stress = self.sigma_stress is not None
        check_labels(frames, energy=True, forces=True, stress=stress, descriptor=self.descriptor)
        if len(frames) < 2:
            raise ValueError("fit needs at least two reference frames (one may be held out for validation)")
        if stress and not any("stress" in atoms.info and np.all(atoms.pbc) for atoms in frames):
            raise ValueError("sigma_stress is set but no frame periodic in 3 directions has info['stress'] (eV/Å³); "
                             "label stresses or set sigma_stress=None")

    # -- training ---------------------------------------------------------------------------------------
    def fit(self, frames: list[Atoms]) -> NeuralNetworkPotential:
        """Train the networks.

        Parameters
        ----------
        frames : list of ase.Atoms
            Reference frames with ``info["energy"]`` (eV), ``arrays["forces"]`` (eV/Å) and, with
            ``sigma_stress``, ``info["stress"]`` (eV/Å³, Voigt, ASE sign) on periodic frames.

        Returns
        -------
        NeuralNetworkPotential
            self, fitted.
        """
        self._check_params()
        self.check_frames(frames)
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or min(os.cpu_count() or 1, 4))
        try:
            networks, history = self._train(frames)
        finally:
            torch.set_num_threads(threads)
        self.networks_, self.history_ = networks, history
        self.trained_species_ = trained_species(frames)
        return self

    def _train(self, frames):
        rng = np.random.default_rng(self.seed)
        stress = self.sigma_stress is not None
        data = _frame_tensors(self.descriptor, frames, self.progress, stress=stress)
        order = rng.permutation(len(data))
        val_rows, train_rows = validation_split(frames, order, self.validation_fraction, self.always_train)
        val, train = [data[k] for k in val_rows], [data[k] for k in train_rows]
        n_species = len(self.descriptor.species_z)
        mean, std, offsets = _standardisation(train, n_species, self.min_input_std)
        torch.manual_seed(self.seed)
        networks = AtomicNetworks(self.descriptor.n_features, n_species, self.hidden, self.activation)
        networks.mean.copy_(mean)
        networks.std.copy_(std)
        networks.offsets.copy_(offsets)

        def loss_of(batch, create_graph=True):
            return _batch_loss(networks, batch, self.sigma_energy, self.sigma_forces, create_graph, self.sigma_stress)

        def objective(batch):  # the training loss: the data terms and the weight penalty
            loss, *sums = loss_of(batch)
            if self.weight_decay:
                loss = loss + self.weight_decay * _weight_penalty(networks)
            return loss, *sums

        lbfgs = self.optimizer == "lbfgs"
        if lbfgs:
            optimiser = torch.optim.LBFGS(networks.parameters(), lr=1.0, max_iter=self.lbfgs_iterations,
                                          history_size=20, line_search_fn="strong_wolfe")
            everything = _collate(train)
            last = {}  # the sums at the last point the line search evaluated

            def closure():
                optimiser.zero_grad()
                loss, *sums = objective(everything)
                loss.backward()
                last["sums"] = (loss.item() * len(train), *sums)
                return loss
        else:
            optimiser = torch.optim.Adam(networks.parameters(), lr=self.learning_rate)
            schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=self.lr_patience)
        val_batch = _collate(val) if val else None
        best, best_state, stale = np.inf, None, 0
        history = []
        bar = tqdm(range(self.epochs), desc=f"NNP seed {self.seed}", disable=not self.progress)
        for epoch in bar:
            sums = np.zeros(6)
            if lbfgs:
                optimiser.step(closure)
                sums += last["sums"]
            else:
                perm = rng.permutation(len(train))
                for start in range(0, len(train), self.batch_size):
                    batch = [train[k] for k in perm[start:start + self.batch_size]]
                    optimiser.zero_grad()
                    loss, *batch_sums = objective(_collate(batch))
                    loss.backward()
                    optimiser.step()
                    sums += (loss.item() * len(batch), *batch_sums)
            record = {"epoch": epoch, "loss": sums[0] / len(train), "lr": optimiser.param_groups[0]["lr"],
                      "rmse_energy": float(np.sqrt(sums[1] / len(train))),
                      "rmse_forces": float(np.sqrt(sums[2] / sums[3]))}
            if stress:
                record["rmse_stress"] = float(np.sqrt(sums[4] / max(sums[5], 1)))
            if not np.isfinite(record["loss"]):
                break  # diverged: keep the best weights so far
            monitor = record["loss"]
            if val:
                vl, vse, vsf, vnf, vss, vns = loss_of(val_batch, create_graph=False)
                record.update(val_loss=vl.item(), val_rmse_energy=float(np.sqrt(vse / len(val))),
                              val_rmse_forces=float(np.sqrt(vsf / vnf)))
                if stress:
                    record["val_rmse_stress"] = float(np.sqrt(vss / max(vns, 1)))
                monitor = record["val_loss"]
            history.append(record)
            if not lbfgs:
                schedule.step(monitor)
            bar.set_postfix(loss=f"{record['loss']:.3g}", val=f"{monitor:.3g}",
                            E=f"{1000 * record['rmse_energy']:.1f}meV", F=f"{record['rmse_forces']:.3f}")
            if monitor < best:
                best, best_state, stale = monitor, copy.deepcopy(networks.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is None:
            raise RuntimeError("NNP training diverged in its first epoch (non-finite loss); lower the learning "
                               "rate (the frames' labels are finite: fit checks them)")
        networks.load_state_dict(best_state)
        return networks, history

    # -- prediction and diagnostics ------------------------------------------------------------------
    def loss(self, frames: list[Atoms]) -> torch.Tensor:
        """The training objective of the fitted networks on ``frames``, as one full batch.

        The data terms of the loss (energies, forces and, with ``sigma_stress``, stresses, each computed
        as in training: forces and stress contracted from ∂E/∂G inside the graph) plus the weight
        penalty; differentiable with respect to the parameters of ``networks_`` (a diagnostic, and the
        quantity whose gradient training follows).

        Parameters
        ----------
        frames : list of ase.Atoms
            Labelled frames, as for :meth:`fit` (at least two).

        Returns
        -------
        torch.Tensor
            0-d float64 tensor, dimensionless.
        """
        if not self.is_fitted:
            raise NotFittedError(f"this {self.kind} is not fitted yet; call .fit(frames) or load a saved model")
        self.check_frames(frames)
        batch = _collate(_frame_tensors(self.descriptor, frames, False, stress=self.sigma_stress is not None))
        loss = _batch_loss(self.networks_, batch, self.sigma_energy, self.sigma_forces, True, self.sigma_stress)[0]
        return loss + self.weight_decay * _weight_penalty(self.networks_) if self.weight_decay else loss

    def energies_and_gradient(self, G: np.ndarray, species: np.ndarray):
        """Per-atom energies and ∂E/∂G for given descriptors (see :meth:`AtomicNetworks.energies_and_gradient`).

        Parameters
        ----------
        G : numpy.ndarray
            (n_atoms, n_features) descriptors.
        species : numpy.ndarray
            (n_atoms,) species indices (descriptor order).

        Returns
        -------
        energies : numpy.ndarray
            (n_atoms,) eV.
        dE_dG : numpy.ndarray
            (n_atoms, n_features).
        """
        return self.networks_.energies_and_gradient(G, species)

    def _predict(self, atoms: Atoms, neighbors) -> dict:
        G = self.descriptor.compute(atoms, neighbors=neighbors)
        energies, dE_dG = self.networks_.energies_and_gradient(G, self.descriptor.species_index(atoms))
        forces, virial = self.descriptor.forces_and_virial(atoms, dE_dG, neighbors=neighbors)
        out = {"energy": float(energies.sum()), "energies": energies, "forces": forces}
        if np.all(atoms.pbc):
            out["stress"] = stress_from_virial(atoms, virial)
        return out

    def input_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """The per-element standardisation of the inputs learnt from the training environments.

        Returns
        -------
        mean, std : numpy.ndarray
            (n_species, n_features) each, descriptor units, species in descriptor order; std = inf marks
            an input switched off for that element (its spread was ≤ ``min_input_std``).
        """
        return self.networks_.mean.numpy().copy(), self.networks_.std.numpy().copy()

    def standardised_inputs(self, atoms: Atoms) -> np.ndarray:
        """The network inputs of every atom, (G − μ)/σ: how many training standard deviations each
        descriptor is from its element's training mean (0 for switched-off inputs).

        Parameters
        ----------
        atoms : ase.Atoms
            The structure.

        Returns
        -------
        numpy.ndarray
            (n_atoms, n_features), dimensionless.
        """
        self.check(atoms)
        species = self.descriptor.species_index(atoms)
        mean, std = self.input_statistics()
        return (self.descriptor.compute(atoms) - mean[species]) / std[species]

    def first_layer_preactivations(self, atoms: Atoms) -> np.ndarray:
        """Pre-activations z = x·W₁ + b₁ of the first hidden layer of every atom's network.

        |z| ≫ 1 means a saturated unit (tanh slope 1 − tanh²(5) ≈ 2e-4 at |z| = 5): an environment far
        from the training data.

        Parameters
        ----------
        atoms : ase.Atoms
            The structure.

        Returns
        -------
        numpy.ndarray
            (n_atoms, hidden[0]).
        """
        x = self.standardised_inputs(atoms)
        species = self.descriptor.species_index(atoms)
        z = np.empty((len(atoms), self.hidden[0]))
        for s in np.unique(species):
            W, b = self.networks_.layers(int(s))[0]
            z[species == s] = x[species == s] @ W + b
        return z

    def layer_weights(self, element: str) -> list:
        """The weights of one element's network, input layer first.

        Parameters
        ----------
        element : str
            Chemical symbol, one of ``species``.

        Returns
        -------
        list of (numpy.ndarray, numpy.ndarray)
            [(W (n_in, n_out), b (n_out,)), …] (NumPy copies).
        """
        if element not in self.species:
            raise ValueError(f"{element!r} is not one of this model's species {self.species}")
        return self.networks_.layers(self.species.index(element))

    # -- state ------------------------------------------------------------------------------------------
    def _fitted_state(self):
        arrays = {f"networks.{k}": v.detach().numpy() for k, v in self.networks_.state_dict().items()}
        return {"history": self.history_}, arrays

    def _restore_fitted(self, fitted, arrays):
        self._check_params()
        networks = AtomicNetworks(self.descriptor.n_features, len(self.descriptor.species_z), self.hidden,
                                  self.activation)
        shapes = {f"networks.{k}": tuple(v.shape) for k, v in networks.state_dict().items()}
        check_array_names(arrays, set(shapes))
        state = {name.removeprefix("networks."): torch.from_numpy(check_array(arrays, name, shape,
                                                                              finite=name != "networks.std"))
                 for name, shape in shapes.items()}
        if not torch.all(state["std"] > 0):  # inf (switched off) is allowed, NaN and ≤ 0 are not
            raise ValueError("array 'networks.std' must be positive (inf for switched-off inputs)")
        networks.load_state_dict(state)
        if not isinstance(fitted.get("history"), list):
            raise TypeError("fitted metadata has no history list")
        self.networks_, self.history_ = networks, fitted["history"]
