"""Wall time and peak memory of each chapter, executed cold in a process of its own.

    python scripts/chapter_budget.py                        # every notebook chapter of _toc.yml, in its order
    python scripts/chapter_budget.py --chapters linear nnp  # some chapters (names as in book/<name>.ipynb)
    python scripts/chapter_budget.py --warm-numba           # keep Numba's on-disk cache (default: an empty one)
    python scripts/chapter_budget.py --warmed               # a cache filled by scripts/warm_numba.py only

Each chapter runs as ``python scripts/chapter_budget.py --execute book/<name>.ipynb``: nbclient starts a
fresh IPython kernel (working directory ``book/``, as ``make book`` runs it), executes every cell and
discards the outputs. This process samples every 0.1 s the memory of that process and of all its
descendants (the kernel is one), with psutil, and keeps the largest sum: ``peak_rss_mb`` (resident set
sizes added up, shared pages counted in each process: an upper bound) and ``peak_pss_mb`` (proportional
set sizes, shared pages split between the processes: what the tree occupies). The wall time runs from the
start of the process to its exit, kernel start-up included. Unless ``--warm-numba`` is given, each chapter
gets a new, empty Numba cache folder (``NUMBA_CACHE_DIR``), so its time includes compiling the kernels it
uses, as for a reader who opens that chapter first in an environment where nothing compiled them. With
``--warmed`` a new cache is first filled by ``scripts/warm_numba.py`` (which Binder's ``postBuild`` runs
when the image is built) and every chapter starts from it: what a reader in Binder meets.

Chapters run in the order of ``_toc.yml`` because the closing chapter reads the findings that the others
record. Writes ``book/_static/chapter_budget.json`` (machine, date, load average, the budget and one row
per chapter with its own date and load average), which the page "How to use this book" renders as a
table. With ``--chapters`` the other chapters' rows of the file are kept (same mode), so a changed
chapter can be re-measured alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import nbclient
import nbformat
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "book" / "_static" / "chapter_budget.json"
#: the budget of issue 20 (what Binder gives: about 1-2 GB, 2 cores), per chapter. Time is judged as CPU
#: time: on a shared machine the wall time also counts waiting for a core, while on a machine of its own a
#: chapter takes at most its CPU time (less where Numba or BLAS use both cores).
BUDGET = {"cpu_s": 120.0, "peak_mb": 2000.0}
SAMPLE_S = 0.1
MB = 1e6


def toc_notebooks(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The notebook chapters of the table of contents, in reading order.

    Parameters
    ----------
    toc : Path
        The book's ``_toc.yml``.

    Returns
    -------
    list of str
        Chapter names (``book/<name>.ipynb`` exists for each), root first, depth first.
    """
    entries = yaml.safe_load(toc.read_text())

    def files(node):
        if isinstance(node, dict):
            if "file" in node:
                yield node["file"]
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key, []):
                    yield from files(child)

    names = [entries["root"], *files(entries)]
    return [Path(name).name for name in names if (ROOT / f"{name}.ipynb").exists()]


def execute(notebook: Path) -> None:
    """Execute ``notebook`` in a fresh kernel, outputs discarded (the child process's work).

    Prints one JSON line with, from ``getrusage`` of this process and of its waited-for children (the
    kernel): the CPU time (user + system), which a loaded machine does not inflate as it does the wall
    time, and the largest resident set size of one process, a cross-check of the sampled peak that cannot
    miss a spike.

    Parameters
    ----------
    notebook : Path
        The ``.ipynb`` file; its folder is the kernel's working directory.
    """
    nb = nbformat.read(notebook, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(notebook.parent)}})
    client.execute()
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    print(json.dumps({"cpu_s": sum(u.ru_utime + u.ru_stime for u in usage),
                      "largest_process_rss_mb": max(u.ru_maxrss for u in usage) * 1e3 / MB}))  # ru_maxrss: kB


def tree_memory(process: psutil.Process) -> tuple[float, float]:
    """Resident and proportional set sizes of ``process`` and all its descendants, summed (bytes).

    Parameters
    ----------
    process : psutil.Process
        The root of the tree.

    Returns
    -------
    rss, pss : float
        Sums over the processes still alive (one may exit between listing and reading: it is skipped).
    """
    rss = pss = 0.0
    for member in [process, *process.children(recursive=True)]:
        try:
            info = member.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss


