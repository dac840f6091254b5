"""The DFT budget ledger: one JSON line per completed DFT evaluation (pilot, state point, run, re-labels).

``<root>/aimd/ledger.jsonl``. Every process here is serial (one core); its one-core hours are the sum of
``cpu_time_s`` (the CPU the evaluations took) and, as ``data/zno/README.md`` counts them, of
``wall_time_s`` (larger when other processes share the core). A step killed before it finished is not
in the ledger.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

__all__ = ["LEDGER", "charge", "core_hours"]

LEDGER = "ledger.jsonl"


def charge(aimd_dir: Path, kind: str, label: str, wall_time_s: float, cpu_time_s: float) -> None:
    """Record one DFT evaluation: a line appended to ``<aimd_dir>/ledger.jsonl`` and fsynced.

    Parameters
    ----------
    aimd_dir : str or Path
        The folder of the ledger (created if missing), e.g. ``<root>/aimd``.
    kind : str
        "pilot", "statepoint", "run", "relabel", ...: what :func:`core_hours` adds up by.
    label : str
        What was computed, e.g. ``"pw400_gamma/plip_frame01_s1"``.
    wall_time_s : float
        Wall time of the evaluation (s; recorded to the millisecond).
    cpu_time_s : float
        CPU time of the evaluation (s; recorded to the millisecond).
    """
    line = json.dumps({"kind": kind, "label": label, "wall_time_s": round(float(wall_time_s), 3),
                       "cpu_time_s": round(float(cpu_time_s), 3),
                       "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n"
    path = Path(aimd_dir) / LEDGER
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(line)
        fh.flush()
        os.fsync(fh.fileno())


def core_hours(aimd_dir: Path, clock: str = "cpu") -> dict:
    """One-core hours spent so far, by kind and in total.

    Parameters
    ----------
    aimd_dir : str or Path
        The folder of the ledger (no ledger: nothing spent).
    clock : {"cpu", "wall"}
        Which time to add up. With "cpu", entries without a CPU time count with their wall time.

    Returns
    -------
    dict of str to float
        ``{"<kind>": h, ..., "total": h}``, one-core hours rounded to 0.001 h (the total is the sum of
        the rounded kinds).

    Raises
    ------
    ValueError
        If ``clock`` is neither "cpu" nor "wall".
    """
    if clock not in ("cpu", "wall"):
        raise ValueError(f"clock must be 'cpu' or 'wall', got {clock!r}")
    path = Path(aimd_dir) / LEDGER
    spent: dict[str, float] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                seconds = entry.get(f"{clock}_time_s", entry["wall_time_s"])
                spent[entry["kind"]] = spent.get(entry["kind"], 0.0) + seconds / 3600
    spent = {k: round(v, 3) for k, v in sorted(spent.items())}
    spent["total"] = round(sum(spent.values()), 3)
    return spent
