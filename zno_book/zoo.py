"""The three shipped ZnO potentials of the book, trained reproducibly and cached under ``models/v1``.

Kinds (Kandy et al., PRB 107, 174106 (2023)):

- ``"linear_bp"``: :class:`LinearPotential` on :meth:`BehlerParrinello.default_zno` (36 ACSFs, one weight
  vector per centre element), ``RidgeCV`` (α by 5-fold cross-validation by frame) on energies and
  forces (the same rows as the NNP), so that linear-BP vs NNP isolates "linear vs network" on one
  descriptor.
- ``"plip"``: :class:`LinearPotential` on :meth:`PLIP.default_zno` (1485 2B/3B/NB terms), fitted the PLIP
  way — LassoLars, dominated by the forces — with the sparsity α chosen by 5-fold cross-validation
  along the exact LARS path (:class:`~mliplib.models.lasso_path.LassoLarsPathCV`), by the
  one-standard-error rule (the sparsest model whose validation error is within one standard error of
  the minimum).
  One deviation: the PLIP code fits forces *only*; here the energies enter too, with a weak weight
  (``sigma_energy`` = 10 meV/atom against 2 meV/atom for the other two kinds; force rows outnumber them
  ~3N:1 per frame). Our reference set has no MD trajectories linking the polymorphs, and forces alone
  leave their energy differences undetermined: on the first 15 training frames the forces-only fit has
  493 meV/atom energy RMSE (train), the weakly weighted one 3.6 meV/atom at 51 vs 12 meV/Å forces.
  ``sigma_energy=None`` in :func:`train` restores the paper's protocol. The folds are *by frame*
  (:class:`LinearPotential` does that for any estimator with ``cv``); the PLIP code's random split over
  force components leaks a frame's other components into the validation set and favours dense models.
- ``"nnp"``: :class:`NeuralNetworkPotential`, per-element 2×25 tanh networks on the same ACSFs, energies
  and forces, full-batch L-BFGS (the reference set is small; Adam mini-batches converge far slower),
  100 epochs of 20 iterations, no validation split. Measured on the 119 training frames of the
  complete bulk set (strains, shears, rattles, path, isolated atoms; 9 held out): without validation,
  held-out RMSE 3.7 meV/atom and 73 meV/Å; with a 10 % validation split and early stopping (patience
  30 epochs) training stopped after 57 epochs at 2.9 meV/atom and 102 meV/Å — the forces, which carry
  most of the information, are better without it (and with 20 frames early stopping had picked
  near-initial weights: held-out forces 2.2 eV/Å). ``validation_fraction`` and ``patience`` remain
  options of :class:`NeuralNetworkPotential`. One PyTorch thread, so a given seed gives the same weights
  on any machine size.

Committees (query by committee, :class:`Committee`): 5 members per kind; linear members are fitted on
random 80 % subsamples of the training frames plus, in every member, the two isolated atoms (a member
drawn without them had energy constants off by up to 6 eV per atom); NNP members see every frame and
differ by their seed (initial weights).

:func:`train_all` (``make models`` / ``scripts/train_zno.py``) fits everything on ``load_zno("train")``,
evaluates on ``load_zno("test")`` and writes ``models/v1/<name>.npz`` plus ``models/v1/manifest.json``
(data checksum, frame counts, hyperparameters, versions, wall times, held-out errors).
:func:`load_or_train` is what the chapters call: it returns the cached model when its manifest entry
was trained on the current data (same SHA-256 of ``train.extxyz``) with the current hyperparameters,
and retrains (with progress bars) and updates the cache otherwise.

The models folder (default :func:`zno_book.paths.models_dir`, ``$ZNO_BOOK_ROOT/models/v1``) and the data
folder (default :func:`zno_book.paths.data_dir`) are arguments of every function that reads or writes
them (``root`` and ``data_root``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numba
import numpy as np
import sklearn
import torch
from sklearn.linear_model import RidgeCV

import mliplib
from mliplib.descriptors import PLIP, BehlerParrinello, descriptor_from_dict
from mliplib.models import Committee, LinearPotential, NeuralNetworkPotential, load
from mliplib.models.lasso_path import LassoLarsPathCV
from zno_book.constants import MODEL_KINDS, MODEL_LABELS
from zno_book.datasets import load_zno
from zno_book.paths import MODELS_VERSION, data_dir, models_dir

ZOO_VERSION = MODELS_VERSION
KINDS = MODEL_KINDS
COMMITTEE_SIZE = 5
#: Seed of the frame shuffle (PLIP cross-validation folds) and base seed of the committees.
SEED = 0
LABELS = MODEL_LABELS

__all__ = [
    "COMMITTEE_SIZE",
    "KINDS",
    "LABELS",
    "build",
    "data_fingerprint",
    "entry_name",
    "evaluate",
    "fingerprint",
    "hyperparameters",
    "is_current",
    "load_or_train",
    "read_manifest",
    "shuffled",
    "train",
    "train_all",
]


def hyperparameters(kind: str, committee: bool = False) -> dict:
    """Everything that defines a shipped model (recorded in the manifest and compared to decide whether a
    cached model is still valid).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    committee : bool
        The committee of ``kind`` instead of the single model.

    Returns
    -------
    dict
        JSON-serialisable.
    """
    if kind == "linear_bp":
        hp = {"model": "LinearPotential", "descriptor": BehlerParrinello.default_zno().to_dict(),
              "estimator": "RidgeCV", "alphas": np.logspace(-8, 2, 21).tolist(), "cv": 5,
              "sigma_energy": 0.002, "sigma_forces": 0.1, "sigma_stress": None}
    elif kind == "plip":
        hp = {"model": "LinearPotential", "descriptor": PLIP.default_zno().to_dict(),
              "estimator": "LassoLarsPathCV", "cv": 5, "n_alphas": 60, "alpha_min_ratio": 1e-5,
              "min_ratio_floor": 1e-12, "rule": "1se",
              "sigma_energy": 0.01, "sigma_forces": 0.1, "sigma_stress": None}
    elif kind == "nnp":
        hp = {"model": "NeuralNetworkPotential", "descriptor": BehlerParrinello.default_zno().to_dict(),
              "hidden": [25, 25], "activation": "tanh", "sigma_energy": 0.002, "sigma_forces": 0.1,
              "optimizer": "lbfgs", "epochs": 100, "lbfgs_iterations": 20, "patience": 30,
              "validation_fraction": 0.0, "min_input_std": 1e-3, "seed": SEED, "threads": 1}
    else:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    hp["frame_shuffle_seed"] = SEED
    if committee:
        hp["committee"] = {"size": COMMITTEE_SIZE, "seed": SEED + 1, "subsample": None}
        if kind != "nnp":  # linear members see 80 % of the frames, and every one sees the isolated atoms
            hp["committee"].update(subsample=0.8, always_include=["isolated_atom"])
    return hp


def build(kind: str, committee: bool = False, progress: bool = True, **overrides):
    """An unfitted model (or committee) of ``kind`` with the shipped hyperparameters; ``overrides``
    replace entries of :func:`hyperparameters` (for small test models).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    committee : bool
        A committee of ``kind``.
    progress : bool
        Progress bars while an NNP trains.
    **overrides
        Entries of :func:`hyperparameters` to replace.

    Returns
    -------
    mliplib.models.Potential
        Unfitted.
    """
    hp = {**hyperparameters(kind, committee), **overrides}
    descriptor = hp["descriptor"] if not isinstance(hp["descriptor"], dict) else descriptor_from_dict(hp["descriptor"])
    if kind == "linear_bp":
        model = LinearPotential(descriptor, RidgeCV(alphas=np.asarray(hp["alphas"]), cv=hp["cv"]), hp["sigma_energy"],
                                hp["sigma_forces"], hp["sigma_stress"])
    elif kind == "plip":
        model = LinearPotential(descriptor, LassoLarsPathCV(cv=hp["cv"], n_alphas=hp["n_alphas"],
                                                            alpha_min_ratio=hp["alpha_min_ratio"],
                                                            min_ratio_floor=hp["min_ratio_floor"], rule=hp["rule"]),
                                hp["sigma_energy"], hp["sigma_forces"], hp["sigma_stress"])
    else:
        model = NeuralNetworkPotential(descriptor, progress=progress)
        model.set_params(**{k: hp[k] for k in model.get_params(deep=False) if k in hp and k != "descriptor"})
    if committee:
        c = hp["committee"]
        return Committee.of(model, c["size"], subsample=c["subsample"], seed=c["seed"],
                            always_include=tuple(c.get("always_include", ())))
    return model


def shuffled(frames: list, seed: int = SEED) -> list:
    """The frames in a fixed random order (what every shipped model is fitted on).

    Parameters
    ----------
    frames : list of ase.Atoms
        The frames.
    seed : int
        Seed of the permutation.

    Returns
    -------
    list of ase.Atoms
    """
    order = np.random.default_rng(seed).permutation(len(frames))
    return [frames[k] for k in order]


def train(kind: str, frames: list, committee: bool = False, progress: bool = True, **overrides):
    """Fit a shipped model (or committee) on ``frames`` (shuffled with the fixed seed first), with one
    PyTorch thread.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    frames : list of ase.Atoms
        Training frames.
    committee : bool
        A committee of ``kind``.
    progress : bool
        Progress bars.
    **overrides
        Entries of :func:`hyperparameters` to replace.

    Returns
    -------
    mliplib.models.Potential
        Fitted.
    """
    model = build(kind, committee, progress=progress, **overrides)
    with _torch_threads(1):
        model.fit(shuffled(frames, overrides.get("frame_shuffle_seed", SEED)))
    return model


@contextlib.contextmanager
def _torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def evaluate(model, frames: list) -> dict | None:
    """Errors against reference frames: energy per atom (meV/atom) and force components (meV/Å), RMSE,
    MAE and max; for committees also the mean per-atom force spread (meV/Å).

    Parameters
    ----------
    model : mliplib.models.Potential
        A fitted model.
    frames : list of ase.Atoms
        Reference frames.

    Returns
    -------
    dict or None
        None for no frames.
    """
    if not frames:
        return None
    de, df, spread = [], [], []
    for atoms in frames:
        out = model.predict(atoms)
        de.append((out["energy"] - atoms.info["energy"]) / len(atoms))
        df.append((out["forces"] - atoms.arrays["forces"]).ravel())
        if "forces_spread" in out:
            spread.append(out["forces_spread"])
    de, df = 1e3 * np.array(de), 1e3 * np.concatenate(df)
    result = {"n_frames": len(frames), "n_atoms": int(sum(len(a) for a in frames)),
              "energy_rmse_meV_atom": float(np.sqrt(np.mean(de ** 2))),
              "energy_mae_meV_atom": float(np.mean(np.abs(de))),
              "energy_max_meV_atom": float(np.max(np.abs(de))),
              "forces_rmse_meV_A": float(np.sqrt(np.mean(df ** 2))), "forces_mae_meV_A": float(np.mean(np.abs(df))),
              "forces_max_meV_A": float(np.max(np.abs(df)))}
    if spread:
        result["forces_spread_mean_meV_A"] = float(1e3 * np.mean(np.concatenate(spread)))
    return result


# ---------------------------------------------------------------------------------------------- data
def data_fingerprint(data_root: str | Path | None = None) -> dict:
    """The training file as the data manifest records it.

    Parameters
    ----------
    data_root : str or Path, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    dict
        ``{"file", "sha256", "frames"}``.

    Raises
    ------
    FileNotFoundError
        ``train.extxyz`` or the manifest has not been generated yet.
    """
    root = Path(data_root) if data_root is not None else data_dir()
    manifest = root / "manifest.json"
    path = root / "train.extxyz"
    if not path.exists() or not manifest.exists():
        raise FileNotFoundError(f"{path} is missing: the training data have not been generated yet "
                                f"(see {root / 'README.md'})")
    entry = json.loads(manifest.read_text())["files"].get("train.extxyz")
    if entry is None:
        raise ValueError(f"train.extxyz is not listed in {manifest}; rebuild the data manifest")
    return {"file": "data/zno/train.extxyz", "sha256": entry["sha256"], "frames": entry.get("frames")}


def entry_name(kind: str, committee: bool = False) -> str:
    """The manifest entry and file stem of a shipped model.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    committee : bool
        Its committee.

    Returns
    -------
    str
        e.g. ``"nnp"`` or ``"nnp_committee"``.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    return f"{kind}_committee" if committee else kind