def measure(name: str, warm_numba: bool) -> dict:
    """Run chapter ``name`` in a child process and measure it.

    Parameters
    ----------
    name : str
        Chapter name, ``book/<name>.ipynb``.
    warm_numba : bool
        Keep the Numba cache of the environment (else a new empty ``NUMBA_CACHE_DIR``).

    Returns
    -------
    dict
        ``chapter``, ``ok``, ``wall_s`` and ``cpu_s`` (s), ``peak_rss_mb``, ``peak_pss_mb``,
        ``largest_process_rss_mb`` (MB = 10⁶ bytes), ``within_budget`` (CPU time and RSS sum) and, on
        failure, ``error`` (the last lines of stderr).
    """
    notebook = ROOT / "book" / f"{name}.ipynb"
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
        if not warm_numba:
            env["NUMBA_CACHE_DIR"] = cache
        start = time.perf_counter()
        child = subprocess.Popen([sys.executable, __file__, "--execute", str(notebook)], cwd=ROOT, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        process = psutil.Process(child.pid)
        peak_rss = peak_pss = 0.0
        while child.poll() is None:
            rss, pss = tree_memory(process)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(SAMPLE_S)
        stdout, stderr = child.communicate()
        wall = time.perf_counter() - start
    row = {"chapter": name, "ok": child.returncode == 0, "wall_s": round(wall, 1),
           "peak_rss_mb": round(peak_rss / MB), "peak_pss_mb": round(peak_pss / MB)}
    if row["ok"]:
        usage = json.loads(stdout.strip().splitlines()[-1])
        row["cpu_s"] = round(usage["cpu_s"], 1)
        row["largest_process_rss_mb"] = round(usage["largest_process_rss_mb"])
    else:
        row["error"] = "\n".join(stderr.strip().splitlines()[-8:])
    row["within_budget"] = row["ok"] and row["cpu_s"] <= BUDGET["cpu_s"] and peak_rss / MB <= BUDGET["peak_mb"]
    return row


def machine() -> dict:
    """The machine the measurement ran on: processor, cores, memory, Python and the main packages."""
    return {"processor": platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "system": platform.platform(),
            "python": platform.python_version(),
            "packages": {name: version(name) for name in ("numpy", "numba", "torch", "ase", "scikit-learn")}}


MODES = {"cold": "cold: new process, new kernel, empty Numba cache",
         "warm": "warm Numba cache",
         "warmed": "new process and kernel, Numba cache filled only by scripts/warm_numba.py (as Binder's image)"}


def warm_up() -> float:
    """Fill a new Numba cache with ``scripts/warm_numba.py`` for this process and its children.

    Returns
    -------
    float
        Wall time of the warm-up (s).
    """
    os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-warmed-")
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "warm_numba.py")], check=True, cwd=ROOT,
                   env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    return round(time.perf_counter() - start, 1)


def earlier_rows(output: Path, mode: str) -> dict:
    """The rows of an earlier measurement in the same mode, by chapter (empty if there is none).

    ``--chapters`` re-measures some chapters: their rows are replaced, the others kept with the date
    and load of their own measurement.

    Parameters
    ----------
    output : Path
        The measurement file.
    mode : str
        Cold or warm Numba cache: rows of the other mode are not kept.

    Returns
    -------
    dict
        Chapter name → row.
    """
    if not output.exists():
        return {}
    record = json.loads(output.read_text())
    if record.get("mode") != mode:
        return {}
    return {row["chapter"]: {"measured": record["date"], "load_average_before": record["load_average_before"][0],
                             **row} for row in record["chapters"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chapters", nargs="+", help="chapter names (default: every notebook of _toc.yml)")
    parser.add_argument("--warm-numba", action="store_true", help="keep Numba's on-disk cache")
    parser.add_argument("--warmed", action="store_true",
                        help="start every chapter from a Numba cache that only scripts/warm_numba.py filled")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--execute", type=Path, help=argparse.SUPPRESS)  # the child's mode
    args = parser.parse_args(argv)
    if args.execute is not None:
        execute(args.execute)
        return 0
    chapters = toc_notebooks()
    unknown = set(args.chapters or ()) - set(chapters)
    if unknown:
        parser.error(f"not notebook chapters of _toc.yml: {sorted(unknown)}; choose from {chapters}")
    if args.chapters:
        chapters = [name for name in chapters if name in args.chapters]
    record = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "machine": machine(), "load_average_before": [round(x, 2) for x in os.getloadavg()],
              "mode": MODES["warmed" if args.warmed else "warm" if args.warm_numba else "cold"],
              "budget": BUDGET, "chapters": []}
    if args.warmed:
        record["warm_up_wall_s"] = warm_up()
    previous = earlier_rows(args.output, record["mode"]) if args.chapters else {}
    for name in chapters:
        load = round(os.getloadavg()[0], 2)
        row = {**measure(name, args.warm_numba or args.warmed), "load_average_before": load,
               "measured": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        previous[name] = row
        status = "ok" if row["ok"] else "FAILED"
        print(f"{name:<20} {status:<6} {row['wall_s']:7.1f} s wall {row.get('cpu_s', float('nan')):7.1f} s CPU  "
              f"peak {row['peak_rss_mb']:5d} MB (RSS sum), {row['peak_pss_mb']:5d} MB (PSS sum)  "
              f"{'within' if row['within_budget'] else 'OVER'} budget", flush=True)
        if not row["ok"]:
            print(row["error"], file=sys.stderr)
    record["chapters"] = [previous[name] for name in toc_notebooks() if name in previous]
    record["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {args.output}")
    return 0 if all(row["ok"] for row in record["chapters"]) else 1


if __name__ == "__main__":
    sys.exit(main())
