"""Versioned cache of the chapters' expensive results (long MD, relaxations of many structures).

An artefact is a list of ``ase.Atoms`` (stored as extxyz) or a dict of numpy arrays (stored as ``.npz``,
loaded without pickle) under ``artefacts/v1/<name>.*`` of the book's root (:mod:`zno_book.paths`; every
function also takes the folder as ``root``), with ``<name>.json``
recording the *key* it was computed for (the models' file checksums, the parameters) and the wall time.
:func:`cached` returns the stored result when the key matches and otherwise recomputes, stores and
returns it, so a chapter reads the cache when it is current and regenerates it when a model or a
parameter changed; executing the book (``make book``) refreshes every stale artefact. Commit
``artefacts/v1`` with the models so CI and readers start from a current cache.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

from zno_book.paths import artefacts_dir

__all__ = ["cached", "file_sha256", "load_artefact", "store_artefact"]


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    str
        Hex digest.
    """
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _canonical(key: dict) -> dict:
    try:
        return json.loads(json.dumps(key, sort_keys=True))
    except TypeError as err:
        raise TypeError(f"an artefact key must be JSON-serialisable (numbers, strings, lists, dicts): {err}") from None


def _paths(name: str, root: Path) -> tuple[Path, Path, Path]:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"artefact name {name!r} must be a plain file stem such as 'liquid_md_nnp'")
    return root / f"{name}.json", root / f"{name}.extxyz", root / f"{name}.npz"


def _folder(root: str | Path | None) -> Path:
    return Path(root) if root is not None else artefacts_dir()


def load_artefact(name: str, key: dict, root: str | Path | None = None):
    """The stored artefact ``name`` if it was computed for ``key``, else None.

    Parameters
    ----------
    name : str
        Plain file stem, e.g. ``"liquid_md_nnp"``.
    key : dict
        What it must have been computed for (JSON-serialisable).
    root : str or Path, optional
        The artefact folder (default :func:`zno_book.paths.artefacts_dir`).

    Returns
    -------
    list of ase.Atoms or dict of numpy.ndarray or None
    """
    meta_path, xyz, npz = _paths(name, _folder(root))
    if not meta_path.exists():
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("key") != _canonical(key):
        return None
    if meta["format"] == "extxyz" and xyz.exists() and file_sha256(xyz) == meta["sha256"]:
        return read(xyz, index=":")
    if meta["format"] == "npz" and npz.exists() and file_sha256(npz) == meta["sha256"]:
        with np.load(npz, allow_pickle=False) as arrays:
            return {k: arrays[k] for k in arrays.files}
    return None


def store_artefact(name: str, key: dict, value, seconds: float = float("nan"),
                   root: str | Path | None = None) -> None:
    """Write an artefact and its key; replaces an older version.

    Parameters
    ----------
    name : str
        Plain file stem.
    key : dict
        What it was computed for (JSON-serialisable).
    value : list of ase.Atoms or dict of array_like
        Stored as extxyz or compressed npz.
    seconds : float
        The computation's wall time (s), recorded.
    root : str or Path, optional
        The artefact folder (default :func:`zno_book.paths.artefacts_dir`).

    Raises
    ------
    TypeError
        If ``value`` is neither, or a value of the dict is an object array (it could not be read back).
    """
    canonical = _canonical(key)  # refuses a key that is not JSON-serialisable, before anything is written
    if isinstance(value, dict):
        value = {k: np.asarray(v) for k, v in value.items()}
        objects = sorted(k for k, v in value.items() if v.dtype.kind == "O")
        if objects:
            raise TypeError(f"artefact {name!r}: {objects} are object arrays, which load_artefact cannot read "
                            "back (it loads without pickle); store numbers or strings, e.g. "
                            "np.array(list_of_str) instead of a pandas column's to_numpy()")
    root = _folder(root)
    root.mkdir(parents=True, exist_ok=True)
    meta_path, xyz, npz = _paths(name, root)
    if isinstance(value, dict):
        np.savez_compressed(npz, **value)
        fmt, path = "npz", npz
    elif isinstance(value, (list, tuple)) and all(isinstance(a, Atoms) for a in value):
        write(xyz, list(value), format="extxyz")
        fmt, path = "extxyz", xyz
    else:
        raise TypeError(f"artefact {name!r}: store a list of ase.Atoms or a dict of arrays, not {type(value)}")
    meta = {"name": name, "format": fmt, "key": canonical, "sha256": file_sha256(path),
            "seconds": round(float(seconds), 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S")}
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")


def cached(name: str, key: dict, compute: Callable[[], object], root: str | Path | None = None):
    """``compute()`` once per ``key``: the stored artefact when current, else computed and stored.

    Parameters
    ----------
    name : str
        Plain file stem.
    key : dict
        Everything the result depends on (JSON-serialisable).
    compute : callable
        Returns a list of ase.Atoms or a dict of arrays.
    root : str or Path, optional
        The artefact folder (default :func:`zno_book.paths.artefacts_dir`).

    Returns
    -------
    list of ase.Atoms or dict of numpy.ndarray
        As later runs will read it (after the file round trip).
    """
    value = load_artefact(name, key, root)
    if value is not None:
        return value
    start = time.perf_counter()
    value = compute()
    store_artefact(name, key, value, time.perf_counter() - start, root)
    return load_artefact(name, key, root)  # what later runs will read (extxyz round trip included)
