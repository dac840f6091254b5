"""Learning curves: held-out errors of each kind against the size of its training set.

For each kind and each fraction f of :data:`FRACTIONS` of the training frames (``load_zno("train")``),
:data:`N_SUBSETS` random subsets (:func:`subset`: ``round(f·n)`` of the ``n`` frames other than the
isolated atoms, drawn without replacement, seeded by (f, subset); the isolated atoms always in) are
trained with the protocol's hyper-parameters (``models/v2/protocol.json``; the NNP seeded by the subset
index). At 100 % the subsets are the whole set: the linear fits coincide and the NNP's differ by seed.

Training runs on :mod:`zno_book.driver` (one task per (kind, fraction, subset); ``python -m
zno_book.learning_curves train``), and every model is stored (a few kB to a few hundred kB) in
``artefacts/v2/learning_curves/<kind>/f<fraction>/subset<k>.npz`` with its record, so that a new held-out
set costs an evaluation, not a retraining: :func:`evaluate` takes the held-out frames and returns the
tidy table (kind, fraction, subset, E/F/S RMSE) and the curves with their intervals: a bootstrap over the
held-out frames (95 % percentile interval of the subset-mean RMSE) and the spread over the subsets; and
:func:`differences`, the paired bootstrap interval of the NNP's RMSE minus each linear kind's.

Until ``load_zno("heldout")`` exists the command line evaluates on ``load_zno("test")`` (13 frames);
the held-out set is a parameter (``--split``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from zno_book import executors, protocol
from zno_book.datasets import SPLITS, load_zno
from zno_book.driver import Task, run, write_atomic
from zno_book.ensembles import ModelStore, always_trained, fit_state
from zno_book.paths import book_root

KINDS = protocol.KINDS
#: Fractions of the training frames of a curve's points.
FRACTIONS = (0.125, 0.25, 0.5, 1.0)
#: Random subsets per fraction below 1.
N_SUBSETS = 3
#: Bootstrap resamples of the held-out frames and their seed.
N_BOOTSTRAP = 2000
BOOTSTRAP_SEED = 0
#: Quantities of the curves: key of :func:`zno_book.protocol.rmse`, column, scale from its units.
QUANTITIES = {"energy": ("rmse_energy_meV_atom", 1e3), "forces": ("rmse_forces_meV_A", 1e3),
              "stress": ("rmse_stress_GPa", 1.0)}
COST = {"linear_bp": 20.0, "plip": 100.0, "nnp": 200.0}


def curves_root(root: str | Path | None = None) -> Path:
    """The learning-curve models and evaluations, ``<root>/artefacts/v2/learning_curves``.

    Parameters
    ----------
    root : str or Path, optional
        The book's root (default :func:`zno_book.paths.book_root`).

    Returns
    -------
    Path
        The folder of the :class:`~zno_book.ensembles.ModelStore` of the models and of the
        ``evaluation_<split>.json`` files (it need not exist yet).
    """
    return book_root(root) / "artefacts" / protocol.VERSION / "learning_curves"


def subset(frames: list, fraction: float, index: int) -> np.ndarray:
    """The training frames of one learning-curve point.

    Parameters
    ----------
    frames : list of ase.Atoms
        The training pool.
    fraction : float
        Fraction in (0, 1] of the frames other than the isolated atoms.
    index : int
        Subset index (with the fraction, the seed of the draw).

    Returns
    -------
    numpy.ndarray
        Sorted frame indices: the isolated atoms and ``round(fraction·n)`` (≥ 2) distinct other frames.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    always = always_trained(frames)
    pool = np.setdiff1d(np.arange(len(frames)), always)
    size = max(2, round(fraction * len(pool)))
    drawn = np.random.default_rng([round(fraction * 1000), index]).choice(pool, size=size, replace=False)
    return np.sort(np.concatenate([always, drawn]))


