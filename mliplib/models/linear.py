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

Estimators that cross-validate (any with a ``cv`` parameter: ``RidgeCV``, ``LassoLarsCV``,
:class:`~mliplib.models.lasso_path.LassoLarsPathCV`, …) are cross-validated *by frame*: ``cv=k`` (or
``None``, meaning 5) becomes k folds in which the rows of one frame (its energy, forces, stress) always
fall together (frames dealt to folds at random, seed ``cv_seed``). Row-wise folds — including
``RidgeCV``'s efficient leave-one-row-out default — put a frame's other force components in the training
part and reward over-fitting. The default estimator is ``RidgeCV`` over α = 10⁻⁸…10² (21 values, in the
scaled problem) with 5 frame-wise folds.

:meth:`LinearPotential.fit_path` fits one model per α of a ``Ridge`` or ``LassoLars`` estimator from one
design matrix (one LARS path for all of them), for a cross-validation that scores every α outside the
estimator.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from numba import njit
from sklearn.base import clone
from sklearn.linear_model import LassoLars, Ridge, RidgeCV, lars_path

from mliplib.models.base import (
    Potential,
    check_array,
    check_array_names,
    check_labels,
    stress_from_virial,
    trained_species,
)
from mliplib.models.lasso_path import path_coefficients

DEFAULT_ALPHAS = np.logspace(-8, 2, 21)
DEFAULT_FOLDS = 5
ROW_KINDS = ("energy", "forces", "stress")


@njit(cache=True)
def force_design(i, j, values, group, n_groups, n_atoms):
    """Force rows of one structure: column (g, f) of row (a, k) is −∂(Σ_{i∈g} G_if)/∂r_ak.

    Parameters
    ----------
    i, j : numpy.ndarray
        (n_pairs,) int64 centre and neighbour indices.
    values : numpy.ndarray
        (n_pairs, n_features, 3) per-pair gradients ∂G_i/∂r_ij, [G]/Å.
    group : numpy.ndarray
        (n_atoms,) int64 weight group of every atom.
    n_groups, n_atoms : int

    Returns
    -------
    numpy.ndarray
        (3·n_atoms, n_groups·n_features), [G]/Å.
    """
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
    """Stress rows of one structure: column (g, f) is (1/V) Σ_{p: i_p∈g} sym(r_p ⊗ ∂G_{i_p f}/∂r_p).

    Parameters
    ----------
    i : numpy.ndarray
        (n_pairs,) int64 centre indices.
    vectors : numpy.ndarray
        (n_pairs, 3) pair vectors r_ij, Å.
    values : numpy.ndarray
        (n_pairs, n_features, 3) per-pair gradients, [G]/Å.
    group : numpy.ndarray
        (n_atoms,) int64 weight group of every atom.
    n_groups : int
    volume : float
        Cell volume, Å³.

    Returns
    -------
    numpy.ndarray
        (6, n_groups·n_features), Voigt rows xx yy zz yz xz xy, [G]/Å³; rows · weights = ASE stress.
    """
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


def frame_folds(n_splits: int, row_frames: np.ndarray, n_frames: int, seed: int) -> list:
    """K-fold cross-validation splits that keep every frame's rows together.

    Parameters
    ----------
    n_splits : int
        Number of folds, ≥ 2.
    row_frames : numpy.ndarray
        (n_rows,) index of the frame each design-matrix row belongs to.
    n_frames : int
        Number of frames (≥ n_splits).
    seed : int
        Seed of the random deal of frames to folds.

    Returns
    -------
    list of (numpy.ndarray, numpy.ndarray)
        (training rows, validation rows) of every fold, as scikit-learn's ``cv`` accepts them.
    """
    if n_frames < n_splits:
        raise ValueError(f"{n_splits}-fold cross-validation by frame needs at least {n_splits} frames, "
                         f"got {n_frames}; lower the estimator's cv or use one without cross-validation")
    fold_of_frame = np.random.default_rng(seed).permutation(n_frames) % n_splits
    fold = fold_of_frame[row_frames]
    rows = np.arange(len(fold))
    return [(rows[fold != k], rows[fold == k]) for k in range(n_splits)]


