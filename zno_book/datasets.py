"""The ZnO DFT reference data shipped in ``data/zno`` (how it was made: ``data/zno/README.md``).

``load_zno(split)`` returns a list of ``ase.Atoms`` with ``info["energy"]`` (eV), ``arrays["forces"]``
(eV/Å), ``info["stress"]`` (eV/Å³, Voigt xx yy zz yz xz xy, ASE sign; periodic frames only) and
``info["config_type"]``. Files are checked against the SHA-256 sums in ``manifest.json``. The data
folder is an argument; by default :func:`zno_book.paths.data_dir` (``$ZNO_BOOK_ROOT/data/zno``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read

from zno_book.paths import data_dir

__all__ = ["SPLITS", "is_test_task", "load_zno", "split_file", "verify_checksum"]

#: "train" and "test" partition train.extxyz (test: ~10 %, by task name); the others are one file each;
#: "heldout" is the held-out set of issue 17 (heldout.extxyz), never used for any choice.
SPLITS = ("train", "test", "all_train", "eos", "surfaces", "nanoparticles", "liquid", "convergence", "phonons",
          "heldout")


def is_test_task(name: str) -> bool:
    """Deterministic ~10 % hold-out of the training pool, by a hash of the task name.

    Parameters
    ----------
    name : str
        A task name.

    Returns
    -------
    bool
        True for a held-out task.
    """
    return int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10 == 0


def split_file(split: str) -> str:
    """The file that holds a split.

    Parameters
    ----------
    split : str
        One of :data:`SPLITS`.

    Returns
    -------
    str
        File name in the data folder, e.g. ``"train.extxyz"``.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {SPLITS}")
    return f"{'train' if split in ('test', 'all_train') else split}.extxyz"


def load_zno(split: str = "train", root: str | Path | None = None, verify: bool = True) -> list[Atoms]:
    """Frames of one split: ``"train"`` (training pool minus the hold-out), ``"test"`` (the hold-out),
    ``"all_train"`` (both), or a file split ``"eos"``, ``"surfaces"``, ``"nanoparticles"``, ``"liquid"``,
    ``"convergence"``, ``"phonons"``, ``"heldout"`` (rattled, thermal-like and short-contact 8-atom cells
    of the six polymorphs, never used for any choice: see ``zno_book.reference.plan.heldout_tasks``).

    Parameters
    ----------
    split : str
        One of :data:`SPLITS`.
    root : str or Path, optional
        The data folder (default :func:`zno_book.paths.data_dir`).
    verify : bool
        Check the file against its SHA-256 in ``manifest.json`` first.

    Returns
    -------
    list of ase.Atoms
        Frames with ``info["energy"]``, ``arrays["forces"]`` and, for periodic ones, ``info["stress"]``.
    """
    root = Path(root) if root is not None else data_dir()
    path = root / split_file(split)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the '{split}' data have not been generated or shipped; "
                                f"see {root / 'README.md'} (python -m zno_book.reference run)")
    if verify:
        verify_checksum(path, root / "manifest.json")
    frames = [_as_reference(a) for a in read(path, index=":")]
    if split == "train":
        frames = [a for a in frames if not is_test_task(a.info["task"])]
    elif split == "test":
        frames = [a for a in frames if is_test_task(a.info["task"])]
    return frames


def verify_checksum(path: Path, manifest: Path) -> None:
    """Raise unless ``path`` matches the SHA-256 that ``manifest`` records for it.

    Parameters
    ----------
    path : Path
        A data file.
    manifest : Path
        The data manifest (``manifest.json``).
    """
    if not manifest.exists():
        raise FileNotFoundError(f"{manifest} is missing; rebuild it with `python -m zno_book.reference manifest`")
    entry = json.loads(manifest.read_text())["files"].get(path.name)
    if entry is None:
        raise ValueError(f"{path.name} is not listed in {manifest}; rebuild the manifest")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != entry["sha256"]:
        raise ValueError(f"{path} does not match its SHA-256 in {manifest} (file changed or corrupted); "
                         f"restore it from the repository or rebuild the manifest if you changed it on purpose")


def _as_reference(atoms: Atoms) -> Atoms:
    """Move the stored DFT results from the single-point calculator into info/arrays."""
    results = atoms.calc.results if atoms.calc is not None else {}
    atoms.calc = None
    atoms.info["energy"] = float(results["energy"])
    atoms.arrays["forces"] = np.array(results["forces"], dtype=float)
    if "stress" in results:
        atoms.info["stress"] = np.array(results["stress"], dtype=float)
    return atoms