def _models(root: str | Path | None) -> Path:
    return Path(root) if root is not None else models_dir()


def read_manifest(root: str | Path | None = None) -> dict:
    """The models' manifest.

    Parameters
    ----------
    root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).

    Returns
    -------
    dict
        Empty if there is no manifest yet.
    """
    path = _models(root) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _environment() -> dict:
    return {"mliplib": mliplib.__version__, "numpy": np.__version__, "torch": torch.__version__,
            "scikit-learn": sklearn.__version__, "numba": numba.__version__, "python": platform.python_version()}


def _fit_one(kind, committee, train_frames, test_frames, root, data, progress):
    name = entry_name(kind, committee)
    start = time.perf_counter()
    model = train(kind, train_frames, committee=committee, progress=progress)
    wall = time.perf_counter() - start
    path = Path(root) / f"{name}.npz"
    tmp = path.with_name(f".{name}.tmp.npz")
    model.save(tmp)
    os.replace(tmp, path)
    entry = {"file": path.name, "kind": kind, "committee": committee, "label": LABELS[kind],
             "data_sha256": data["sha256"], "n_frames_train": len(train_frames),
             "n_atoms_train": int(sum(len(a) for a in train_frames)),
             "hyperparameters": hyperparameters(kind, committee),
             "train_wall_time_s": round(wall, 2), "environment": _environment(),
             "train_errors": evaluate(model, train_frames), "test_errors": evaluate(model, test_frames)}
    members = model.members_ if committee else [model]
    if kind in ("linear_bp", "plip"):
        entry["fit_info"] = [m.fit_info_ for m in members]
    else:
        entry["epochs_run"] = [len(m.history_) for m in members]
    return model, entry


