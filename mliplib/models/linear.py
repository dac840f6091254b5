"""Linear potentials: E = Σ_i w_{g(i)} · G_i + Σ_i b_{Z_i}, fitted on energies, forces and stresses.

``g(i)`` is the centre's element for descriptors that do not encode it (Behler–Parrinello: one weight
vector per element, "linear-BP") and a single shared group for centre-resolved descriptors (PLIP: one
weight per term, the species channels are already in the features). Any scikit-learn linear regressor
fits the weights: ``Ridge``/``RidgeCV`` for linear-BP, ``LassoLars``/``LassoLarsIC`` or this library's
:class:`~mliplib.models.lasso_path.LassoLarsPathCV` for PLIP.

The design matrix has one row per energy (per atom), per force component and per stress component; rows
are divided by the target accuracy ``sigma_*`` of their kind, columns are scaled to unit RMS inside the
fit and the coefficients mapped back. The per-element offsets b_Z are fitted separately by least
squares on the energies, so a sparse estimator never penalises them (minimum-norm: with stoichiometric
frames only, b_Zn + b_O is defined but not the split; the shipped ZnO set includes the isolated atoms,
which fix both).

Estimators that cross-validate with an integer ``cv`` (``RidgeCV(cv=5)``, ``LassoLarsPathCV``, ``LassoLarsCV``)
are cross-validated *by frame*: the rows of one frame (its energy, forces, stress) always fall in the
same fold (frames dealt to folds at random, seed ``cv_seed``). Row-wise folds would put a frame's other
force components in the training part and reward over-fitting.
"""

from __future__ import annotations

import json

import numpy as np
from ase import Atoms
from numba import njit
from sklearn.base import clone
from sklearn.linear_model import RidgeCV

from mliplib.descriptors.base import descriptor_from_dict
from mliplib.models.base import Potential, stress_from_virial

VOIGT = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))


@njit(cache=True)
def force_design(i, j, values, group, n_groups, n_atoms):
    """Force rows (3·n_atoms, n_groups·n_features): column (g, f) is −∂(Σ_{i∈g} G_if)/∂r_a."""
    n_feat = values.shape[1]
    x = np.zeros((3 * n_atoms, n_groups * n_feat))
    for p in range(i.shape[0]):
        a, b = i[p], j[p]
        c0 = group[a] * n_feat
        for f in range(n_feat):
            for k in range(3):
                v = values[p, f, k]
                x[3 * a + k, c0 + f] += v
                x[3 * b + k, c0 + f] -= v
    return x


@njit(cache=True)
def stress_design(i, vectors, values, group, n_groups, volume):
    """Stress rows (6 Voigt, n_groups·n_features): column (g, f) is (1/V) Σ_{p: i_p∈g} r_p ⊗ ∂G_if/∂r_p."""
    n_feat = values.shape[1]
    x = np.zeros((6, n_groups * n_feat))
    rows = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
    for p in range(i.shape[0]):
        c0 = group[i[p]] * n_feat
        for r in range(6):
            a, b = rows[r]
            ra, rb = vectors[p, a], vectors[p, b]
            for f in range(n_feat):
                x[r, c0 + f] += 0.5 * (ra * values[p, f, b] + rb * values[p, f, a]) / volume
    return x


