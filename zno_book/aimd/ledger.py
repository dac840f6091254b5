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
    """Record one DFT evaluation of ``wall_time_s`` seconds of wall time and ``cpu_time_s`` of CPU time
    (kind: "pilot", "statepoint", "run", "relabel", ...; label: what was computed), appended and fsynced."""
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
    """One-core hours spent so far by ``clock`` ("cpu" or "wall"), by kind and in total
    ({"total": h, "<kind>": h, ...}). Entries without a CPU time count with their wall time."""
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
