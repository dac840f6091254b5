"""Where the book's files are: one configurable root, and the folders derived from it.

The root is the folder holding ``data/zno`` (the DFT reference data), ``models/v1`` (the shipped models)
and ``artefacts/v1`` (cached results and findings): the repository. It is, in this order,

1. the ``root`` argument of :func:`book_root` (every function of :mod:`zno_book` that reads or writes
   files also takes its folder as an argument);
2. the environment variable ``ZNO_BOOK_ROOT``;
3. the source checkout this package was imported from (an editable install or ``PYTHONPATH``).

Installed elsewhere (a wheel in site-packages) without ``ZNO_BOOK_ROOT``, :func:`book_root` raises and
says how to set it. Paths are resolved when a function is called, never at import, so setting the
variable (or ``monkeypatch.setenv`` in a test) redirects every default at once.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ARTEFACTS_VERSION",
    "ENV_VAR",
    "MODELS_VERSION",
    "artefacts_dir",
    "book_root",
    "data_dir",
    "findings_dir",
    "models_dir",
]

#: Environment variable naming the root folder.
ENV_VAR = "ZNO_BOOK_ROOT"
#: Version folders of the shipped models and of the artefact cache.
MODELS_VERSION = "v1"
ARTEFACTS_VERSION = "v1"


def _checkout() -> Path | None:
    """The repository this package sits in, if it was imported from a source checkout."""
    candidate = Path(__file__).resolve().parents[1]
    return candidate if (candidate / "pyproject.toml").is_file() and (candidate / "zno_book").is_dir() else None


def book_root(root: str | Path | None = None) -> Path:
    """The root folder (the repository: ``data/zno``, ``models/v1``, ``artefacts/v1`` below it).

    Parameters
    ----------
    root : str or Path, optional
        Returned as given when not None.

    Returns
    -------
    Path
        ``root``, else ``$ZNO_BOOK_ROOT``, else the source checkout holding this package.

    Raises
    ------
    FileNotFoundError
        ``ZNO_BOOK_ROOT`` names a folder that does not exist.
    RuntimeError
        No root given, no ``ZNO_BOOK_ROOT``, and the package is not in a source checkout.
    """
    if root is not None:
        return Path(root)
    value = os.environ.get(ENV_VAR)
    if value:
        path = Path(value).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"{ENV_VAR}={value} is not a folder; point it at the book's repository "
                                    "(the folder with data/zno, models/v1 and artefacts/v1)")
        return path
    checkout = _checkout()
    if checkout is None:
        raise RuntimeError(f"zno_book is installed at {Path(__file__).resolve().parent}, outside a checkout of the "
                           f"book, so it cannot guess where the data are: set the environment variable {ENV_VAR} "
                           "to the book's repository (export ZNO_BOOK_ROOT=/path/to/repository, the folder with "
                           "data/zno, models/v1 and artefacts/v1) or pass the folders explicitly")
    return checkout


def data_dir(root: str | Path | None = None) -> Path:
    """The DFT reference data folder, ``<root>/data/zno`` (root: see :func:`book_root`).

    Parameters
    ----------
    root : str or Path, optional
        The book's root folder.

    Returns
    -------
    Path
    """
    return book_root(root) / "data" / "zno"


def models_dir(root: str | Path | None = None) -> Path:
    """The shipped models' folder, ``<root>/models/v1`` (root: see :func:`book_root`).

    Parameters
    ----------
    root : str or Path, optional
        The book's root folder.

    Returns
    -------
    Path
    """
    return book_root(root) / "models" / MODELS_VERSION


def artefacts_dir(root: str | Path | None = None) -> Path:
    """The artefact cache, ``<root>/artefacts/v1`` (root: see :func:`book_root`).

    Parameters
    ----------
    root : str or Path, optional
        The book's root folder.

    Returns
    -------
    Path
    """
    return book_root(root) / "artefacts" / ARTEFACTS_VERSION


def findings_dir(root: str | Path | None = None) -> Path:
    """The chapters' findings, ``<root>/artefacts/v1/findings`` (root: see :func:`book_root`).

    Parameters
    ----------
    root : str or Path, optional
        The book's root folder.

    Returns
    -------
    Path
    """
    return artefacts_dir(root) / "findings"