@contextlib.contextmanager
def _locked(root: Path):
    """An exclusive lock on the cache folder (two notebooks retraining at once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_manifest(root: Path, entries: dict, data: dict, n_test: int) -> dict:
    manifest = read_manifest(root)
    manifest.update({"zoo_version": ZOO_VERSION, "description": "The three potentials of the book "
                     "(zno_book.zoo); regenerate with `make models`", "units": {
                         "energy": "meV/atom (per-frame energy error / atoms)",
                         "forces": "meV/Å per Cartesian component",
                         "train_wall_time_s": "s, wall clock on the machine that trained"}})
    manifest["data"] = {**data, "n_frames_test": n_test}
    manifest.setdefault("models", {}).update(entries)
    # entries trained on other data stay listed but are flagged, so a reader sees what is stale
    for entry in manifest["models"].values():
        entry["current"] = entry.get("data_sha256") == data["sha256"]
    manifest["models"] = dict(sorted(manifest["models"].items()))
    tmp = root / ".manifest.tmp.json"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, root / "manifest.json")
    return manifest


def train_all(root: str | Path | None = None, kinds=KINDS, committees: bool = True, progress: bool = True,
              log=print, data_root: str | Path | None = None) -> dict:
    """Train every shipped model (and committee) on the current data and write the cache and manifest.

    Parameters
    ----------
    root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).
    kinds : sequence of str
        The kinds to train.
    committees : bool
        Also their committees.
    progress : bool
        Progress bars.
    log : callable
        Receives one progress line at a time.
    data_root : str or Path, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    dict
        The updated manifest.
    """
    root = _models(root)
    data = data_fingerprint(data_root)
    train_frames, test_frames = load_zno("train", data_root), load_zno("test", data_root)
    entries = {}
    with _locked(root):
        for kind in kinds:
            for committee in ((False, True) if committees else (False,)):
                name = entry_name(kind, committee)
                log(f"training {name} on {len(train_frames)} frames ...")
                _, entry = _fit_one(kind, committee, train_frames, test_frames, root, data, progress)
                entries[name] = entry
                log(f"  {name}: {entry['train_wall_time_s']:.1f} s; held-out {_short(entry['test_errors'])}")
                _write_manifest(root, {name: entry}, data, len(test_frames))
    return read_manifest(root)


def _short(errors: dict | None) -> str:
    if not errors:
        return "(no test frames)"
    return (f"E {errors['energy_rmse_meV_atom']:.1f} meV/atom, F {errors['forces_rmse_meV_A']:.0f} meV/Å "
            f"(RMSE, {errors['n_frames']} frames)")


def is_current(kind: str, committee: bool = False, root: str | Path | None = None,
               data_root: str | Path | None = None) -> bool:
    """Whether the cached model exists and was trained on the current data and hyperparameters.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    committee : bool
        Its committee.
    root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).
    data_root : str or Path, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    bool
    """
    root = _models(root)
    entry = read_manifest(root).get("models", {}).get(entry_name(kind, committee))
    try:
        data = data_fingerprint(data_root)
    except FileNotFoundError:
        return False
    return (entry is not None and (root / entry["file"]).exists() and entry.get("data_sha256") == data["sha256"]
            and entry.get("hyperparameters") == json.loads(json.dumps(hyperparameters(kind, committee))))


def fingerprint(kind: str, committee: bool = False, root: str | Path | None = None) -> str:
    """SHA-256 of the cached model file (a key for artefacts computed with it; call
    :func:`load_or_train` first so that the file is current).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    committee : bool
        Its committee.
    root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).

    Returns
    -------
    str
        Hex digest.
    """
    root = _models(root)
    entry = read_manifest(root).get("models", {}).get(entry_name(kind, committee))
    if entry is None or not (root / entry["file"]).exists():
        raise FileNotFoundError(f"no cached {entry_name(kind, committee)} in {root}; call load_or_train first")
    return hashlib.sha256((root / entry["file"]).read_bytes()).hexdigest()


def load_or_train(kind: str, committee: bool = False, root: str | Path | None = None, retrain: bool = True,
                  progress: bool = True, data_root: str | Path | None = None):
    """The shipped ``kind`` model (or its committee) for the chapters.

    Returns the cached ``models/v1/<kind>[_committee].npz`` when its manifest entry matches the current
    training data (SHA-256 of ``data/zno/train.extxyz``) and hyperparameters. Otherwise retrains it on
    ``load_zno("train")`` (progress bars), saves it and updates the manifest (``retrain=False`` raises
    instead). Without any training data, a cached model is returned with a warning.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    committee : bool
        Its committee.
    root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).
    retrain : bool
        Retrain a stale model (else raise RuntimeError).
    progress : bool
        Progress bars.
    data_root : str or Path, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    mliplib.models.Potential
    """
    root = _models(root)
    name = entry_name(kind, committee)
    entry = read_manifest(root).get("models", {}).get(name)
    try:
        data = data_fingerprint(data_root)
    except FileNotFoundError:
        if entry is not None and (root / entry["file"]).exists():
            warnings.warn(f"no training data to check the cached {name} against; using the cache as it is",
                          stacklevel=2)
            return load(root / entry["file"])
        raise
    if is_current(kind, committee, root, data_root):
        return load(root / entry["file"])
    reason = "not cached" if entry is None else "trained on other data or hyperparameters"
    if not retrain:
        raise RuntimeError(f"cached {name} is stale ({reason}); run `make models` or pass retrain=True")
    if progress:
        print(f"{name}: {reason}; retraining on the current data (a few minutes) ...")
    with _locked(root):
        if is_current(kind, committee, root, data_root):  # someone else retrained while we waited for the lock
            return load(root / read_manifest(root)["models"][name]["file"])
        train_frames, test_frames = load_zno("train", data_root), load_zno("test", data_root)
        model, entry = _fit_one(kind, committee, train_frames, test_frames, root, data, progress)
        _write_manifest(root, {name: entry}, data, len(test_frames))
    return model