def task_name(kind: str, fraction: float, index: int) -> str:
    """The task (and model file) name of one learning-curve model, ``<kind>/f<fraction>/subset<index>``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    fraction : float
        Fraction of the training frames, written with ``:g`` (e.g. ``0.125``, ``1``).
    index : int
        Subset index.

    Returns
    -------
    str
        E.g. ``nnp/f0.125/subset2``.
    """
    return f"{kind}/f{fraction:g}/subset{index}"


def train_subset(kind: str, hyper: dict, fraction: float, index: int, data_root: str | None = None) -> dict:
    """Task: the model of ``kind`` on subset ``index`` of ``fraction`` of the training frames.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS`.
    hyper : dict
        The protocol's hyper-parameters of ``kind``.
    fraction : float
        Fraction of the training frames.
    index : int
        Subset index (and the NNP's seed).
    data_root : str, optional
        The data folder.

    Returns
    -------
    dict
        What :class:`zno_book.ensembles.ModelStore` saves (:func:`zno_book.ensembles.fit_state`); the
        record adds ``fraction`` and ``subset``.
    """
    frames = load_zno("train", data_root)
    result = fit_state(kind, hyper, index, frames, subset(frames, fraction, index))
    result["record"].update(fraction=fraction, subset=index)
    return result


def curve_tasks(chosen: dict, kinds=KINDS, data_root: str | None = None) -> list[Task]:
    """One task per (kind, fraction, subset), the smallest fractions first.

    Parameters
    ----------
    chosen : dict
        Kind → hyper-parameters.
    kinds : sequence of str
        The kinds.
    data_root : str, optional
        The data folder.

    Returns
    -------
    list of Task
    """
    return [Task(task_name(kind, fraction, index), "zno_book.learning_curves:train_subset",
                 {"kind": kind, "hyper": chosen[kind], "fraction": fraction, "index": index, "data_root": data_root},
                 cost=COST[kind] * fraction)
            for fraction in FRACTIONS for index in range(N_SUBSETS) for kind in kinds]


def train(executor: str = "local", workers: int = 2, address: str | None = None, kinds=KINDS,
          root: str | Path | None = None, data_root: str | None = None):
    """Train every learning-curve model of ``kinds`` (resumable).

    Parameters
    ----------
    executor : {"serial", "local", "dask"}
        Where the tasks run.
    workers : int
        Parallel workers.
    address : str, optional
        A running Dask scheduler.
    kinds : sequence of str
        The kinds (each needs its hyper-parameters in ``protocol.json``).
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
        raise ValueError(f"protocol.json has no hyper-parameters for {missing} yet; finish the search first")
    tasks = curve_tasks({kind: chosen[kind]["hyperparameters"] for kind in kinds}, kinds, data_root)
    return run(tasks, ModelStore(curves_root(root)),
               executors.factory(executor, 1 if executor == "serial" else workers, address), workers=workers)


# ------------------------------------------------------------------------------------------ evaluation
def frame_errors(held_out: list, root: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Per-frame squared errors of every stored learning-curve model on the held-out frames.

    Parameters
    ----------
    held_out : list of ase.Atoms
        Labelled frames never used for any choice.
    root : str or Path, optional
        The book's root.

    Returns
    -------
    models : pandas.DataFrame
        One row per model: ``kind``, ``fraction``, ``subset``, ``n_train`` (frames, repeats included).
    errors : dict
        Same order: :func:`zno_book.protocol.frame_errors` arrays stacked to (n_models, n_frames).
    """
    store = ModelStore(curves_root(root))
    rows, stacks = [], []
    for name in sorted(store.done()):
        record = store.record(name)
        rows.append({"kind": record["kind"], "fraction": record["fraction"], "subset": record["subset"],
                     "n_train": record["n_frames"]})
        stacks.append(protocol.frame_errors(store.load(name), held_out))
    if not rows:
        raise FileNotFoundError(f"no learning-curve models in {curves_root(root)}; train them with "
                                "python -m zno_book.learning_curves train")
    return pd.DataFrame(rows), {key: np.array([s[key] for s in stacks]) for key in stacks[0]}