def values_forces_and_virial(descriptor, atoms: Atoms, dE_dG: np.ndarray, neighbors=None):
    """(G, forces, virial) with a single descriptor kernel pass where the descriptor allows it.

    Descriptors that override :meth:`Descriptor.values_forces_and_virial` (PLIP) are used as they are. The
    Behler–Parrinello force kernel (mode 2 of ``bp._bp_kernel``) fills G as well, but bp.py does not
    expose that publicly yet, so it is reached here through ``BehlerParrinello._run``; a test
    (tests/test_models.py) checks that this path equals ``compute`` + ``forces_and_virial`` exactly, and
    any descriptor without these internals falls back to the two-pass default.
    """
    from mliplib.descriptors import bp as _bp
    from mliplib.descriptors.base import Descriptor
    own = type(descriptor).values_forces_and_virial is not Descriptor.values_forces_and_virial
    if not own and isinstance(descriptor, _bp.BehlerParrinello) and hasattr(_bp, "_MODE_FORCES") \
            and hasattr(descriptor, "_run") and hasattr(_bp, "_scatter"):
        dE_dG = np.ascontiguousarray(dE_dG, dtype=np.float64)
        if dE_dG.shape != (len(atoms), descriptor.n_features):
            raise ValueError(f"dE_dG must have shape (n_atoms, n_features) = ({len(atoms)}, "
                             f"{descriptor.n_features}); got {dE_dG.shape}")
        G, pairs, vectors, _, gpair = descriptor._run(atoms, _bp._MODE_FORCES, neighbors, dE_dG)
        forces, virial = _bp._scatter(np.ascontiguousarray(pairs.i, dtype=np.int64),
                                      np.ascontiguousarray(pairs.j, dtype=np.int64), vectors, gpair, len(atoms))
        return G, forces, virial
    return descriptor.values_forces_and_virial(atoms, dE_dG, neighbors=neighbors)


