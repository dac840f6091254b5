"""Crash-safe files: atomic JSON/npz writes, extxyz frames appended with fsync, SHA-256.

A process may be killed at any moment (a session ends); every writer here leaves either the old or the
new complete file, never a half-written one.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

__all__ = ["append_frame", "read_frames", "read_json", "sha256", "truncate", "write_json", "write_npz"]


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically (temporary file + rename).

    Parameters
    ----------
    path : str or Path
        The file (its folder is created).
    data : dict
        JSON-serialisable; written with sorted keys.
    """
    _replace(Path(path), (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


def read_json(path: Path) -> dict:
    """The JSON object in ``path``.

    Parameters
    ----------
    path : str or Path
        A JSON file.

    Returns
    -------
    dict
    """
    with open(path) as fh:
        return json.load(fh)


def write_npz(path: Path, **arrays) -> None:
    """Write numpy arrays to ``path`` (.npz, uncompressed), atomically.

    Parameters
    ----------
    path : str or Path
        The file (its folder is created).
    **arrays
        Name → array; numbers or strings, so that ``np.load`` reads them without pickle.
    """
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _replace(Path(path), buf.getvalue())


def append_frame(path: Path, atoms: Atoms) -> int:
    """Append one extxyz frame (with its calculator results and ``info``) and fsync.

    Parameters
    ----------
    path : str or Path
        The extxyz file (it and its folder are created if missing).
    atoms : ase.Atoms
        The frame.

    Returns
    -------
    int
        The file size in bytes after the append: a reader that records it (e.g. in a checkpoint) can
        later :func:`truncate` the file to drop a frame written after the record or cut by a kill.
    """
    buf = io.StringIO()
    write(buf, atoms, format="extxyz")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as fh:
        fh.write(buf.getvalue().encode())
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def truncate(path: Path, size: int) -> bool:
    """Cut ``path`` to ``size`` bytes if it is longer, and fsync.

    Parameters
    ----------
    path : str or Path
        The file (a missing file counts as 0 bytes).
    size : int
        Bytes to keep.

    Returns
    -------
    bool
        True if anything was cut.

    Raises
    ------
    RuntimeError
        If the file is shorter than ``size`` (frames the record says were written are missing).
    """
    path = Path(path)
    actual = path.stat().st_size if path.exists() else 0
    if actual < size:
        raise RuntimeError(f"{path} has {actual} bytes, fewer than the {size} recorded: frames are missing")
    if actual == size:
        return False
    with open(path, "r+b") as fh:
        fh.truncate(size)
        fh.flush()
        os.fsync(fh.fileno())
    return True


def read_frames(path: Path) -> list[Atoms]:
    """All frames of an extxyz file.

    Parameters
    ----------
    path : str or Path
        The extxyz file.

    Returns
    -------
    list of ase.Atoms
        Empty if the file does not exist or is empty.
    """
    path = Path(path)
    return read(path, ":", format="extxyz") if path.exists() and path.stat().st_size else []


def sha256(path: Path) -> str:
    """Hex SHA-256 of the file's bytes.

    Parameters
    ----------
    path : str or Path
        The file (read in 1 MiB blocks).

    Returns
    -------
    str
        64 hexadecimal digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
