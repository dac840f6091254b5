"""Published values beside the book's own: one file, ``literature.json`` in this package, with the source
of every number (a key of ``book/references.bib`` and its DOI, or a note saying where it comes from).

Every value is a range ``(low, high)`` (equal ends for a single value, ``high`` NaN for "at least
low", both NaN where there is none) of one ``kind``: ``"pbe"`` (typical published plane-wave PBE
values), ``"experiment"`` or ``"materials_project"``. Units: see :func:`units` (energies in eV per ZnO,
relative to wurtzite; lengths in Å; B0 in GPa; surface energies in J/m²).
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from importlib.resources import files

import numpy as np

__all__ = ["NONE", "Value", "labels", "position", "ranges", "sources", "span", "units", "values"]

#: The range of a quantity without a value.
NONE = (float("nan"), float("nan"))


@dataclasses.dataclass(frozen=True)
class Value:
    """One published value: ``phase``, ``quantity`` (a key of :func:`units`), ``kind``, the range
    ``low``–``high`` (NaN: none), ``source`` (a key of :func:`sources`) and a short ``label``."""

    phase: str
    quantity: str
    kind: str
    low: float
    high: float
    source: str
    label: str = ""


@cache
def _content() -> dict:
    return json.loads(files("zno_book").joinpath("literature.json").read_text(encoding="utf-8"))


def values() -> list[Value]:
    """Every value of the file, in its order.

    Returns
    -------
    list of Value
    """
    out = []
    for entry in _content()["values"]:
        low, high = (float("nan") if entry[k] is None else float(entry[k]) for k in ("low", "high"))
        out.append(Value(entry["phase"], entry["quantity"], entry["kind"], low, high, entry["source"],
                         entry.get("label", "")))
    return out


def ranges(kind: str) -> dict[tuple[str, str], tuple[float, float]]:
    """The values of one kind as ranges.

    Parameters
    ----------
    kind : str
        ``"pbe"``, ``"experiment"`` or ``"materials_project"``.

    Returns
    -------
    dict
        ``{(phase, quantity): (low, high)}``.
    """
    known = _content()["kinds"]
    if kind not in known:
        raise ValueError(f"unknown kind {kind!r}; the file has {sorted(known)}")
    return {(v.phase, v.quantity): (v.low, v.high) for v in values() if v.kind == kind}


def labels(kind: str) -> dict[tuple[str, str], str]:
    """The short labels of the values of one kind (e.g. "Kisi & Elcombe 1989").

    Parameters
    ----------
    kind : str
        As in :func:`ranges`.

    Returns
    -------
    dict
        ``{(phase, quantity): label}``.
    """
    ranges(kind)
    return {(v.phase, v.quantity): v.label for v in values() if v.kind == kind}


def sources() -> dict[str, dict]:
    """The sources: key → ``{"cite": bib key or None, "doi", "reference", "note"}``.

    Returns
    -------
    dict
    """
    return dict(_content()["sources"])


def units() -> dict[str, str]:
    """The unit of each quantity.

    Returns
    -------
    dict
        quantity → unit.
    """
    return dict(_content()["units"])


def span(lo_hi: tuple[float, float], fmt: str) -> str:
    """A range as text: ``"3.280–3.290"``, one number for equal ends, ``"≥ 1.000"`` without an upper end,
    ``""`` without a value.

    Parameters
    ----------
    lo_hi : tuple of float
        (low, high).
    fmt : str
        Format of each number, e.g. ``".3f"``.

    Returns
    -------
    str
    """
    lo, hi = lo_hi
    if np.isnan(lo):
        return ""
    if np.isnan(hi):
        return f"≥ {lo:{fmt}}"
    return f"{lo:{fmt}}" if lo == hi else f"{lo:{fmt}}–{hi:{fmt}}"


def position(value: float, lo_hi: tuple[float, float]) -> str:
    """Where a value lies relative to a range: ``"inside"``, or by how many per cent it lies below or above.

    Parameters
    ----------
    value : float
        The number compared.
    lo_hi : tuple of float
        (low, high); high NaN: no upper end.

    Returns
    -------
    str
        ``""`` for a non-finite value or a range without a value.
    """
    lo, hi = lo_hi
    if not np.isfinite(value) or np.isnan(lo):
        return ""
    if value < lo or (np.isfinite(hi) and value > hi):
        pct = 100 * (value / (lo if value < lo else hi) - 1)
        return f"{pct:+.{2 if abs(pct) >= 0.01 else 3}f} % {'below' if value < lo else 'above'}"
    return "inside"