class LinearPotential(Potential):
    """Linear model on any mliplib descriptor (see the module docstring).

    Parameters
    ----------
    descriptor : mliplib.descriptors.base.Descriptor
        The features (Behler–Parrinello: one weight vector per centre element; PLIP: one shared vector).
    estimator : scikit-learn linear regressor, optional
        Fits the weights on the weighted design matrix, columns scaled to unit RMS. Its intercept is
        switched off (a constant added to every energy and force row has no physical meaning) and a
        ``cv`` parameter (``None`` or an int) is replaced by that many frame-wise folds (``None``: 5).
        None (default): ``RidgeCV(alphas=DEFAULT_ALPHAS)``, α by 5-fold cross-validation by frame. Only
        the estimators of :data:`mliplib.models.base.ESTIMATORS` can be saved.
    sigma_energy : float or None
        Target accuracy of the energies, eV/atom, weighting their rows; None leaves energies out of the
        weights' fit (the offsets still come from the energies when every frame has one).
    sigma_forces : float or None
        Target accuracy of the force components, eV/Å; None leaves forces out.
    sigma_stress : float or None
        Target accuracy of the stress components, eV/Å³ (frames periodic in 3 directions with
        ``info["stress"]``); None leaves stress out.
    cv_seed : int
        Seed of the random deal of frames to cross-validation folds.
    min_column_scale : float
        A column whose RMS is at most this fraction of the median column RMS gets weight 0: scaled to
        unit RMS, a column of RMS ~3e-8 (a G2 shell at 0.75 Å when no bond is that short) received a
        weight of ~1e7 that exploded on the first structure where it was not tiny.

    Attributes
    ----------
    weights_ : numpy.ndarray
        (n_groups, n_features) weights, eV per descriptor unit.
    offsets_ : numpy.ndarray
        (n_species,) energy per atom of each element of the descriptor, eV (0 for elements absent from
        the training frames, which ``predict`` refuses).
    fit_info_ : dict
        Rows per kind, number of non-zero and of all weights, empty columns, weighted RMSE per row kind
        and, for cross-validating estimators, the chosen ``alpha`` (and ``alpha_grid``: first, last,
        number of values).
    trained_species_ : list of str
        Elements present in the training frames.
    """

    kind = "LinearPotential"

    def __init__(self, descriptor, estimator=None, sigma_energy: float | None = 0.002,
                 sigma_forces: float | None = 0.1, sigma_stress: float | None = None, cv_seed: int = 0,
                 min_column_scale: float = 1e-4):
        self.descriptor = descriptor
        self.estimator = estimator
        self.sigma_energy = sigma_energy
        self.sigma_forces = sigma_forces
        self.sigma_stress = sigma_stress
        self.cv_seed = cv_seed
        self.min_column_scale = min_column_scale

    @property
    def n_groups(self) -> int:
        """Number of weight vectors: 1 for centre-resolved descriptors (PLIP), else one per element."""
        return 1 if self.descriptor.centre_resolved else len(self.descriptor.species_z)

    @property
    def n_nonzero(self) -> int:
        """Number of non-zero weights (the sparsity LassoLars buys)."""
        return int(np.count_nonzero(self.weights_))

    def _groups(self, species: np.ndarray) -> np.ndarray:
        return np.zeros_like(species) if self.descriptor.centre_resolved else species

    # -- checks -------------------------------------------------------------------------------------
    def _check_params(self) -> None:
        sigmas = {"sigma_energy": self.sigma_energy, "sigma_forces": self.sigma_forces,
                  "sigma_stress": self.sigma_stress}
        if all(s is None for s in sigmas.values()):
            raise ValueError("nothing to fit: give at least one of sigma_energy, sigma_forces, sigma_stress")
        for name, s in sigmas.items():
            if s is not None and not (isinstance(s, (int, float, np.number)) and np.isfinite(s) and s > 0):
                raise ValueError(f"{name} must be a positive finite accuracy or None, got {s!r}")
        if not (isinstance(self.min_column_scale, (int, float, np.number)) and 0 <= self.min_column_scale < 1):
            raise ValueError(f"min_column_scale must be a fraction in [0, 1), got {self.min_column_scale!r}")
        if self.estimator is not None:
            if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "get_params")):
                raise TypeError(f"estimator must be a scikit-learn regressor, got {type(self.estimator).__name__}")
            cv = self.estimator.get_params(deep=False).get("cv")
            if cv is not None and (isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2):
                raise ValueError(f"the estimator's cv must be None or a number of folds ≥ 2 (LinearPotential "
                                 f"builds the folds by frame), got {cv!r}")

    def check_frames(self, frames) -> None:
        """Raise ValueError naming the first frame this model cannot be fitted on.

        Parameters
        ----------
        frames : sequence of ase.Atoms
            Reference frames: elements the descriptor knows, finite positions and finite labels for the
            row kinds fitted (``info["energy"]`` eV, ``arrays["forces"]`` eV/Å, ``info["stress"]`` eV/Å³);
            energies present on every frame are checked too, since they fit the offsets.
        """
        energies = self.sigma_energy is not None or (len(frames) > 0 and all("energy" in a.info for a in frames))
        check_labels(frames, energy=energies, forces=self.sigma_forces is not None,
                     stress=self.sigma_stress is not None, descriptor=self.descriptor)

    # -- design matrix ------------------------------------------------------------------------------
    def design_matrix(self, frames: list[Atoms]):
        """The weighted rows of all frames (what ``fit`` hands the estimator, before column scaling).

        Parameters
        ----------
        frames : list of ase.Atoms
            Reference frames.

        Returns
        -------
        X : numpy.ndarray
            (n_rows, n_groups·n_features): energy rows (one per frame, per atom, projected off the
            composition space so that they exclude the offsets), then each frame's force rows
            (3·n_atoms) and stress rows (6), each divided by its ``sigma_*``.
        y : numpy.ndarray
            (n_rows,) targets, scaled alike.
        kinds : numpy.ndarray
            (n_rows,) "energy", "forces" or "stress".
        counts : numpy.ndarray
            (n_frames, n_species) composition, fraction of atoms of each element.
        energy_rows : numpy.ndarray
            (n_frames, n_groups·n_features) per-atom descriptor sums, unprojected and unweighted.
        """
        return self._rows(frames)[:5]

    def _rows(self, frames):
        blocks, targets, kinds, owners = [], [], [], []
        counts = np.zeros((len(frames), len(self.descriptor.species_z)))
        nf = self.descriptor.n_features
        energy_rows = np.zeros((len(frames), self.n_groups * nf))
        for s, atoms in enumerate(frames):
            G, grads = self.descriptor.compute(atoms, gradients=True)
            species = self.descriptor.species_index(atoms)
            group = self._groups(species)
            counts[s] = np.bincount(species, minlength=counts.shape[1]) / len(atoms)
            for g in range(self.n_groups):
                energy_rows[s, g * nf:(g + 1) * nf] = G[group == g].sum(axis=0) / len(atoms)
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
        if self.sigma_energy is not None:
            energies = np.array([a.info["energy"] / len(a) for a in frames])
            # remove the offsets' part: project energies and rows off the composition space
            proj = counts @ np.linalg.pinv(counts)
            blocks.insert(0, (energy_rows - proj @ energy_rows) / self.sigma_energy)
            targets.insert(0, (energies - proj @ energies) / self.sigma_energy)
            kinds = ["energy"] * len(frames) + kinds
            owners = list(range(len(frames))) + owners
        return (np.vstack(blocks), np.concatenate(targets), np.array(kinds), counts, energy_rows,
                np.array(owners, dtype=np.int64))

    # -- fitting --------------------------------------------------------------------------------------
    def fit(self, frames: list[Atoms]) -> LinearPotential:
        """Fit the weights and the per-element offsets.

        Parameters
        ----------
        frames : list of ase.Atoms
            Reference frames with ``info["energy"]`` (eV), ``arrays["forces"]`` (eV/Å) and optionally
            ``info["stress"]`` (eV/Å³), as the ``sigma_*`` parameters ask.

        Returns
        -------
        LinearPotential
            self, fitted.
        """
        self._check_params()
        self.check_frames(frames)
        rows = self._rows(frames)
        X, y, row_frames = rows[0], rows[1], rows[5]
        scale, active = self._column_scales(X)
        estimator = self._prepared_estimator(row_frames, len(frames))
        estimator.fit(X[:, active] / scale[active], y)
        return self._set_fitted(frames, rows, scale, active, np.ravel(estimator.coef_), estimator)

    def fit_path(self, frames: list[Atoms], alphas) -> list[LinearPotential]:
        """Fitted copies of this potential, one per regularisation strength α, from one design matrix.

        Copy ``k`` has the estimator with ``alpha = alphas[k]`` and the weights :meth:`fit` would give it
        (up to rounding): ``Ridge`` solves once per α; ``LassoLars`` follows one LARS path (its
        ``max_iter`` and ``eps``) down to the smallest α and reads it at every α (exact: the lasso path is
        piecewise linear in α). For scoring α outside the estimator (a cross-validation by frame with any
        score) at the cost of one fit.

        Parameters
        ----------
        frames : list of ase.Atoms
            Reference frames, as for :meth:`fit`.
        alphas : array-like
            (n_alphas,) positive regularisation strengths, in the scaled problem (columns of unit RMS).

        Returns
        -------
        list of LinearPotential
            Fitted, in the order of ``alphas``.
        """
        self._check_params()
        if type(self.estimator) not in (Ridge, LassoLars):
            raise TypeError(f"fit_path needs a Ridge or LassoLars estimator (one fixed α each), got "
                            f"{type(self.estimator).__name__}; use fit for others")
        alphas = np.asarray(alphas, dtype=float)
        if alphas.ndim != 1 or alphas.size == 0 or not np.all(np.isfinite(alphas) & (alphas > 0)):
            raise ValueError(f"alphas must be a non-empty 1-D array of positive numbers, got {alphas!r}")
        self.check_frames(frames)
        rows = self._rows(frames)
        X, y, row_frames = rows[0], rows[1], rows[5]
        scale, active = self._column_scales(X)
        scaled = X[:, active] / scale[active]
        if isinstance(self.estimator, LassoLars):
            estimator = self._prepared_estimator(row_frames, len(frames))
            path_alphas, _, coefs = lars_path(scaled, y, method="lasso", alpha_min=float(alphas.min()),
                                              max_iter=estimator.max_iter, eps=estimator.eps)
            on_path = path_coefficients(path_alphas, coefs, alphas)
        models = []
        for k, alpha in enumerate(alphas):
            model = clone(self).set_params(estimator=clone(self.estimator).set_params(alpha=float(alpha)))
            estimator = model._prepared_estimator(row_frames, len(frames))
            if isinstance(self.estimator, LassoLars):
                coef = on_path[:, k]
            else:
                coef = np.ravel(estimator.fit(scaled, y).coef_)
            models.append(model._set_fitted(frames, rows, scale, active, coef, estimator))
        return models

    def _column_scales(self, X: np.ndarray):
        """RMS of every design column and the columns fitted (RMS above ``min_column_scale`` × median)."""
        scale = np.sqrt(np.mean(X ** 2, axis=0))
        nonzero = scale[scale > 0]
        active = scale > self.min_column_scale * (np.median(nonzero) if nonzero.size else 0.0)
        return scale, active

    def _set_fitted(self, frames, rows, scale, active, scaled_coef, estimator) -> LinearPotential:
        """Set the fitted attributes from the weights of the scaled problem (active columns)."""
        X, y, kinds, counts, energy_rows, _ = rows
        coef = np.zeros(X.shape[1])
        coef[active] = scaled_coef / scale[active]
        # offsets: least squares of the per-atom energies on the composition (minimum norm)
        if all("energy" in a.info for a in frames):
            energies = np.array([a.info["energy"] / len(a) for a in frames])
            offsets = np.linalg.lstsq(counts, energies - energy_rows @ coef, rcond=None)[0]
        else:
            offsets = np.zeros(counts.shape[1])
        residual = X @ coef - y
        fit_info = {"rows": {k: int(np.sum(kinds == k)) for k in ROW_KINDS},
                    "n_nonzero": int(np.count_nonzero(coef)), "n_weights": int(coef.size),
                    "n_empty_columns": int(np.sum(~active)),
                    "weighted_rmse": {k: float(np.sqrt(np.mean(residual[kinds == k] ** 2)))
                                      for k in ROW_KINDS if np.any(kinds == k)}}
        if hasattr(estimator, "alpha_"):
            fit_info["alpha"] = float(estimator.alpha_)
        if hasattr(estimator, "alphas_") and hasattr(estimator, "mse_path_"):  # the cross-validation grid
            fit_info["alpha_grid"] = [float(estimator.alphas_[0]), float(estimator.alphas_[-1]),
                                      len(estimator.alphas_)]
        self.weights_ = coef.reshape(self.n_groups, self.descriptor.n_features)
        self.offsets_ = offsets
        self.fit_info_ = fit_info
        self.trained_species_ = trained_species(frames)
        return self

    def _prepared_estimator(self, row_frames: np.ndarray, n_frames: int):
        """A fresh copy of the estimator: no intercept, frame-wise folds for a ``cv`` parameter."""
        estimator = RidgeCV(alphas=DEFAULT_ALPHAS) if self.estimator is None else clone(self.estimator)
        params = estimator.get_params(deep=False)
        if "fit_intercept" in params:
            estimator.set_params(fit_intercept=False)
        if "cv" in params:
            n_splits = DEFAULT_FOLDS if params["cv"] is None else int(params["cv"])
            estimator.set_params(cv=frame_folds(n_splits, row_frames, n_frames, self.cv_seed))
        return estimator

    # -- prediction -------------------------------------------------------------------------------
    def _predict(self, atoms: Atoms, neighbors) -> dict:
        # ∂E/∂G are the weights, known before G: one descriptor pass gives G, forces and virial
        species = self.descriptor.species_index(atoms)
        dE_dG = self.weights_[self._groups(species)]
        G, forces, virial = self.descriptor.values_forces_and_virial(atoms, dE_dG, neighbors=neighbors)
        energies = np.einsum("if,if->i", dE_dG, G) + self.offsets_[species]
        out = {"energy": float(energies.sum()), "energies": energies, "forces": forces}
        if np.all(atoms.pbc):
            out["stress"] = stress_from_virial(atoms, virial)
        return out

    # -- state ------------------------------------------------------------------------------------------
    def _fitted_state(self):
        return {"fit_info": self.fit_info_}, {"weights": self.weights_, "offsets": self.offsets_}

    def _restore_fitted(self, fitted, arrays):
        check_array_names(arrays, {"weights", "offsets"})
        self.weights_ = check_array(arrays, "weights", (self.n_groups, self.descriptor.n_features))
        self.offsets_ = check_array(arrays, "offsets", (len(self.descriptor.species_z),))
        if not isinstance(fitted.get("fit_info"), dict):
            raise TypeError("fitted metadata has no fit_info object")
        self.fit_info_ = fitted["fit_info"]
