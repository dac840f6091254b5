"""Headline numbers that chapters record for the closing chapter, with what they were computed from.

A chapter calls :func:`record` with a few rows, one per test::

    {"test": "γ(10-10), relaxed", "unit": "J/m²", "better": "closer",
     "DFT": 0.80, "linear-BP": 0.55, "PLIP": 1.20, "NNP": 0.71}

``better`` says how the models are ranked on that row: ``"closer"`` to DFT, ``"lower"``, ``"higher"``,
or ``None`` (a number that describes, not ranks). The rows are written to
``artefacts/v1/findings/<chapter>.json`` with a *key*: the checksums of the model files and of the data
files the chapter read. :func:`collect` returns the rows of several chapters and refuses, naming the
chapter to execute, any whose key no longer matches the current models and data, so the closing chapter
never quotes a number that the chapters would not reproduce today.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from zno_book import zoo
from zno_book.datasets import split_file
from zno_book.paths import data_dir, findings_dir

__all__ = ["MODEL_COLUMNS", "RANKINGS", "StaleFindings", "collect", "current_key", "ranks", "record"]

#: Relative (and absolute) tolerance within which recorded numbers count as unchanged: findings are
#: computed again on every execution, and another CPU or BLAS rounds differently in the last digits.
RTOL = 1e-6
RANKINGS = ("closer", "lower", "higher", None)
MODEL_COLUMNS = tuple(zoo.LABELS[k] for k in zoo.KINDS)


class StaleFindings(RuntimeError):
    """Raised by :func:`collect` when a chapter's findings are missing or were made from other models or data."""


def current_key(data: Sequence[str], data_root: str | Path | None = None,
                models_root: str | Path | None = None) -> dict:
    """The checksums the findings depend on: every shipped model and committee file, and the files of the
    data splits ``data`` as the data manifest records them.

    Parameters
    ----------
    data : sequence of str
        Data splits, such as ``"liquid"``, ``"test"``.
    data_root : str or Path, optional
        The data folder (default :func:`zno_book.paths.data_dir`).
    models_root : str or Path, optional
        The models folder (default :func:`zno_book.paths.models_dir`).

    Returns
    -------
    dict
        ``{"models": {entry: sha256}, "data": {file: sha256}}``.
    """
    manifest = (Path(data_root) if data_root is not None else data_dir()) / "manifest.json"
    files = json.loads(manifest.read_text())["files"]
    names = {split_file(d) for d in data}
    missing = sorted(names - set(files))
    if missing:
        raise ValueError(f"{missing} not listed in {manifest}: generate those data first")
    models = {zoo.entry_name(k, c): zoo.fingerprint(k, c, models_root) for k in zoo.KINDS for c in (False, True)}
    return {"models": models, "data": {name: files[name]["sha256"] for name in sorted(names)}}


def _number(value):
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else round(value, 6)


def _check_row(chapter: str, row: dict) -> dict:
    unknown = set(row) - {"test", "unit", "better", "DFT", *MODEL_COLUMNS}
    if unknown or "test" not in row or "unit" not in row:
        raise ValueError(f"{chapter}: a findings row needs 'test' and 'unit' and may have 'better', 'DFT', "
                         f"{', '.join(MODEL_COLUMNS)}; got {sorted(row)}")
    if row.get("better") not in RANKINGS:
        raise ValueError(f"{chapter}, {row['test']!r}: better must be one of {RANKINGS}, not {row.get('better')!r}")
    if row.get("better") == "closer" and _number(row.get("DFT")) is None:
        raise ValueError(f"{chapter}, {row['test']!r}: ranking by closeness to DFT needs a DFT value")
    return {"test": str(row["test"]), "unit": str(row["unit"]), "better": row.get("better"),
            "DFT": _number(row.get("DFT")), **{m: _number(row.get(m)) for m in MODEL_COLUMNS}}


def _folder(root: str | Path | None) -> Path:
    return Path(root) if root is not None else findings_dir()


def record(chapter: str, rows: Sequence[dict], data: Sequence[str], root: str | Path | None = None) -> Path:
    """Store ``rows`` as the findings of ``chapter``, keyed by the current models and data files.

    The file is rewritten only when its content changes.

    Parameters
    ----------
    chapter : str
        The notebook stem.
    rows : sequence of dict
        Findings rows (see the module docstring).
    data : sequence of str
        The data splits the chapter read.
    root : str or Path, optional
        The findings folder (default :func:`zno_book.paths.findings_dir`).

    Returns
    -------
    Path
        The findings file.
    """
    path = _folder(root) / f"{chapter}.json"
    content = {"chapter": chapter, "key": current_key(data), "rows": [_check_row(chapter, r) for r in rows]}
    if not path.exists() or not _agree(json.loads(path.read_text()), content):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")
    return path


def _agree(stored, new, rtol: float = RTOL) -> bool:
    """Whether two findings contents are the same up to ``rtol`` in every number (another machine's rounding
    must not rewrite a committed file), and identical in everything else."""
    if isinstance(stored, dict) and isinstance(new, dict):
        return stored.keys() == new.keys() and all(_agree(stored[k], new[k], rtol) for k in stored)
    if isinstance(stored, list) and isinstance(new, list):
        return len(stored) == len(new) and all(_agree(a, b, rtol) for a, b in zip(stored, new))
    if isinstance(stored, float) and isinstance(new, float):
        return math.isclose(stored, new, rel_tol=rtol, abs_tol=rtol)
    return stored == new


def collect(chapters: Sequence[str], root: str | Path | None = None) -> list[dict]:
    """The findings rows of ``chapters``, each with its ``chapter``.

    Parameters
    ----------
    chapters : sequence of str
        Notebook stems.
    root : str or Path, optional
        The findings folder (default :func:`zno_book.paths.findings_dir`).

    Returns
    -------
    list of dict

    Raises
    ------
    StaleFindings
        Listing every chapter whose findings are missing or were recorded for other models or data.
    """
    rows, problems = [], []
    for chapter in chapters:
        path = _folder(root) / f"{chapter}.json"
        if not path.exists():
            problems.append(f"{chapter}: no findings recorded ({path} is missing)")
            continue
        content = json.loads(path.read_text())
        key = content["key"]
        current = current_key([name.removesuffix(".extxyz") for name in key["data"]])
        changed = [f"model {m}" for m in current["models"] if key["models"].get(m) != current["models"][m]]
        changed += [f"data {d}" for d in current["data"] if key["data"][d] != current["data"][d]]
        if changed:
            problems.append(f"{chapter}: recorded for other {', '.join(changed)}")
            continue
        rows += [{"chapter": chapter, **r} for r in content["rows"]]
    if problems:
        raise StaleFindings("findings out of date; execute these chapters (book/<chapter>.ipynb) first:\n  "
                            + "\n  ".join(problems))
    return rows


def ranks(row: dict) -> dict[str, int | None]:
    """Rank of each model on one findings row (1 = best; ties share a rank).

    Parameters
    ----------
    row : dict
        A findings row.

    Returns
    -------
    dict of str to int or None
        None for a model without a number, and for every model when the row has ``better=None``.
    """
    if row.get("better") is None:
        return {m: None for m in MODEL_COLUMNS}
    score = {}
    for m in MODEL_COLUMNS:
        value = row.get(m)
        if value is None or math.isnan(value):
            continue
        badness = {"closer": lambda v: abs(v - row["DFT"]), "lower": lambda v: v, "higher": lambda v: -v}
        score[m] = badness[row["better"]](value)
    return {m: (1 + sum(s < score[m] for s in score.values()) if m in score else None) for m in MODEL_COLUMNS}
