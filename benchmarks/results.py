"""The benchmarks' results file, ``benchmarks/results.json``, which the book's Performance page plots.

One section per benchmark script, replaced whole by each run of that script with ``--record``: the date,
the command, the machine (processor, cores, memory, load average before and after the run, the versions
of the packages that matter) and the rows the script printed. Numbers are never typed into the file.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import sys
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).with_name("results.json")


def load_average() -> list[float]:
    """The 1-, 5- and 15-minute load averages, rounded to 0.01."""
    return [round(x, 2) for x in os.getloadavg()]


def machine(packages) -> dict:
    """The machine and the versions of ``packages`` (distribution names).

    Parameters
    ----------
    packages : iterable of str
        Distributions whose versions matter to the numbers (e.g. numba, dscribe).

    Returns
    -------
    dict
        ``processor``, ``cores``, ``memory_gb``, ``system``, ``python``, ``packages``.
    """
    with open("/proc/meminfo") as meminfo:
        memory_kb = int(meminfo.readline().split()[1])
    return {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "memory_gb": round(memory_kb / 1e6, 1), "system": platform.platform(),
            "python": platform.python_version(), "packages": {name: version(name) for name in packages}}


def record(section: str, rows: list[dict], packages, load_before: list[float], **extra) -> None:
    """Replace ``section`` of the results file with this run.

    Parameters
    ----------
    section : str
        The benchmark's name (its script's stem).
    rows : list of dict
        The measurements, one dict per printed row, units in the keys (``_s``, ``_us``, ...).
    packages : iterable of str
        Distributions whose versions are recorded.
    load_before : list of float
        Load averages when the run started (:func:`load_average`).
    **extra
        Further fields of the section (settings of the run).
    """
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    data[section] = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                     "command": shlex.join(["python", *sys.argv]), "machine": machine(packages),
                     "load_average_before": load_before, "load_average_after": load_average(), **extra,
                     "rows": rows}
    RESULTS.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"recorded in {RESULTS} [{section}]")