class LinearPotential(Potential):
    """Linear model on any mliplib descriptor (see module docstring).

    descriptor: a :class:`~mliplib.descriptors.base.Descriptor`. estimator: a scikit-learn linear
    regressor (default ``RidgeCV`` over 10⁻⁸…10² in the scaled problem); its intercept is switched off
    (a constant added to every energy and force row has no physical meaning). sigma_energy (eV/atom),
    sigma_forces (eV/Å), sigma_stress (eV/Å³): target accuracies weighting each kind of row; None
    leaves that kind out of the fit (the PLIP protocol of Kandy et al. fits forces only).
    """

    kind = "LinearPotential"

    def __init__(self, descriptor, estimator=None, sigma_energy: float | None = 0.002,
                 sigma_forces: float | None = 0.1, sigma_stress: float | None = None, cv_seed: int = 0):
        if all(s is None for s in (sigma_energy, sigma_forces, sigma_stress)):
            raise ValueError("nothing to fit: give at least one of sigma_energy, sigma_forces, sigma_stress")
        for name, s in (("sigma_energy", sigma_energy), ("sigma_forces", sigma_forces),
                        ("sigma_stress", sigma_stress)):
            if s is not None and not s > 0:
                raise ValueError(f"{name} must be a positive accuracy or None, got {s}")
        self.descriptor = descriptor
        self.estimator = estimator if estimator is not None else RidgeCV(alphas=np.logspace(-8, 2, 21))
        self.sigma_energy, self.sigma_forces, self.sigma_stress = sigma_energy, sigma_forces, sigma_stress
        self.cv_seed = cv_seed
        self.min_column_scale = 1e-4  # columns with an RMS below this × the median column RMS are left out
        self.weights = None  # (n_groups, n_features)
        self.offsets = None  # (n_species,) eV per atom of each element
        self.fit_info = {}

    @property
    def n_groups(self) -> int:
        return 1 if self.descriptor.centre_resolved else len(self.descriptor.species_z)

    @property
    def is_fitted(self) -> bool:
        return self.weights is not None

    @property
    def n_nonzero(self) -> int:
        """Number of non-zero weights (the sparsity LassoLars buys)."""
        return int(np.count_nonzero(self.weights))

    def _groups(self, atoms: Atoms) -> np.ndarray:
        species = self.descriptor.species_index(atoms)
        return np.zeros_like(species) if self.descriptor.centre_resolved else species

    # -- design matrix ------------------------------------------------------------------------------
    def design_matrix(self, frames: list[Atoms]):
        """Weighted rows of all frames: X (n_rows, n_groups·n_features), y (n_rows,), row kind
        (n_rows,) in {"energy", "forces", "stress"}, and the composition matrix (n_frames, n_species)
        per atom. Energy rows are per atom and already exclude the offsets (see module docstring).
        ``self.row_frames_`` is set to the frame index of every row."""
        blocks, targets, kinds, owners = [], [], [], []
        counts = np.zeros((len(frames), len(self.descriptor.species_z)))
        n_cols = self.n_groups * self.descriptor.n_features
        energy_rows = []
        for s, atoms in enumerate(frames):
            G, grads = self.descriptor.compute(atoms, gradients=True)
            group = self._groups(atoms)
            counts[s] = np.bincount(self.descriptor.species_index(atoms), minlength=counts.shape[1]) / len(atoms)
            row = np.zeros(n_cols)
            nf = self.descriptor.n_features
            for g in range(self.n_groups):
                row[g * nf:(g + 1) * nf] = G[group == g].sum(axis=0) / len(atoms)
            energy_rows.append(row)
            if self.sigma_forces is not None:
                blocks.append(force_design(grads.i, grads.j, grads.values, group, self.n_groups, len(atoms))
                              / self.sigma_forces)
                targets.append(np.asarray(atoms.arrays["forces"]).ravel() / self.sigma_forces)
                kinds += ["forces"] * 3 * len(atoms)
                owners += [s] * 3 * len(atoms)
            if self.sigma_stress is not None and "stress" in atoms.info and np.all(atoms.pbc):
                blocks.append(stress_design(grads.i, grads.vectors, grads.values, group, self.n_groups,
                                            atoms.get_volume()) / self.sigma_stress)
                targets.append(np.asarray(atoms.info["stress"]) / self.sigma_stress)
                kinds += ["stress"] * 6
                owners += [s] * 6
        energy_rows = np.array(energy_rows)
        energies = np.array([a.info["energy"] / len(a) for a in frames]) if self.sigma_energy is not None else None
        if energies is not None:
            # remove the offsets' part: project energies and rows off the composition space
            proj = counts @ np.linalg.pinv(counts)
            blocks.insert(0, (energy_rows - proj @ energy_rows) / self.sigma_energy)
            targets.insert(0, (energies - proj @ energies) / self.sigma_energy)
            kinds = ["energy"] * len(frames) + kinds
            owners = list(range(len(frames))) + owners
        self.row_frames_ = np.array(owners, dtype=np.int64)
        return np.vstack(blocks), np.concatenate(targets), np.array(kinds), counts, energy_rows

    # -- fitting --------------------------------------------------------------------------------------
    def fit(self, frames: list[Atoms]) -> "LinearPotential":
        """Fit on reference frames (``info["energy"]``, ``arrays["forces"]``, optional ``info["stress"]``)."""
        if not frames:
            raise ValueError("fit needs at least one reference frame")
        for atoms in frames:
            self.descriptor.species_index(atoms)
            if self.sigma_energy is not None and "energy" not in atoms.info:
                raise ValueError("a frame has no info['energy']; pass sigma_energy=None to fit forces only")
            if self.sigma_forces is not None and "forces" not in atoms.arrays:
                raise ValueError("a frame has no arrays['forces']; pass sigma_forces=None to fit energies only")
        X, y, kinds, counts, energy_rows = self.design_matrix(frames)
        scale = np.sqrt(np.mean(X ** 2, axis=0))
        # columns (nearly) empty in the training data get no weight: scaled to unit RMS, a column of
        # RMS ~3e-8 (a G2 centred at 0.75 Å when no bond is that short) received a weight of ~1e7 that
        # exploded on the first structure where it was not tiny
        nonzero = scale[scale > 0]
        active = scale > self.min_column_scale * (np.median(nonzero) if nonzero.size else 0.0)
        estimator = clone(self.estimator)
        params = estimator.get_params()
        if "fit_intercept" in params:
            estimator.set_params(fit_intercept=False)
        if "cv" in params and params["cv"] is not None and np.ndim(params["cv"]) == 0 \
                and isinstance(params["cv"], (int, np.integer)):
            estimator.set_params(cv=self._frame_folds(int(params["cv"]), len(frames)))
        elif "cv" in params and params["cv"] is None and type(estimator).__name__ != "RidgeCV":
            estimator.set_params(cv=self._frame_folds(5, len(frames)))  # sklearn's default 5 folds, by frame
        estimator.fit(X[:, active] / scale[active], y)
        coef = np.zeros(X.shape[1])
        coef[active] = np.ravel(estimator.coef_) / scale[active]
        self.weights = coef.reshape(self.n_groups, self.descriptor.n_features)
        # offsets: least squares of the per-atom energies on the composition (minimum norm)
        if all("energy" in a.info for a in frames):
            energies = np.array([a.info["energy"] / len(a) for a in frames])
            self.offsets = np.linalg.lstsq(counts, energies - energy_rows @ coef, rcond=None)[0]
        else:
            self.offsets = np.zeros(counts.shape[1])
        residual = X @ coef - y
        self.fit_info = {"rows": {k: int(np.sum(kinds == k)) for k in ("energy", "forces", "stress")},
                         "n_nonzero": self.n_nonzero, "n_weights": int(coef.size),
                         "n_empty_columns": int(np.sum(~active)),
                         "weighted_rmse": {k: float(np.sqrt(np.mean(residual[kinds == k] ** 2)))
                                           for k in ("energy", "forces", "stress") if np.any(kinds == k)}}
        if hasattr(estimator, "alpha_"):
            self.fit_info["alpha"] = float(estimator.alpha_)
        if hasattr(estimator, "alphas_") and hasattr(estimator, "mse_path_"):  # the cross-validation grid
            self.fit_info["alpha_grid"] = [float(estimator.alphas_[0]), float(estimator.alphas_[-1]), len(estimator.alphas_)]
        return self

    def _frame_folds(self, n_splits: int, n_frames: int) -> list:
        """K-fold (train_rows, test_rows) splits that keep every frame's rows together."""
        if n_frames < n_splits:
            raise ValueError(f"{n_splits}-fold cross-validation by frame needs at least {n_splits} frames, "
                             f"got {n_frames}; lower cv or use an estimator without cross-validation")
        fold_of_frame = np.random.default_rng(self.cv_seed).permutation(n_frames) % n_splits
        fold = fold_of_frame[self.row_frames_]
        rows = np.arange(len(fold))
        return [(rows[fold != k], rows[fold == k]) for k in range(n_splits)]

    # -- prediction -------------------------------------------------------------------------------
    def _predict(self, atoms: Atoms, neighbors) -> dict:
        # ∂E/∂G are the weights, known before G: one descriptor pass gives G, forces and virial
        dE_dG = self.weights[self._groups(atoms)]
        G, forces, virial = values_forces_and_virial(self.descriptor, atoms, dE_dG, neighbors)
        energies = np.einsum("if,if->i", dE_dG, G) + self.offsets[self.descriptor.species_index(atoms)]
        out = {"energy": float(energies.sum()), "energies": energies, "forces": forces}
        if np.all(atoms.pbc):
            out["stress"] = stress_from_virial(atoms, virial)
        return out

    # -- saving ---------------------------------------------------------------------------------------
    def _state(self):
        meta = {"descriptor": self.descriptor.to_dict(), "estimator": repr(self.estimator),
                "sigma": [self.sigma_energy, self.sigma_forces, self.sigma_stress], "cv_seed": self.cv_seed,
                "fit_info": json.loads(json.dumps(self.fit_info))}
        return meta, {"weights": self.weights, "offsets": self.offsets}

    @classmethod
    def _from_state(cls, meta, arrays):
        model = cls(descriptor_from_dict(meta["descriptor"]), None, *meta["sigma"], cv_seed=meta.get("cv_seed", 0))
        model.weights, model.offsets = arrays["weights"], arrays["offsets"]
        model.fit_info = meta["fit_info"]
        return model
