"""Behler–Parrinello neural-network potential: one small MLP per element, E = Σ_i NN_{Z_i}(G_i) + Σ_i b_{Z_i}.

Trained on energies and forces. Forces never need autograd through the descriptor: the network gives
∂E/∂G_i, and the descriptor's analytic per-pair gradients contract it into forces (F_j −= g_ij,
F_i += g_ij with g_ij = Σ_f ∂E/∂G_if · ∂G_if/∂r_ij), inside the PyTorch graph for training and in the
descriptor's Numba kernel (no stored gradients) for prediction.

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
from tqdm.auto import tqdm

from mliplib.descriptors.base import descriptor_from_dict
from mliplib.models.base import Potential, stress_from_virial

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
    """Outputs (n,) and d(output)/dx (n, n_in) of an MLP given as [(W (n_in, n_out), b (n_out,)), …]
    (activation after every layer but the last), by an explicit forward and backward pass."""
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


class NeuralNetworkPotential(Potential):
    """Behler–Parrinello NNP on any mliplib descriptor (typically :class:`BehlerParrinello`).

    hidden: widths of the hidden layers (default two layers of 25); activation: "tanh", "softplus" or
    "silu". Loss = mean((ΔE/N)²)/sigma_energy² + mean(ΔF²)/sigma_forces² (sigma in eV/atom and eV/Å);
    ``validation_fraction`` of the structures held out; the weights of the epoch with the lowest
    validation loss are kept, and training stops after ``patience`` epochs without improvement or after
    ``epochs``. optimizer:

    - "adam" (default): mini-batches of ``batch_size`` structures, ``learning_rate`` halved when the
      validation loss stalls for ``lr_patience`` epochs;
    - "lbfgs": full-batch L-BFGS (strong-Wolfe line search, ``lbfgs_iterations`` iterations per epoch;
      ``batch_size``, ``learning_rate`` and ``lr_patience`` unused). For the small reference sets of
      this project (≲ 10⁴ atoms, the whole set in one graph) it reaches in tens of seconds force errors
      that Adam does not reach in minutes (a 16-frame, 512-atom test set: 0.06 vs 0.4 eV/Å).

    Inputs are standardised per element with the mean and standard deviation of the training
    environments. An input whose standard deviation is at most ``min_input_std`` (descriptor units) is
    switched off for that element (stored std = inf, so it enters as 0): the data say nothing about it,
    its weights would stay at their random initial values, and dividing by a near-zero spread would
    amplify a value never seen in training (e.g. a G2 shell at 1 Å, exactly 0 in every crystal) by up to
    1e8 into them. Linear models give such columns zero weight for the same reason.

    Deterministic for a given ``seed``; uses ``threads`` CPU threads (default: all cores, at most 4).
    """

    kind = "NeuralNetworkPotential"

    def __init__(self, descriptor, hidden=(25, 25), activation: str = "tanh", sigma_energy: float = 0.002,
                 sigma_forces: float = 0.1, epochs: int = 400, batch_size: int = 8, learning_rate: float = 5e-3,
                 lr_patience: int = 15, patience: int = 50, validation_fraction: float = 0.1, seed: int = 0,
                 threads: int | None = None, progress: bool = True, optimizer: str = "adam",
                 lbfgs_iterations: int = 20, min_input_std: float = 1e-3):
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden must list positive layer widths, got {hidden}")
        if optimizer not in ("adam", "lbfgs"):
            raise ValueError(f"optimizer must be 'adam' or 'lbfgs', got {optimizer!r}")
        if not min_input_std > 0:
            raise ValueError(f"min_input_std must be positive, got {min_input_std}")
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        self.descriptor = descriptor
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.sigma_energy, self.sigma_forces = sigma_energy, sigma_forces
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.lr_patience, self.patience, self.validation_fraction = lr_patience, patience, validation_fraction
        self.seed, self.threads, self.progress = seed, threads, progress
        self.optimizer, self.lbfgs_iterations = optimizer, int(lbfgs_iterations)
        self.min_input_std = float(min_input_std)
        self.nets = None
        self.history = []
        self._numpy = None  # prediction cache: NumPy copies of the weights (rebuilt after fit/load)

    @property
    def is_fitted(self) -> bool:
        return self.nets is not None

    def _init_nets(self):
        torch.manual_seed(self.seed)
        n_species = len(self.descriptor.species_z)
        self.nets = torch.nn.ModuleList(_mlp(self.descriptor.n_features, self.hidden, self.activation)
                                        for _ in range(n_species))
        self._numpy = None

    # -- the model ------------------------------------------------------------------------------------
    def _atomic_energies(self, G: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        x = (G - self.mean[species]) / self.std[species]
        out = torch.empty(G.shape[0], dtype=G.dtype)
        for s, net in enumerate(self.nets):
            mask = species == s
            if torch.any(mask):
                out[mask] = net(x[mask])[:, 0]
        return out + self.offsets[species]

    # -- training -------------------------------------------------------------------------------------
    def _prepare(self, frames: list[Atoms]) -> list[dict]:
        data = []
        for atoms in tqdm(frames, desc="descriptors", disable=not self.progress, leave=False):
            G, grads = self.descriptor.compute(atoms, gradients=True)
            data.append({"G": torch.from_numpy(G), "species": torch.from_numpy(self.descriptor.species_index(atoms)),
                         "i": torch.from_numpy(grads.i), "j": torch.from_numpy(grads.j),
                         "dG": torch.from_numpy(grads.values), "n": len(atoms),
                         "energy": float(atoms.info["energy"]),
                         "forces": torch.from_numpy(np.asarray(atoms.arrays["forces"], float))})
        return data

    @staticmethod
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
        return t

    def _batch_loss(self, batch, create_graph: bool = True):
        t = batch if isinstance(batch, dict) else self._collate(batch)
        n_frames, offset = len(t["n_atoms"]), len(t["G"])
        G = t["G"].clone().requires_grad_(True)
        e_atom = self._atomic_energies(G, t["species"])
        n_atoms = t["n_atoms"]
        energy = torch.zeros(n_frames, dtype=G.dtype).index_add(0, t["owner"], e_atom)
        (dE_dG,) = torch.autograd.grad(energy.sum(), G, create_graph=create_graph)
        g = torch.einsum("pf,pfx->px", dE_dG[t["i"]], t["dG"])
        forces = torch.zeros((offset, 3), dtype=G.dtype).index_add(0, t["i"], g).index_add(0, t["j"], -g)
        ref = t["energy"]
        e_err = (energy - ref) / n_atoms
        f_err = forces - t["forces"]
        loss = torch.mean(e_err ** 2) / self.sigma_energy ** 2 + torch.mean(f_err ** 2) / self.sigma_forces ** 2
        return loss, torch.sum(e_err ** 2).item(), torch.sum(f_err ** 2).item(), f_err.numel()

    def fit(self, frames: list[Atoms]) -> "NeuralNetworkPotential":
        """Train on reference frames (``info["energy"]`` in eV, ``arrays["forces"]`` in eV/Å)."""
        if len(frames) < 2:
            raise ValueError("fit needs at least two reference frames (one may be held out for validation)")
        for atoms in frames:
            if "energy" not in atoms.info or "forces" not in atoms.arrays:
                raise ValueError("every frame needs info['energy'] and arrays['forces'] (see mliplib.datasets)")
        threads = torch.get_num_threads()
        torch.set_num_threads(self.threads or min(os.cpu_count() or 1, 4))
        try:
            return self._fit(frames)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, frames):
        rng = np.random.default_rng(self.seed)
        data = self._prepare(frames)
        order = rng.permutation(len(data))
        n_val = int(round(self.validation_fraction * len(data)))
        val, train = [data[k] for k in order[:n_val]], [data[k] for k in order[n_val:]]
        self._standardise(train)
        self._init_nets()
        lbfgs = self.optimizer == "lbfgs"
        if lbfgs:
            optimiser = torch.optim.LBFGS(self.nets.parameters(), lr=1.0, max_iter=self.lbfgs_iterations,
                                          history_size=20, line_search_fn="strong_wolfe")
            everything = self._collate(train)
        else:
            optimiser = torch.optim.Adam(self.nets.parameters(), lr=self.learning_rate)
            schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=self.lr_patience)
        val_batch = self._collate(val) if val else None
        best, best_state, stale = np.inf, None, 0
        self.history = []
        bar = tqdm(range(self.epochs), desc=f"NNP seed {self.seed}", disable=not self.progress)
        for epoch in bar:
            sums = np.zeros(4)
            if lbfgs:
                last = {}

                def closure():
                    optimiser.zero_grad()
                    loss, se, sf, nf = self._batch_loss(everything)
                    loss.backward()
                    last["sums"] = (loss.item() * len(train), se, sf, nf)
                    return loss

                optimiser.step(closure)
                sums += last["sums"]  # at the last point the line search evaluated
            else:
                perm = rng.permutation(len(train))
                for start in range(0, len(train), self.batch_size):
                    batch = [train[k] for k in perm[start:start + self.batch_size]]
                    optimiser.zero_grad()
                    loss, se, sf, nf = self._batch_loss(batch)
                    loss.backward()
                    optimiser.step()
                    sums += (loss.item() * len(batch), se, sf, nf)
            record = {"epoch": epoch, "loss": sums[0] / len(train), "lr": optimiser.param_groups[0]["lr"],
                      "rmse_energy": float(np.sqrt(sums[1] / len(train))), "rmse_forces": float(np.sqrt(sums[2] / sums[3]))}
            if not np.isfinite(record["loss"]):
                break  # diverged: keep the best weights so far
            monitor = record["loss"]
            if val:
                vl, vse, vsf, vnf = self._batch_loss(val_batch, create_graph=False)
                record.update(val_loss=vl.item(), val_rmse_energy=float(np.sqrt(vse / len(val))),
                              val_rmse_forces=float(np.sqrt(vsf / vnf)))
                monitor = record["val_loss"]
            self.history.append(record)
            if not lbfgs:
                schedule.step(monitor)
            bar.set_postfix(loss=f"{record['loss']:.3g}", val=f"{monitor:.3g}",
                            E=f"{1000 * record['rmse_energy']:.1f}meV", F=f"{record['rmse_forces']:.3f}")
            if monitor < best:
                best, best_state, stale = monitor, copy.deepcopy(self.nets.state_dict()), 0
            else:
                stale += 1
                if stale >= self.patience:
                    break
        if best_state is None:
            raise RuntimeError("NNP training diverged in its first epoch (non-finite loss); lower the learning "
                               "rate or check the reference data")
        self.nets.load_state_dict(best_state)
        self._numpy = None
        return self

    def _standardise(self, train: list[dict]) -> None:
        n_species = len(self.descriptor.species_z)
        G = torch.cat([d["G"] for d in train])
        species = torch.cat([d["species"] for d in train])
        mean = torch.zeros((n_species, G.shape[1]), dtype=G.dtype)
        std = torch.ones((n_species, G.shape[1]), dtype=G.dtype)
        for s in range(n_species):
            if torch.any(species == s):
                mean[s] = G[species == s].mean(0)
                spread = G[species == s].std(0, unbiased=False)
                std[s] = torch.where(spread > self.min_input_std, spread, torch.inf)
        self.mean, self.std = mean, std
        counts = np.array([np.bincount(d["species"].numpy(), minlength=n_species) / d["n"] for d in train])
        energies = np.array([d["energy"] / d["n"] for d in train])
        self.offsets = torch.from_numpy(np.linalg.lstsq(counts, energies, rcond=None)[0])

    # -- prediction ---------------------------------------------------------------------------------
    def _numpy_state(self):
        """NumPy copies of (per-species layers [(W, b), …], mean, std, offsets) for prediction."""
        if self._numpy is None:
            layers = [[(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
                       for m in net if isinstance(m, torch.nn.Linear)] for net in self.nets]
            self._numpy = (layers, self.mean.numpy().copy(), self.std.numpy().copy(), self.offsets.numpy().copy())
        return self._numpy

    def energies_and_gradient(self, G: np.ndarray, species: np.ndarray):
        """Per-atom energies (n,) in eV and ∂E/∂G (n, n_features) for descriptors G and species indices."""
        layers, mean, std, offsets = self._numpy_state()
        energies = np.empty(G.shape[0])
        dE_dG = np.empty_like(G)
        for s, net in enumerate(layers):
            rows = np.flatnonzero(species == s)
            if len(rows):
                e, g = mlp_energy_and_gradient((G[rows] - mean[s]) / std[s], net, self.activation)
                energies[rows] = e + offsets[s]
                dE_dG[rows] = g / std[s]
        return energies, dE_dG

    def _predict(self, atoms: Atoms, neighbors) -> dict:
        G = self.descriptor.compute(atoms, neighbors=neighbors)
        energies, dE_dG = self.energies_and_gradient(G, self.descriptor.species_index(atoms))
        forces, virial = self.descriptor.forces_and_virial(atoms, dE_dG, neighbors=neighbors)
        out = {"energy": float(energies.sum()), "energies": energies, "forces": forces}
        if np.all(atoms.pbc):
            out["stress"] = stress_from_virial(atoms, virial)
        return out

    # -- saving -----------------------------------------------------------------------------------
    def _state(self):
        meta = {"descriptor": self.descriptor.to_dict(), "hidden": list(self.hidden), "activation": self.activation,
                "training": {k: getattr(self, k) for k in ("sigma_energy", "sigma_forces", "epochs", "batch_size",
                                                           "learning_rate", "lr_patience", "patience",
                                                           "validation_fraction", "seed", "optimizer",
                                                           "lbfgs_iterations", "min_input_std")},
                "history": self.history}
        arrays = {f"nets.{k}": v.detach().numpy() for k, v in self.nets.state_dict().items()}
        arrays.update(mean=self.mean.numpy(), std=self.std.numpy(), offsets=self.offsets.numpy())
        return meta, arrays

    @classmethod
    def _from_state(cls, meta, arrays):
        model = cls(descriptor_from_dict(meta["descriptor"]), hidden=meta["hidden"], activation=meta["activation"],
                    **meta["training"])
        model._init_nets()
        model.nets.load_state_dict({k[5:]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("nets.")})
        model.mean, model.std = torch.from_numpy(arrays["mean"]), torch.from_numpy(arrays["std"])
        model.offsets = torch.from_numpy(arrays["offsets"])
        model.history = meta["history"]
        return model