def evaluate(held_out: list, root: str | Path | None = None, n_bootstrap: int = N_BOOTSTRAP,
             seed: int = BOOTSTRAP_SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Held-out errors of every learning-curve model, and the curves with intervals.

    Parameters
    ----------
    held_out : list of ase.Atoms
        Labelled frames never used for any choice (e.g. ``load_zno("heldout")``).
    root : str or Path, optional
        The book's root.
    n_bootstrap : int
        Resamples of the held-out frames.
    seed : int
        Seed of the resamples.

    Returns
    -------
    table : pandas.DataFrame
        One row per model: ``kind``, ``fraction``, ``subset``, ``n_train``, ``rmse_energy_meV_atom``,
        ``rmse_forces_meV_A``, ``rmse_stress_GPa``.
    curves : pandas.DataFrame
        One row per (kind, fraction, quantity ∈ energy/forces/stress): ``rmse`` (mean over the subsets),
        ``low``/``high`` (95 % bootstrap interval over the held-out frames of that mean), ``subset_min``,
        ``subset_max``, ``subset_std`` (spread over the subsets), ``units``, ``n_subsets``,
        ``n_held_out``.
    """
    models, errors = frame_errors(held_out, root)
    resamples = bootstrap_rows(len(held_out), n_bootstrap, seed)
    table = models.copy()
    point = protocol.rmse(errors)
    for quantity, (column, scale) in QUANTITIES.items():
        table[column] = scale * point[quantity]
    rows = []
    for (kind, fraction), group in table.groupby(["kind", "fraction"]):
        boot = _bootstrap_rmse(errors, group.index.to_numpy(), resamples)
        for quantity, (column, scale) in QUANTITIES.items():
            values, means = group[column].to_numpy(), scale * boot[quantity].mean(axis=0)
            rows.append({"kind": kind, "fraction": fraction, "quantity": quantity, "units": column.split("_", 2)[2],
                         "rmse": float(values.mean()), "low": float(np.nanpercentile(means, 2.5)),
                         "high": float(np.nanpercentile(means, 97.5)), "subset_min": float(values.min()),
                         "subset_max": float(values.max()),
                         "subset_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                         "n_subsets": len(values), "n_held_out": len(held_out)})
    return table, pd.DataFrame(rows)


def differences(held_out: list, kind: str = "nnp", others=("linear_bp", "plip"), root: str | Path | None = None,
                n_bootstrap: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """RMSE of ``kind`` minus each of ``others`` per fraction, with a paired bootstrap interval.

    Both kinds' subset-mean RMSEs are recomputed on the same resample of the held-out frames, so the
    interval is that of the difference (negative: ``kind`` better).

    Parameters
    ----------
    held_out : list of ase.Atoms
        Labelled frames never used for any choice.
    kind : str
        The kind compared.
    others : sequence of str
        The kinds it is compared with.
    root : str or Path, optional
        The book's root.
    n_bootstrap : int
        Resamples of the held-out frames.
    seed : int
        Seed of the resamples.

    Returns
    -------
    pandas.DataFrame
        One row per (other, fraction, quantity): ``difference`` (kind − other, units of the quantity as
        in :func:`evaluate`), ``low``, ``high`` (95 % paired bootstrap interval), ``p_kind_better``
        (fraction of resamples in which ``kind`` has the smaller RMSE).
    """
    models, errors = frame_errors(held_out, root)
    resamples = bootstrap_rows(len(held_out), n_bootstrap, seed)
    point, rows = protocol.rmse(errors), []
    for other in others:
        for fraction in sorted(set(models["fraction"])):
            mine = models.index[(models["kind"] == kind) & (models["fraction"] == fraction)].to_numpy()
            theirs = models.index[(models["kind"] == other) & (models["fraction"] == fraction)].to_numpy()
            if not len(mine) or not len(theirs):
                continue
            boot_mine = _bootstrap_rmse(errors, mine, resamples)
            boot_theirs = _bootstrap_rmse(errors, theirs, resamples)
            for quantity, (column, scale) in QUANTITIES.items():
                diff = scale * (boot_mine[quantity].mean(axis=0) - boot_theirs[quantity].mean(axis=0))
                difference = scale * (point[quantity][mine].mean() - point[quantity][theirs].mean())
                rows.append({"kind": kind, "other": other, "fraction": fraction, "quantity": quantity,
                             "units": column.split("_", 2)[2], "difference": float(difference),
                             "low": float(np.nanpercentile(diff, 2.5)), "high": float(np.nanpercentile(diff, 97.5)),
                             "p_kind_better": float(np.mean(diff[np.isfinite(diff)] < 0))})
    return pd.DataFrame(rows)


def bootstrap_rows(n_frames: int, n_bootstrap: int, seed: int) -> np.ndarray:
    """Bootstrap resamples (with replacement) of frame indices.

    Parameters
    ----------
    n_frames : int
        Frames resampled.
    n_bootstrap : int
        Resamples.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    numpy.ndarray
        (n_bootstrap, n_frames) int in 0…n_frames−1.
    """
    return np.random.default_rng(seed).integers(0, n_frames, size=(n_bootstrap, n_frames))


def _bootstrap_rmse(errors: dict, models: np.ndarray, resamples: np.ndarray) -> dict:
    """RMSE of each model on each resample: quantity → (n_models, n_bootstrap)."""
    picked = {key: value[models][:, resamples] for key, value in errors.items()}  # (models, boot, frames)
    return protocol.rmse(picked)


def write_evaluation(split: str = "test", root: str | Path | None = None, data_root: str | None = None) -> dict:
    """Evaluate on ``load_zno(split)`` and write ``artefacts/v2/learning_curves/evaluation_<split>.json``.

    Parameters
    ----------
    split : str
        The held-out split (one of :data:`zno_book.datasets.SPLITS`; "heldout" once it exists).
    root : str or Path, optional
        The book's root.
    data_root : str, optional
        The data folder.

    Returns
    -------
    dict
        ``split``, ``n_held_out``, ``table``, ``curves``, ``differences`` (lists of records).
    """
    held_out = load_zno(split, data_root)
    table, curves = evaluate(held_out, root)
    result = {"split": split, "n_held_out": len(held_out), "n_bootstrap": N_BOOTSTRAP,
              "table": json.loads(table.to_json(orient="records")),
              "curves": json.loads(curves.to_json(orient="records")),
              "differences": json.loads(differences(held_out, root=root).to_json(orient="records"))}
    text = json.dumps(result, indent=1) + "\n"
    write_atomic(curves_root(root) / f"evaluation_{split}.json", lambda handle: handle.write(text.encode()))
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m zno_book.learning_curves {train,evaluate} [--executor local] [--workers 2] [--split test]``.

    ``train`` runs :func:`train`; ``evaluate`` runs :func:`write_evaluation` on ``--split`` and prints the
    curves' RMSEs (quantity and fraction × kind).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0, or 1 if a training task failed.
    """
    parser = argparse.ArgumentParser(prog="python -m zno_book.learning_curves", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "evaluate"])
    parser.add_argument("--executor", choices=executors.KINDS, default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--address", default=None, help="a running Dask scheduler (with --executor dask)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--split", default="test", help=f"held-out split to evaluate on ({', '.join(SPLITS)}, "
                        "or heldout once it exists)")
    parser.add_argument("--root", default=None, help="the book's root (default: $ZNO_BOOK_ROOT or this checkout)")
    parser.add_argument("--data-root", default=None, help="the data folder (default: data/zno under the root)")
    args = parser.parse_args(argv)
    if args.command == "train":
        return 0 if train(args.executor, args.workers, args.address, args.kinds, args.root, args.data_root).ok else 1
    result = write_evaluation(args.split, args.root, args.data_root)
    curves = pd.DataFrame(result["curves"])
    print(curves.pivot_table(index=["quantity", "fraction"], columns="kind", values="rmse").to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
