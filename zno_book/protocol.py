"""One training protocol for the three kinds: the same frame-wise k-fold cross-validation and the same score.

Folds. The training frames (:func:`zno_book.datasets.load_zno` ``("train")``) are dealt to :data:`N_FOLDS`
folds by their task names: the sorted names, permuted with :data:`FOLD_SEED`, go to fold ``rank % k``
(:func:`fold_assignment`), so every kind sees the same folds whatever the order it reads the frames in.
The isolated atoms (:data:`ALWAYS_TRAIN`) are in every training part and never validated: they alone fix
the energy constants, and a model trained without them is off by eV on them and by nothing elsewhere.

Score. For fold k, the model trained on the other folds predicts the frames of fold k, and
``score = (RMSE_E/σ_E)² + (RMSE_F/σ_F)² + (RMSE_S/σ_S)²`` with fixed reference accuracies
:data:`REFERENCE` (σ_E = 2 meV/atom, σ_F = 0.1 eV/Å, σ_S = 0.5 GPa; RMSE_E of the energy per atom over
frames, RMSE_F over force components, RMSE_S over the Voigt components of the periodic frames). The CV
score of a configuration is the mean over the folds. The references are accuracies a useful ZnO potential
needs, fixed before the search (not tuned on its results): σ_E = 2 meV/atom is about a quarter of the
smallest polymorph energy difference of the data (zinc blende − wurtzite at the EOS minima, 7.4 meV/atom)
and v1's σ_E of linear-BP and the NNP (PLIP's was 10 meV/atom); σ_F = 0.1 eV/Å is v1's σ_F, the usual force
target; σ_S = 0.5 GPa is the stress that an energy error of 2 meV/atom varying across ±5 % strain of a
12.4 Å³/atom crystal makes (2 meV / (0.05 · 12.4 Å³) ≈ 0.5 GPa; 0.4 % of wurtzite's bulk modulus of 130 GPa,
25 × the DFT stress convergence of 0.02 GPa), so that no term dominates by the choice of units. The score does
not depend on the hyper-parameters compared (the training loss weights are hyper-parameters; the score's
references are not).

Hyper-parameters (:func:`search`), the selection rule the same for all kinds (the smallest CV score):

- the loss weights :data:`LOSS_WEIGHTS` (σ_E, σ_F, σ_S of the training loss, or of the design-matrix
  rows; σ_S = None leaves stresses out), the same choices for all three kinds;
- linear-BP: the ridge α on :data:`RIDGE_ALPHAS`; PLIP: the LassoLars α on :data:`LASSO_ALPHAS` (one LARS
  path per fold, :meth:`mliplib.models.LinearPotential.fit_path`). The one-standard-error rule of v1's PLIP
  (the sparsest model within one SE of the minimum) is available as ``rule="1se"`` for the linear kinds
  but not used: the NNP configurations have no simplicity order to apply it to, and one rule for all;
- NNP: in three greedy stages, each starting from the previous winner (:data:`NNP_STAGES`): the loss
  weights; the architecture (:data:`ARCHITECTURES`); the weight decay (:data:`WEIGHT_DECAYS`) and early
  stopping on or off. Early stopping holds out :data:`NNP_BASE` ``validation_fraction`` of the distinct
  training frames of the fold (seeded; isolated atoms never held out) and keeps the best epoch.

Every (kind, configuration, fold) is one task of :mod:`zno_book.driver` (the linear kinds: one task per
loss weights and fold scores the whole α grid), stored in a :class:`~zno_book.driver.FolderStore` under
``artefacts/v2/protocol``; a rerun skips finished tasks, and the later NNP stages are derived from the
stored results of the earlier ones. :func:`write_protocol` writes the CV table and the chosen
hyper-parameters to ``models/v2/protocol.json``; :func:`build` makes a model of a kind from them.

Command line::

    python -m zno_book.protocol search --executor local --workers 2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms
from ase.units import GPa
from sklearn.linear_model import LassoLars, Ridge

from mliplib.descriptors import PLIP, BehlerParrinello
from mliplib.models import LinearPotential, NeuralNetworkPotential
from zno_book import executors
from zno_book.constants import MODEL_KINDS
from zno_book.datasets import load_zno
from zno_book.driver import FolderStore, Task, run, write_atomic
from zno_book.paths import book_root

KINDS = MODEL_KINDS
VERSION = "v2"
#: Folds of the cross-validation (the same for every kind).
N_FOLDS = 5
#: Seed of the permutation of the sorted task names that assigns the folds.
FOLD_SEED = 0
#: config_type of frames in every training part and never validated (they fix the energy constants)
ALWAYS_TRAIN = ("isolated_atom",)
#: Reference accuracies of the score: eV/atom, eV/Å, GPa.
REFERENCE = {"energy": 0.002, "forces": 0.1, "stress": 0.5}
#: Loss weights (σ_E eV/atom, σ_F eV/Å, σ_S GPa or None): the same choices for every kind.
LOSS_WEIGHTS = {
    "E2meV_F0.1_Snone": (0.002, 0.1, None),
    "E2meV_F0.1_S0.5GPa": (0.002, 0.1, 0.5),
    "E2meV_F0.1_S2GPa": (0.002, 0.1, 2.0),
    "E10meV_F0.1_S0.5GPa": (0.01, 0.1, 0.5),
}
#: Ridge α (scaled problem: design columns of unit RMS), as v1's RidgeCV grid.
RIDGE_ALPHAS = np.logspace(-8, 2, 21)
#: LassoLars α (scaled problem), 4 per decade (the PLIP path ends near 3e-6 on the full data: "residues
#: small"; below its end a model is the path's last one).
LASSO_ALPHAS = np.logspace(1, -7, 33)
#: LassoLars LARS step limit (the PLIP path needs thousands of steps; scikit-learn's default is 500).
LASSO_MAX_ITER = 100_000
#: The NNP's fixed settings and the centre of the search.
NNP_BASE = {"hidden": [25, 25], "activation": "tanh", "optimizer": "lbfgs", "lbfgs_iterations": 20, "epochs": 150,
            "validation_fraction": 0.1, "patience": 20, "weight_decay": 0.0, "min_input_std": 1e-3,
            "loss_weights": "E2meV_F0.1_S0.5GPa", "early_stopping": True}
#: Hidden layers of the NNP's architecture stage.
ARCHITECTURES = ([16, 16], [25, 25], [40, 40], [25, 25, 25])
#: L2 weight decays of the NNP's regularisation stage.
WEIGHT_DECAYS = (0.0, 1e-4, 1e-3, 1e-2)
#: The NNP's greedy stages: name → the variations of the previous winner.
NNP_STAGES = {
    "loss": [{"loss_weights": key} for key in LOSS_WEIGHTS],
    "architecture": [{"hidden": hidden} for hidden in ARCHITECTURES],
    "regularisation": [{"weight_decay": wd} for wd in WEIGHT_DECAYS] + [{"early_stopping": False}],
}
#: Estimated one-core seconds of a task (the driver's ETA only).
COST = {"linear_bp": 60.0, "plip": 400.0, "nnp": 250.0}


def protocol_root(root: str | Path | None = None) -> Path:
    """The search's task store, ``<root>/artefacts/v2/protocol``.

    Parameters
    ----------
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    Path
        The folder of the :class:`~zno_book.driver.FolderStore` of the CV tasks (it need not exist yet).
    """
    return book_root(root) / "artefacts" / VERSION / "protocol"


def protocol_path(root: str | Path | None = None) -> Path:
    """The chosen hyper-parameters and the CV table, ``<root>/models/v2/protocol.json``.

    Parameters
    ----------
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    Path
        Written by :func:`write_protocol`, read by :func:`read_protocol`.
    """
    return book_root(root) / "models" / VERSION / "protocol.json"


# --------------------------------------------------------------------------------------------- folds
def fold_assignment(frames: list[Atoms], n_folds: int = N_FOLDS, seed: int = FOLD_SEED,
                    always_train: tuple[str, ...] = ALWAYS_TRAIN) -> np.ndarray:
    """The fold of every frame, from the task names alone (the same for every kind and frame order).

    Parameters
    ----------
    frames : list of ase.Atoms
        Frames with distinct ``info["task"]``.
    n_folds : int
        Number of folds (≥ 2, ≤ the number of frames that can be validated).
    seed : int
        Seed of the permutation of the sorted task names.
    always_train : tuple of str
        ``config_type`` of frames in no fold.

    Returns
    -------
    numpy.ndarray
        (n_frames,) int: the fold 0…n_folds−1, or −1 for a frame always trained on.
    """
    names = [atoms.info.get("task") for atoms in frames]
    if None in names or len(set(names)) != len(names):
        raise ValueError("fold_assignment needs a distinct info['task'] on every frame (the folds are dealt by "
                         "name); label the frames or deduplicate them")
    validated = sorted(name for name, atoms in zip(names, frames) if atoms.info.get("config_type") not in always_train)
    if not 2 <= n_folds <= len(validated):
        raise ValueError(f"{n_folds} folds need 2 ≤ n_folds ≤ {len(validated)} (frames that can be validated)")
    order = np.random.default_rng(seed).permutation(len(validated))
    fold_of = {validated[k]: rank % n_folds for rank, k in enumerate(order)}
    return np.array([fold_of.get(name, -1) for name in names])


def split(frames: list[Atoms], fold: int, n_folds: int = N_FOLDS, seed: int = FOLD_SEED) -> tuple[list, list]:
    """(training, validation) frames of one fold of :func:`fold_assignment`, in the order of ``frames``.

    Parameters
    ----------
    frames : list of ase.Atoms
        All frames.
    fold : int
        The validation fold, 0…n_folds−1.
    n_folds, seed : int
        As for :func:`fold_assignment`.

    Returns
    -------
    train, validation : list of ase.Atoms
    """
    folds = fold_assignment(frames, n_folds, seed)
    if not 0 <= fold < n_folds:
        raise ValueError(f"fold must be in 0…{n_folds - 1}, got {fold}")
    return ([a for a, f in zip(frames, folds) if f != fold], [a for a, f in zip(frames, folds) if f == fold])


# --------------------------------------------------------------------------------------------- errors
def frame_errors(model, frames: list[Atoms]) -> dict:
    """Squared errors of a model per frame (what RMSEs over any subset of frames, or bootstraps, need).

    Parameters
    ----------
    model : mliplib.models.Potential
        A fitted potential.
    frames : list of ase.Atoms
        Reference frames (``info["energy"]`` eV, ``arrays["forces"]`` eV/Å, ``info["stress"]`` eV/Å³ on
        periodic frames).

    Returns
    -------
    dict of numpy.ndarray, each (n_frames,)
        ``energy``: (ΔE/N)² (eV/atom)²; ``forces``: Σ ΔF² over the frame's components (eV/Å)² and
        ``n_forces`` their number; ``stress``: Σ ΔS² over the 6 Voigt components (GPa²) and ``n_stress``
        (6, or 0 for a frame without a stress label or a cell not periodic in 3 directions).
    """
    out = {key: np.zeros(len(frames)) for key in ("energy", "forces", "n_forces", "stress", "n_stress")}
    for k, atoms in enumerate(frames):
        prediction = model.predict(atoms)
        out["energy"][k] = ((prediction["energy"] - atoms.info["energy"]) / len(atoms)) ** 2
        out["forces"][k] = np.sum((prediction["forces"] - atoms.arrays["forces"]) ** 2)
        out["n_forces"][k] = 3 * len(atoms)
        if "stress" in atoms.info and "stress" in prediction:
            out["stress"][k] = np.sum(((prediction["stress"] - atoms.info["stress"]) / GPa) ** 2)
            out["n_stress"][k] = 6
    return out


def rmse(errors: dict, rows=None) -> dict:
    """RMSEs from :func:`frame_errors` over all frames or the given ones (repeats allowed: a bootstrap).

    Parameters
    ----------
    errors : dict
        Output of :func:`frame_errors` (arrays over frames; leading axes allowed, frames last).
    rows : array-like of int, optional
        Frame indices (default: all).

    Returns
    -------
    dict
        ``energy`` (eV/atom), ``forces`` (eV/Å), ``stress`` (GPa; NaN without stress labels).
    """
    e = {k: np.asarray(v) if rows is None else np.asarray(v)[..., rows] for k, v in errors.items()}
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"energy": np.sqrt(np.mean(e["energy"], axis=-1)),
                "forces": np.sqrt(np.sum(e["forces"], axis=-1) / np.sum(e["n_forces"], axis=-1)),
                "stress": np.sqrt(np.sum(e["stress"], axis=-1) / np.sum(e["n_stress"], axis=-1))}


def score(errors: dict, reference: dict = REFERENCE):
    """The protocol's score, (RMSE_E/σ_E)² + (RMSE_F/σ_F)² + (RMSE_S/σ_S)² (see the module docstring).

    Parameters
    ----------
    errors : dict
        RMSEs (:func:`rmse`): ``energy`` eV/atom, ``forces`` eV/Å, ``stress`` GPa (floats or arrays).
    reference : dict
        The reference accuracies, same keys and units.

    Returns
    -------
    float or numpy.ndarray
        Dimensionless.
    """
    return sum((np.asarray(errors[key]) / reference[key]) ** 2 for key in ("energy", "forces", "stress"))


# --------------------------------------------------------------------------------------------- models
def loss_weights(key: str) -> dict:
    """The ``sigma_energy`` (eV/atom), ``sigma_forces`` (eV/Å), ``sigma_stress`` (eV/Å³ or None) of a
    :data:`LOSS_WEIGHTS` entry, as the potentials take them.

    Parameters
    ----------
    key : str
        A key of :data:`LOSS_WEIGHTS`, e.g. ``"E2meV_F0.1_S0.5GPa"``.

    Returns
    -------
    dict
        ``sigma_energy`` (eV/atom), ``sigma_forces`` (eV/Å) and ``sigma_stress`` (the entry's GPa converted
        to eV/Å³, or None: stresses left out of the loss).

    Raises
    ------
    ValueError
        If ``key`` is not a key of :data:`LOSS_WEIGHTS`.
    """
    if key not in LOSS_WEIGHTS:
        raise ValueError(f"unknown loss weights {key!r}; choose one of {list(LOSS_WEIGHTS)}")
    energy, forces, stress = LOSS_WEIGHTS[key]
    return {"sigma_energy": energy, "sigma_forces": forces, "sigma_stress": None if stress is None else stress * GPa}


def build(kind: str, hyper: dict, seed: int = 0):
    """An unfitted model of ``kind`` with the protocol's hyper-parameters.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    hyper : dict
        ``loss_weights`` (a key of :data:`LOSS_WEIGHTS`) and, for the linear kinds, ``alpha``; for the NNP
        the keys of :data:`NNP_BASE` (``early_stopping`` False sets ``validation_fraction`` to 0).
    seed : int
        The NNP's seed (initial weights, validation split, batches).

    Returns
    -------
    mliplib.models.Potential
    """
    sigmas = loss_weights(hyper["loss_weights"])
    if kind == "linear_bp":
        return LinearPotential(BehlerParrinello.default_zno(), Ridge(alpha=hyper.get("alpha", 1.0)), **sigmas)
    if kind == "plip":
        return LinearPotential(PLIP.default_zno(), LassoLars(alpha=hyper.get("alpha", 1.0), max_iter=LASSO_MAX_ITER),
                               **sigmas)
    if kind != "nnp":
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    keys = ("activation", "optimizer", "lbfgs_iterations", "epochs", "patience", "weight_decay", "min_input_std")
    return NeuralNetworkPotential(BehlerParrinello.default_zno(), hidden=tuple(hyper["hidden"]), seed=seed,
                                  validation_fraction=hyper["validation_fraction"] if hyper["early_stopping"] else 0.0,
                                  always_train=ALWAYS_TRAIN, threads=1, progress=False,
                                  **{k: hyper[k] for k in keys}, **sigmas)


def alpha_grid(kind: str) -> np.ndarray:
    """The α values searched for a linear kind (:data:`RIDGE_ALPHAS` or :data:`LASSO_ALPHAS`).

    Parameters
    ----------
    kind : {"linear_bp", "plip"}
        The linear kind (any other raises KeyError).

    Returns
    -------
    numpy.ndarray
        (n_alphas,) α of the scaled problem: the ridge grid for linear-BP, the LassoLars grid (descending)
        for PLIP.
    """
    return {"linear_bp": RIDGE_ALPHAS, "plip": LASSO_ALPHAS}[kind]


# ---------------------------------------------------------------------------------------------- tasks
def cv_linear(kind: str, weights: str, fold: int, data_root: str | None = None) -> dict:
    """One fold of a linear kind for one choice of loss weights: every α of :func:`alpha_grid` scored.

    Parameters
    ----------
    kind : str
        "linear_bp" or "plip".
    weights : str
        A key of :data:`LOSS_WEIGHTS`.
    fold : int
        The validation fold.
    data_root : str, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    dict
        ``alphas`` (n_alphas,), ``rmse_energy`` (eV/atom), ``rmse_forces`` (eV/Å), ``rmse_stress`` (GPa),
        ``score``, ``n_nonzero`` (each (n_alphas,)), ``n_train``, ``n_validation``, ``seconds`` (wall) and
        ``cpu_seconds``.
    """
    start, cpu = time.perf_counter(), time.process_time()
    train, validation = split(load_zno("train", data_root), fold)
    models = build(kind, {"loss_weights": weights}).fit_path(train, alpha_grid(kind))
    errors = [rmse(frame_errors(model, validation)) for model in models]
    table = {f"rmse_{key}": np.array([e[key] for e in errors]) for key in ("energy", "forces", "stress")}
    return {"alphas": alpha_grid(kind), **table,
            "score": score({key: table[f"rmse_{key}"] for key in ("energy", "forces", "stress")}),
            "n_nonzero": np.array([model.n_nonzero for model in models]), "n_train": len(train),
            "n_validation": len(validation), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


def cv_nnp(config: dict, fold: int, data_root: str | None = None) -> dict:
    """One fold of one NNP configuration.

    Parameters
    ----------
    config : dict
        The hyper-parameters (:data:`NNP_BASE` keys).
    fold : int
        The validation fold.
    data_root : str, optional
        The data folder.

    Returns
    -------
    dict
        ``rmse_energy`` (eV/atom), ``rmse_forces`` (eV/Å), ``rmse_stress`` (GPa), ``score``, ``epochs_run``,
        ``best_epoch``, ``n_train``, ``n_validation``, ``seconds``, ``cpu_seconds``.
    """
    start, cpu = time.perf_counter(), time.process_time()
    train, validation = split(load_zno("train", data_root), fold)
    model = build("nnp", config, seed=fold).fit(train)
    errors = rmse(frame_errors(model, validation))
    monitor = "val_loss" if config["early_stopping"] else "loss"
    best = int(np.argmin([record[monitor] for record in model.history_]))
    return {**{f"rmse_{key}": float(value) for key, value in errors.items()}, "score": float(score(errors)),
            "epochs_run": len(model.history_), "best_epoch": best, "n_train": len(train),
            "n_validation": len(validation), "seconds": time.perf_counter() - start,
            "cpu_seconds": time.process_time() - cpu}


def config_id(config: dict) -> str:
    """A readable, unique name of an NNP configuration (the task names' middle part).

    Parameters
    ----------
    config : dict
        NNP hyper-parameters with at least ``hidden`` (list of int), ``loss_weights`` (a key of
        :data:`LOSS_WEIGHTS`), ``weight_decay`` (float) and ``early_stopping`` (bool).

    Returns
    -------
    str
        ``h<hidden joined by ->_<loss_weights>_wd<weight_decay>_<es|noes>``, e.g.
        ``h25-25_E2meV_F0.1_S0.5GPa_wd0_es``.
    """
    hidden = "-".join(str(h) for h in config["hidden"])
    return (f"h{hidden}_{config['loss_weights']}_wd{config['weight_decay']:g}_"
            f"{'es' if config['early_stopping'] else 'noes'}")


def linear_tasks(kinds=("linear_bp", "plip"), data_root: str | None = None) -> list[Task]:
    """One task per (linear kind, loss weights, fold): ``<kind>/<weights>/fold<k>``.

    Each task runs :func:`cv_linear` (the whole α grid of its fold).

    Parameters
    ----------
    kinds : sequence of str
        Linear kinds, "linear_bp" and/or "plip".
    data_root : str, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    list of zno_book.driver.Task
        Kinds × :data:`LOSS_WEIGHTS` × :data:`N_FOLDS` tasks, each with the kind's estimated cost (one-core s).
    """
    return [Task(f"{kind}/{weights}/fold{fold}", "zno_book.protocol:cv_linear",
                 {"kind": kind, "weights": weights, "fold": fold, "data_root": data_root}, cost=COST[kind])
            for kind in kinds for weights in LOSS_WEIGHTS for fold in range(N_FOLDS)]


def nnp_tasks(configs: list[dict], data_root: str | None = None) -> list[Task]:
    """One task per (NNP configuration, fold): ``nnp/<config_id>/fold<k>``.

    Each task runs :func:`cv_nnp`.

    Parameters
    ----------
    configs : list of dict
        NNP configurations (:data:`NNP_BASE` keys), named by :func:`config_id`.
    data_root : str, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    list of zno_book.driver.Task
        len(configs) × :data:`N_FOLDS` tasks.
    """
    return [Task(f"nnp/{config_id(config)}/fold{fold}", "zno_book.protocol:cv_nnp",
                 {"config": config, "fold": fold, "data_root": data_root}, cost=COST["nnp"])
            for config in configs for fold in range(N_FOLDS)]


def stage_configs(stage: str, centre: dict) -> list[dict]:
    """The NNP configurations of a stage of :data:`NNP_STAGES` around ``centre`` (the previous winner).

    Parameters
    ----------
    stage : str
        A key of :data:`NNP_STAGES`: "loss", "architecture" or "regularisation".
    centre : dict
        The configuration the stage varies (:data:`NNP_BASE` for the first stage).

    Returns
    -------
    list of dict
        ``centre`` updated with each of the stage's variations, in the order of :data:`NNP_STAGES`.
    """
    return [{**centre, **change} for change in NNP_STAGES[stage]]


# ---------------------------------------------------------------------------------------------- table
def cv_table(store: FolderStore) -> pd.DataFrame:
    """Every stored fold result as one row per (kind, configuration, fold).

    Parameters
    ----------
    store : FolderStore
        The search's store.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind``, ``config`` (loss weights for the linear kinds, :func:`config_id` for the NNP),
        ``alpha`` (linear kinds; NaN for the NNP), ``fold``, ``rmse_energy``, ``rmse_forces``,
        ``rmse_stress``, ``score``, ``seconds``, ``cpu_seconds`` (the linear kinds' task times are shared
        by the α of a task: given once, on its first α).
    """
    rows = []
    columns = ["kind", "config", "alpha", "fold", "rmse_energy", "rmse_forces", "rmse_stress", "score", "n_nonzero",
               "epochs_run", "best_epoch", "seconds", "cpu_seconds"]
    for name in sorted(store.done()):
        kind, config, fold = name.split("/")
        result = store.load(name)
        fold = int(fold.removeprefix("fold"))
        if kind == "nnp":
            rows.append({"kind": kind, "config": config, "alpha": np.nan, "fold": fold,
                         **{k: result[k] for k in ("rmse_energy", "rmse_forces", "rmse_stress", "score", "seconds",
                                                   "cpu_seconds", "epochs_run", "best_epoch")}})
            continue
        for a, alpha in enumerate(np.atleast_1d(result["alphas"])):
            rows.append({"kind": kind, "config": config, "alpha": float(alpha), "fold": fold,
                         **{k: float(np.atleast_1d(result[k])[a]) for k in ("rmse_energy", "rmse_forces",
                                                                             "rmse_stress", "score")},
                         "n_nonzero": int(np.atleast_1d(result["n_nonzero"])[a]),
                         "seconds": result["seconds"] if a == 0 else 0.0,
                         "cpu_seconds": result["cpu_seconds"] if a == 0 else 0.0})
    return pd.DataFrame(rows, columns=columns)


def summary(table: pd.DataFrame, n_folds: int = N_FOLDS) -> pd.DataFrame:
    """Mean and standard error over the folds of every (kind, configuration, α) with all folds done.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`cv_table`.
    n_folds : int
        Folds a configuration needs to be listed.

    Returns
    -------
    pandas.DataFrame
        One row per (kind, config, alpha): ``score`` (mean), ``score_se``, the mean RMSEs, ``n_folds``,
        ``cpu_seconds`` (sum over folds), sorted by kind and score.
    """
    keys = ["kind", "config", "alpha"]
    grouped = table.fillna({"alpha": -1.0}).groupby(keys)
    out = grouped.agg(score=("score", "mean"), score_se=("score", "sem"), rmse_energy=("rmse_energy", "mean"),
                      rmse_forces=("rmse_forces", "mean"), rmse_stress=("rmse_stress", "mean"),
                      n_folds=("fold", "nunique"), cpu_seconds=("cpu_seconds", "sum")).reset_index()
    out["alpha"] = out["alpha"].where(out["alpha"] >= 0)
    return out[out["n_folds"] == n_folds].sort_values(["kind", "score"]).reset_index(drop=True)


def best(summary_table: pd.DataFrame, kind: str, configs=None, rule: str = "min") -> pd.Series:
    """The chosen row of a kind: the smallest mean CV score (``rule="min"``), or for the linear kinds
    with ``rule="1se"`` the largest α within one standard error of it (same loss weights).

    Parameters
    ----------
    summary_table : pandas.DataFrame
        :func:`summary`.
    kind : str
        One of :data:`KINDS`.
    configs : collection of str, optional
        Restrict to these configurations (an NNP stage).
    rule : {"min", "1se"}

    Returns
    -------
    pandas.Series
        The chosen row.
    """
    rows = summary_table[summary_table["kind"] == kind]
    if configs is not None:
        rows = rows[rows["config"].isin(list(configs))]
    if rows.empty:
        which = "" if configs is None else f" for {configs}"
        raise ValueError(f"no complete {kind} configuration in the CV table{which}; run the search first "
                         "(python -m zno_book.protocol search)")
    chosen = rows.loc[rows["score"].idxmin()]
    if rule == "1se":
        if kind == "nnp":
            raise ValueError("the 1-SE rule needs an order of simplicity (α); the NNP configurations have none")
        near = rows[(rows["config"] == chosen["config"]) & (rows["score"] <= chosen["score"] + chosen["score_se"])]
        chosen = near.loc[near["alpha"].idxmax()]
    elif rule != "min":
        raise ValueError(f"rule must be 'min' or '1se', got {rule!r}")
    return chosen


def nnp_stages(means: pd.DataFrame) -> list[dict]:
    """Walk the NNP's greedy stages through the CV results so far.

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`summary`.

    Returns
    -------
    list of dict
        One entry per stage reached: ``stage``, ``configs`` (the stage's configurations, :func:`config_id`
        → hyper-parameters), ``complete`` (every configuration has all folds) and, when complete,
        ``winner`` (its :func:`config_id`) and ``hyperparameters``; the walk stops at the first
        incomplete stage.
    """
    centre, stages = dict(NNP_BASE), []
    done = set(means.loc[means["kind"] == "nnp", "config"])
    for stage in NNP_STAGES:
        configs = {config_id(c): c for c in stage_configs(stage, centre)}
        entry = {"stage": stage, "configs": configs, "complete": set(configs) <= done}
        stages.append(entry)
        if not entry["complete"]:
            break
        entry["winner"] = best(means, "nnp", configs)["config"]
        centre = entry["hyperparameters"] = configs[entry["winner"]]
    return stages


# ----------------------------------------------------------------------------------------------- run
def search(executor: str = "local", workers: int = 2, address: str | None = None, kinds=KINDS,
           root: str | Path | None = None, data_root: str | None = None, log=print) -> dict:
    """Run the cross-validation of every kind (resumable) and write ``models/v2/protocol.json``.

    The linear kinds' tasks run first, then the NNP's stages, each from the winner of the previous one
    (read from the store); ``protocol.json`` is rewritten after each of these steps.

    Parameters
    ----------
    executor : {"serial", "local", "dask"}
        Where the tasks run (:func:`zno_book.executors.factory`).
    workers : int
        Parallel workers (one thread each).
    address : str, optional
        A running Dask scheduler.
    kinds : sequence of str
        The kinds to search.
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).
    data_root : str, optional
        The data folder (default :func:`zno_book.paths.data_dir`).
    log : callable
        Receives progress lines.

    Returns
    -------
    dict
        The protocol (as written), or ``{"incomplete": [failed task names]}`` if tasks failed.
    """
    store = FolderStore(protocol_root(root))
    make = executors.factory(executor, 1 if executor == "serial" else workers, address)
    linear = [kind for kind in kinds if kind != "nnp"]
    if linear:
        report = run(linear_tasks(linear, data_root), store, make, workers=workers)
        if not report.ok:
            return {"incomplete": sorted(report.failed)}
        write_protocol(store, protocol_path(root), data_root)
    while "nnp" in kinds:
        stage = nnp_stages(summary(cv_table(store)))[-1]
        if stage["complete"]:  # the walk reaches a complete last entry only when every stage is done
            break
        report = run(nnp_tasks(list(stage["configs"].values()), data_root), store, make, workers=workers)
        if not report.ok:
            return {"incomplete": sorted(report.failed)}
        done = {s["stage"]: s for s in nnp_stages(summary(cv_table(store)))}[stage["stage"]]
        log(f"NNP stage {done['stage']}: {done['winner']} is the best of {list(done['configs'])}")
        write_protocol(store, protocol_path(root), data_root)
    return write_protocol(store, protocol_path(root), data_root)


def write_protocol(store: FolderStore, path: str | Path | None = None, data_root: str | None = None) -> dict:
    """Choose the hyper-parameters of every kind with complete CV results in the store and write them with
    the table (the NNP only once all its stages are complete).

    Parameters
    ----------
    store : FolderStore
        The search's store.
    path : str or Path, optional
        The JSON file (default :func:`protocol_path`).
    data_root : str, optional
        The data folder (for the fold assignment written out).

    Returns
    -------
    dict
        ``reference`` (score accuracies), ``loss_weights``, ``folds`` (k, seed, task name → fold),
        ``grids``, ``chosen`` (kind → hyper-parameters, their mean CV score, its standard error and mean
        RMSEs; the linear kinds also ``alpha_1se``), ``nnp_stages`` (configurations and winner of each),
        ``cost_one_core_hours`` (per kind), ``table`` (:func:`summary` rows) and ``folds_table``
        (:func:`cv_table` rows).
    """
    table = cv_table(store)
    means = summary(table)
    chosen = {}
    for kind in ("linear_bp", "plip"):
        if kind in set(means["kind"]):
            row, one_se = best(means, kind), best(means, kind, rule="1se")
            chosen[kind] = {"hyperparameters": {"loss_weights": row["config"], "alpha": float(row["alpha"])},
                            "alpha_1se": float(one_se["alpha"])}
    stages = nnp_stages(means)
    if stages[-1]["complete"] and len(stages) == len(NNP_STAGES):
        chosen["nnp"] = {"hyperparameters": stages[-1]["hyperparameters"]}
    for kind, entry in chosen.items():
        config = entry["hyperparameters"]["loss_weights"] if kind != "nnp" else config_id(entry["hyperparameters"])
        row = means[(means["kind"] == kind) & (means["config"] == config)
                    & ((means["alpha"] == entry["hyperparameters"].get("alpha")) | (kind == "nnp"))].iloc[0]
        entry.update({k: float(row[k]) for k in ("score", "score_se", "rmse_energy", "rmse_forces", "rmse_stress")})
    frames = load_zno("train", data_root)
    protocol = {
        "description": "One training protocol for the three kinds (zno_book.protocol): frame-wise "
                       f"{N_FOLDS}-fold CV, score = (RMSE_E/σ_E)² + (RMSE_F/σ_F)² + (RMSE_S/σ_S)², the "
                       "smallest mean score chosen",
        "units": {"rmse_energy": "eV/atom", "rmse_forces": "eV/Å", "rmse_stress": "GPa", "alpha": "scaled problem",
                  "loss_weights": "σ_E eV/atom, σ_F eV/Å, σ_S GPa", "cpu_seconds": "one-core seconds"},
        "reference": REFERENCE, "loss_weights": LOSS_WEIGHTS,
        "folds": {"n_folds": N_FOLDS, "seed": FOLD_SEED, "always_train": list(ALWAYS_TRAIN),
                  "assignment": {a.info["task"]: int(f) for a, f in zip(frames, fold_assignment(frames))}},
        "grids": {"linear_bp_alpha": RIDGE_ALPHAS.tolist(), "plip_alpha": LASSO_ALPHAS.tolist(),
                  "nnp_base": NNP_BASE, "nnp_stages": NNP_STAGES, "rule": "min"},
        "chosen": chosen,
        "nnp_stages": [{"stage": s["stage"], "configs": list(s["configs"]), "complete": s["complete"],
                        "winner": s.get("winner")} for s in stages],
        "cost_one_core_hours": {kind: float(table.loc[table["kind"] == kind, "cpu_seconds"].sum() / 3600)
                                for kind in sorted(set(table["kind"]))},
        "table": json.loads(means.to_json(orient="records")),
        "folds_table": json.loads(table.to_json(orient="records")),
    }
    text = json.dumps(protocol, indent=1) + "\n"
    write_atomic(Path(path) if path is not None else protocol_path(), lambda handle: handle.write(text.encode()))
    return protocol


def read_protocol(root: str | Path | None = None) -> dict:
    """The protocol written by :func:`write_protocol`, ``<root>/models/v2/protocol.json``.

    Parameters
    ----------
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    dict
        The parsed JSON (its ``chosen`` holds each searched kind's hyper-parameters).

    Raises
    ------
    FileNotFoundError
        If the file does not exist; the message names the command that makes it.
    """
    path = protocol_path(root)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run the search first (python -m zno_book.protocol search)")
    return json.loads(path.read_text())


def main(argv: list[str] | None = None) -> int:
    """``python -m zno_book.protocol search [--executor local] [--workers 2] [--kinds ...]``.

    Runs :func:`search` and prints each chosen kind's hyper-parameters and CV score.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 if the search finished, 1 if tasks failed (listed on stderr; rerunning retries them).
    """
    parser = argparse.ArgumentParser(prog="python -m zno_book.protocol", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["search"])
    parser.add_argument("--executor", choices=executors.KINDS, default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--address", default=None, help="a running Dask scheduler (with --executor dask)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--root", default=None, help="the book's root (default: $ZNO_BOOK_ROOT or this checkout)")
    parser.add_argument("--data-root", default=None, help="the data folder (default: data/zno under the root)")
    args = parser.parse_args(argv)
    result = search(args.executor, args.workers, args.address, args.kinds, args.root, args.data_root)
    if "incomplete" in result:
        print(f"failed tasks: {result['incomplete']}; rerun the same command to retry them", file=sys.stderr)
        return 1
    for kind, entry in result["chosen"].items():
        print(f"{kind}: {entry['hyperparameters']} (CV score {entry['score']:.3g} ± {entry['score_se']:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
