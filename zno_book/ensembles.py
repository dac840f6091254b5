"""Independent ensembles of the three kinds, built alike: M models per kind from one recipe.

Recipe (the same for every kind): member m is the protocol's model of its kind
(:func:`zno_book.protocol.build` with the hyper-parameters of ``models/v2/protocol.json``) trained on a
bootstrap resample of the training frames (:func:`bootstrap`, seeded by m: as many draws with replacement
as there are frames, from the frames other than the isolated atoms; the two isolated atoms always
added, since a member without them has energy constants off by eV), the NNP's initial weights and
validation split seeded by m. The linear kinds' α is the protocol's, fixed (not re-cross-validated per
member). Training frames: ``load_zno("train")`` (the 13-frame "test" split and any held-out set stay
out).

One task per member on :mod:`zno_book.driver` (``python -m zno_book.ensembles train --executor local
--workers 2``); the task returns the fitted model's state (:meth:`mliplib.models.Potential.to_state`) and
a record, and :class:`ModelStore` writes ``models/v2/ensembles/<kind>/member_<m>.npz`` (an mliplib model
file, :func:`mliplib.load` reads it) and ``member_<m>.json`` (the record: bootstrap frames, seeds, wall
and CPU time, training and out-of-bag errors). A rerun skips finished members. :func:`write_manifest`
writes ``models/v2/manifest.json``; :func:`load_ensemble` and :func:`committee` read the members back.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import ase
import numba
import numpy as np
import sklearn
import torch
from sklearn.base import clone

import mliplib
from mliplib.models import Committee, Potential, load
from mliplib.models.base import encode_params, potential_from_state
from zno_book import executors, protocol
from zno_book.datasets import load_zno
from zno_book.driver import FolderStore, Task, run, write_atomic
from zno_book.paths import book_root
from zno_book.zoo import data_fingerprint

KINDS = protocol.KINDS
ENSEMBLE_SIZE = 8
#: Estimated one-core seconds of a member's training (the driver's ETA only).
COST = {"linear_bp": 30.0, "plip": 150.0, "nnp": 300.0}


def ensembles_root(root: str | Path | None = None) -> Path:
    """The members' folder, ``<root>/models/v2/ensembles``.

    Parameters
    ----------
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    Path
        The folder of :class:`ModelStore`: ``<kind>/member_<m>.npz`` and ``.json`` (it need not exist yet).
    """
    return book_root(root) / "models" / protocol.VERSION / "ensembles"


def manifest_path(root: str | Path | None = None) -> Path:
    """The ensembles' manifest, ``<root>/models/v2/manifest.json`` (written by :func:`write_manifest`).

    Parameters
    ----------
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    Path
    """
    return book_root(root) / "models" / protocol.VERSION / "manifest.json"


# ---------------------------------------------------------------------------------------------- store
class ModelStore:
    """Fitted models for :func:`zno_book.driver.run`: task ``a/b`` → ``root/a/b.npz``, an mliplib model file,
    and ``root/a/b.json``, its record.

    A task returns ``{"metadata": …, "arrays": …}`` (:meth:`~mliplib.models.Potential.to_state`) and
    ``"record"`` (a JSON-serialisable dict). The model file is written first, then the record, each
    atomically; a task is done when its record exists.

    Parameters
    ----------
    root : str or Path
        The folder (created on the first save).
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.files = FolderStore(root)  # task name → path rules

    def path(self, name: str) -> Path:
        """The model file of task ``name``, ``root/<name>.npz`` (its record is beside it, ``.json``).

        Parameters
        ----------
        name : str
            Task name, ``/``-separated, e.g. ``nnp/member_3``.

        Returns
        -------
        Path

        Raises
        ------
        ValueError
            If ``name`` cannot be a relative file path under ``root`` (an empty, ``.`` or ``..`` part).
        """
        return self.files.path(name)

    def done(self) -> set[str]:
        """Names of the finished tasks: those with a record (``.json``) and a model file (``.npz``).

        Returns
        -------
        set of str
            Empty if ``root`` does not exist.
        """
        if not self.root.exists():
            return set()
        return {path.relative_to(self.root).with_suffix("").as_posix() for path in self.root.rglob("*.json")
                if path.with_suffix(".npz").exists()}

    def save(self, task: Task, result: dict) -> None:
        """Write a task's model file, then its record, each atomically.

        Parameters
        ----------
        task : zno_book.driver.Task
            The finished task; its ``name`` is the key.
        result : dict
            ``metadata`` and ``arrays``, the fitted model's state, and ``record``, a JSON-serialisable dict
            (see :func:`fit_state`). The stored record adds ``task`` (the name) and ``model_sha256``
            (:meth:`mliplib.models.Potential.digest` of the model).

        Raises
        ------
        TypeError
            If ``result`` is not a dict with the keys ``metadata``, ``arrays`` and ``record``.
        """
        if not isinstance(result, dict) or not {"metadata", "arrays", "record"} <= set(result):
            raise TypeError(f"task {task.name}: ModelStore saves a dict with metadata, arrays and record")
        model = potential_from_state(result["metadata"], result["arrays"])
        path = self.path(task.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        try:
            model.save(temporary)
            write_atomic(path, lambda handle: handle.write(temporary.read_bytes()))
        finally:
            temporary.unlink(missing_ok=True)
        text = json.dumps({"task": task.name, "model_sha256": model.digest(), **result["record"]}, indent=1)
        write_atomic(path.with_suffix(".json"), lambda handle: handle.write(text.encode()))

    def load(self, name: str) -> Potential:
        """The fitted model of task ``name``, read from its model file.

        Parameters
        ----------
        name : str
            Task name, e.g. ``nnp/member_3``.

        Returns
        -------
        mliplib.models.Potential
        """
        return load(self.path(name))

    def record(self, name: str) -> dict:
        """The record of task ``name``, read from ``root/<name>.json``.

        Parameters
        ----------
        name : str
            Task name, e.g. ``nnp/member_3``.

        Returns
        -------
        dict
            ``task``, ``model_sha256`` and the task's record (:func:`fit_state`, :func:`train_member`).
        """
        return json.loads(self.path(name).with_suffix(".json").read_text())


# --------------------------------------------------------------------------------------------- recipe
def always_trained(frames: list) -> np.ndarray:
    """Indices of the frames every model is trained on (``config_type`` in :data:`zno_book.protocol.ALWAYS_TRAIN`).

    Parameters
    ----------
    frames : list of ase.Atoms
        The training pool (``info["config_type"]`` read; frames without one are not always trained).

    Returns
    -------
    numpy.ndarray
        (n_always,) int, in the order of ``frames``.
    """
    return np.array([k for k, atoms in enumerate(frames) if atoms.info.get("config_type") in protocol.ALWAYS_TRAIN],
                    dtype=int)


def bootstrap(frames: list, member: int) -> np.ndarray:
    """The training frames of ensemble member ``member``: a bootstrap resample plus the isolated atoms.

    Parameters
    ----------
    frames : list of ase.Atoms
        The training pool.
    member : int
        Member index, the seed of the draw.

    Returns
    -------
    numpy.ndarray
        Sorted frame indices, repeats included: the always-trained frames once, then ``n`` draws with
        replacement from the ``n`` other frames.
    """
    always = always_trained(frames)
    pool = np.setdiff1d(np.arange(len(frames)), always)
    draws = np.random.default_rng(member).choice(pool, size=len(pool), replace=True)
    return np.sort(np.concatenate([always, draws]))


def errors_summary(model, frames: list) -> dict:
    """RMSEs of a model on frames, in the units of the records.

    Parameters
    ----------
    model : mliplib.models.Potential
        A fitted potential.
    frames : list of ase.Atoms
        Labelled frames (``info["energy"]`` eV, ``arrays["forces"]`` eV/Å, ``info["stress"]`` eV/Å³ on
        periodic frames); may be empty.

    Returns
    -------
    dict
        ``energy_meV_atom`` (RMSE of the energy per atom over frames, meV/atom), ``forces_meV_A`` (over
        force components, meV/Å), ``stress_GPa`` (over the Voigt components of the frames with a stress,
        GPa; NaN if none has one) and ``n_frames``. With no frames the three RMSEs are None.
    """
    if not frames:
        return {"energy_meV_atom": None, "forces_meV_A": None, "stress_GPa": None, "n_frames": 0}
    errors = protocol.rmse(protocol.frame_errors(model, frames))
    return {"energy_meV_atom": 1e3 * float(errors["energy"]), "forces_meV_A": 1e3 * float(errors["forces"]),
            "stress_GPa": float(errors["stress"]), "n_frames": len(frames)}


def fit_state(kind: str, hyper: dict, seed: int, frames: list, rows: np.ndarray) -> dict:
    """Train the protocol's model of ``kind`` on ``frames[rows]`` (repeats are the same ``Atoms``) and
    return what :class:`ModelStore` saves.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    hyper : dict
        Its hyper-parameters (:func:`zno_book.protocol.build`).
    seed : int
        The NNP's seed.
    frames : list of ase.Atoms
        The pool.
    rows : numpy.ndarray
        Indices into ``frames``, repeats allowed.

    Returns
    -------
    dict
        ``metadata`` and ``arrays`` (the fitted model's state) and ``record``: ``kind``, ``seed``,
        ``hyperparameters``, ``frames`` (task names, repeats included), ``n_frames``, ``n_distinct``,
        ``wall_seconds``, ``cpu_seconds``, ``train_errors``, ``out_of_bag_errors`` (the pool's frames not
        drawn) and, for the NNP, ``epochs_run``.
    """
    start, cpu = time.perf_counter(), time.process_time()
    training = [frames[k] for k in rows]
    model = protocol.build(kind, hyper, seed=seed).fit(training)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    distinct = sorted(set(rows.tolist()))
    out_of_bag = [frames[k] for k in sorted(set(range(len(frames))) - set(distinct))]
    metadata, arrays = model.to_state()
    record = {"kind": kind, "seed": seed, "hyperparameters": hyper,
              "frames": [frames[k].info["task"] for k in rows], "n_frames": len(rows), "n_distinct": len(distinct),
              "wall_seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
              "train_errors": errors_summary(model, [frames[k] for k in distinct]),
              "out_of_bag_errors": errors_summary(model, out_of_bag)}
    if kind == "nnp":
        record["epochs_run"] = len(model.history_)
    return {"metadata": metadata, "arrays": arrays, "record": record}


def train_member(kind: str, hyper: dict, member: int, data_root: str | None = None) -> dict:
    """Task: ensemble member ``member`` of ``kind`` (:func:`bootstrap` frames, seed ``member``).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    hyper : dict
        The protocol's hyper-parameters of ``kind``.
    member : int
        Member index (bootstrap and NNP seed).
    data_root : str, optional
        The data folder (default :func:`zno_book.paths.data_dir`).

    Returns
    -------
    dict
        See :func:`fit_state`; the record adds ``member``.
    """
    frames = load_zno("train", data_root)
    result = fit_state(kind, hyper, member, frames, bootstrap(frames, member))
    result["record"]["member"] = member
    return result


def member_tasks(chosen: dict, size: int = ENSEMBLE_SIZE, kinds=KINDS, data_root: str | None = None) -> list[Task]:
    """One task per (kind, member): ``<kind>/member_<m>``, members interleaved across kinds.

    Parameters
    ----------
    chosen : dict
        Kind → hyper-parameters (``protocol.json``'s ``chosen[kind]["hyperparameters"]``).
    size : int
        Members per kind.
    kinds : sequence of str
        The kinds.
    data_root : str, optional
        The data folder.

    Returns
    -------
    list of Task
    """
    return [Task(f"{kind}/member_{m}", "zno_book.ensembles:train_member",
                 {"kind": kind, "hyper": chosen[kind], "member": m, "data_root": data_root}, cost=COST[kind])
            for m in range(size) for kind in kinds]


# --------------------------------------------------------------------------------------------- loading
def member_names(kind: str, root: str | Path | None = None) -> list[str]:
    """Task names of the trained members of ``kind``, by member index.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    list of str
        ``<kind>/member_<m>`` of the members with a model file and a record, sorted by m (empty if none).

    Raises
    ------
    ValueError
        If ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {KINDS}")
    done = ModelStore(ensembles_root(root)).done()
    names = [name for name in done if name.startswith(f"{kind}/member_")]
    return sorted(names, key=lambda name: int(name.rsplit("_", 1)[1]))


def load_ensemble(kind: str, root: str | Path | None = None) -> list[Potential]:
    """The trained members of ``kind``, by member index.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    root : str or Path, optional
        The book's root.

    Returns
    -------
    list of mliplib.models.Potential
    """
    names = member_names(kind, root)
    if not names:
        raise FileNotFoundError(f"no {kind} ensemble members in {ensembles_root(root)}; train them with "
                                "python -m zno_book.ensembles train")
    store = ModelStore(ensembles_root(root))
    return [store.load(name) for name in names]


def committee(kind: str, root: str | Path | None = None) -> Committee:
    """The ensemble of ``kind`` as a fitted :class:`~mliplib.models.Committee` (mean prediction, spread).

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    root : str or Path, optional
        The book's root.

    Returns
    -------
    mliplib.models.Committee
        Fitted: its members are the ensemble's (the recipe's bootstrap is recorded in the members' records
        and the manifest, not in the committee's ``subsample`` parameter).
    """
    members = load_ensemble(kind, root)
    states = [member.to_state() for member in members]
    template = Committee([clone(member) for member in members], always_include=protocol.ALWAYS_TRAIN)
    species = [s for s in members[0].trained_species_ if all(s in member.trained_species_ for member in members)]
    metadata = {"kind": Committee.kind, "params": encode_params(template),
                "fitted": {"trained_species": species, "members": [meta for meta, _ in states]}}
    arrays = {f"m{m}/{name}": array for m, (_, member_arrays) in enumerate(states)
              for name, array in member_arrays.items()}
    return potential_from_state(metadata, arrays)


# -------------------------------------------------------------------------------------------- manifest
def environment() -> dict:
    """Versions of the libraries that train and evaluate the models."""
    return {"mliplib": mliplib.__version__, "numpy": np.__version__, "torch": torch.__version__,
            "scikit-learn": sklearn.__version__, "numba": numba.__version__, "ase": ase.__version__,
            "python": platform.python_version()}


def write_manifest(root: str | Path | None = None, data_root: str | None = None) -> dict:
    """Write ``models/v2/manifest.json`` from the members' records and ``protocol.json``.

    Parameters
    ----------
    root : str or Path, optional
        The book's root.
    data_root : str, optional
        The data folder (its ``train.extxyz`` checksum is recorded).

    Returns
    -------
    dict
        ``data`` (file, SHA-256, frames), ``protocol`` (the chosen hyper-parameters and the score's
        references), ``recipe``, ``environment``, and per kind ``members``: the records (member, seed,
        model file and SHA-256 of its content, bootstrap frames, wall and CPU seconds, training and
        out-of-bag errors) and ``spread`` (mean, standard deviation, min and max over the members of each
        error).
    """
    chosen = protocol.read_protocol(root)
    store = ModelStore(ensembles_root(root))
    kinds = {}
    for kind in KINDS:
        records = [store.record(name) for name in member_names(kind, root)]
        if records:
            kinds[kind] = {"n_members": len(records), "members": records, "spread": spread(records)}
    manifest = {
        "version": protocol.VERSION,
        "description": "Independent ensembles of the three kinds, one recipe (zno_book.ensembles); regenerate "
                       "with python scripts/train_ensembles.py",
        "units": {"energy_meV_atom": "meV/atom", "forces_meV_A": "meV/Å per component", "stress_GPa": "GPa per "
                  "Voigt component", "wall_seconds": "s on the machine that trained", "cpu_seconds": "one-core s"},
        "data": {**data_fingerprint(data_root), "split": "train (load_zno('train'))"},
        "protocol": {"file": "protocol.json", "reference": chosen["reference"],
                     "hyperparameters": {k: v["hyperparameters"] for k, v in chosen["chosen"].items()}},
        "recipe": {"size": ENSEMBLE_SIZE, "bootstrap": "n draws with replacement from the n non-isolated frames, "
                   "numpy default_rng(member)", "always_include": list(protocol.ALWAYS_TRAIN),
                   "nnp_seed": "member"},
        "environment": environment(),
        "ensembles": kinds,
    }
    text = json.dumps(manifest, indent=1) + "\n"
    write_atomic(manifest_path(root), lambda handle: handle.write(text.encode()))
    return manifest


def spread(records: list[dict]) -> dict:
    """Mean, standard deviation, min and max over members of every training and out-of-bag error.

    Parameters
    ----------
    records : list of dict
        Members' records (:meth:`ModelStore.record`): ``train_errors`` and ``out_of_bag_errors`` (each
        :func:`errors_summary`), ``wall_seconds`` and ``cpu_seconds``.

    Returns
    -------
    dict
        ``"<part>.<error>"`` (e.g. ``"out_of_bag_errors.forces_meV_A"``) → ``mean``, ``std`` (ddof 1; 0 for
        one member), ``min``, ``max``, in the error's unit (meV/atom, meV/Å, GPa), over the members where it
        is not None (an error no member has is left out); ``wall_seconds`` and ``cpu_seconds``, the sums
        over the members, s.
    """
    out = {}
    for part in ("train_errors", "out_of_bag_errors"):
        for key in ("energy_meV_atom", "forces_meV_A", "stress_GPa"):
            values = np.array([r[part][key] for r in records if r[part][key] is not None], dtype=float)
            if values.size:
                out[f"{part}.{key}"] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if
                                        values.size > 1 else 0.0, "min": float(values.min()),
                                        "max": float(values.max())}
    out["wall_seconds"] = float(sum(r["wall_seconds"] for r in records))
    out["cpu_seconds"] = float(sum(r["cpu_seconds"] for r in records))
    return out


# ------------------------------------------------------------------------------------------------ run
def train(executor: str = "local", workers: int = 2, address: str | None = None, kinds=KINDS,
          size: int = ENSEMBLE_SIZE, root: str | Path | None = None, data_root: str | None = None):
    """Train the ensembles of ``kinds`` with the protocol's hyper-parameters (resumable), then write the
    manifest.

    Parameters
    ----------
    executor : {"serial", "local", "dask"}
        Where the tasks run.
    workers : int
        Parallel workers (one thread each).
    address : str, optional
        A running Dask scheduler.
    kinds : sequence of str
        The kinds (each needs its hyper-parameters in ``protocol.json``).
    size : int
        Members per kind.
    root : str or Path, optional
        The book's root.
    data_root : str, optional
        The data folder.

    Returns
    -------
    zno_book.driver.Report
    """
    chosen = protocol.read_protocol(root)["chosen"]
    missing = [kind for kind in kinds if kind not in chosen]
    if missing:
        raise ValueError(f"protocol.json has no hyper-parameters for {missing} yet; finish the search first "
                         "(python -m zno_book.protocol search)")
    tasks = member_tasks({kind: chosen[kind]["hyperparameters"] for kind in kinds}, size, kinds, data_root)
    report = run(tasks, ModelStore(ensembles_root(root)),
                 executors.factory(executor, 1 if executor == "serial" else workers, address), workers=workers)
    write_manifest(root, data_root)
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m zno_book.ensembles {train,manifest} [--executor local] [--workers 2] [--kinds ...]``.

    ``train`` runs :func:`train` (which also writes the manifest); ``manifest`` only rewrites it
    (:func:`write_manifest`).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 if the manifest was written or every training task finished, 1 if a task failed.
    """
    parser = argparse.ArgumentParser(prog="python -m zno_book.ensembles", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "manifest"])
    parser.add_argument("--executor", choices=executors.KINDS, default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--address", default=None, help="a running Dask scheduler (with --executor dask)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--size", type=int, default=ENSEMBLE_SIZE, help="members per kind")
    parser.add_argument("--root", default=None, help="the book's root (default: $ZNO_BOOK_ROOT or this checkout)")
    parser.add_argument("--data-root", default=None, help="the data folder (default: data/zno under the root)")
    args = parser.parse_args(argv)
    if args.command == "manifest":
        write_manifest(args.root, args.data_root)
        return 0
    report = train(args.executor, args.workers, args.address, args.kinds, args.size, args.root, args.data_root)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
