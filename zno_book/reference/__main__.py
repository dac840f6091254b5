"""Command line: ``python -m zno_book.reference {run,dry-run,sample,manifest} [options]``.

run       run pending DFT tasks with N single-core workers (resumable; skips finished tasks)
dry-run   list what remains, with rough cost estimates (reads the data folder, writes nothing)
sample    make the candidate frames that some tasks label (liquid: GFN1-xTB MD with tblite; thermal
          snapshots of the crystals: MD with a linear-BP fitted to the tier-1 frames; each shipped
          model's optima of the nanoparticles (nanoparticles/<cluster>/at_<kind>) and frames of its own
          liquid MD at the reference state (liquid/at_<kind>/frameNN))
manifest  rewrite manifest.json (checksums, counts, settings) from the data files

The data folder (--root) must hold a manifest.json, so that a mistyped folder is not taken for a new
data set; pass --new to start one in a folder without a manifest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from zno_book.paths import ENV_VAR, data_dir
from zno_book.reference.engine import DFTSettings
from zno_book.reference.plan import THERMAL_CANDIDATES
from zno_book.reference.runner import Store, dry_run, work
from zno_book.reference.sampling import (
    sample_liquid,
    sample_liquid_models,
    sample_nanoparticle_optima,
    sample_thermal,
)

COMMANDS = ("run", "dry-run", "sample", "manifest", "worker")


def positive_int(text: str) -> int:
    """argparse type: an integer ≥ 1.

    Parameters
    ----------
    text : str
        The command-line value.

    Returns
    -------
    int

    Raises
    ------
    argparse.ArgumentTypeError
        For anything else (argparse then prints the usage and exits with status 2).
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be ≥ 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    """The command-line parser.

    Returns
    -------
    argparse.ArgumentParser
    """
    p = argparse.ArgumentParser(prog="python -m zno_book.reference", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("--root", default=None,
                   help=f"data folder (default: data/zno under ${ENV_VAR}, else under the source checkout)")
    p.add_argument("--new", action="store_true", help="allow a data folder without manifest.json (a new data set)")
    p.add_argument("--workers", type=positive_int, default=2, help="parallel single-core workers for run")
    p.add_argument("--max-priority", type=int, default=None, help="only tasks with priority ≤ this")
    p.add_argument("--only", default=None, help="only tasks whose name starts with this prefix")
    return p


def start_workers(root: Path, workers: int, max_priority: int | None, only: str | None) -> int:
    """Run ``workers`` worker processes (one thread each) on the data folder ``root`` and wait for them.

    Parameters
    ----------
    root : Path
        The data folder.
    workers : int
        Number of processes.
    max_priority, only : optional
        The task selection (see :func:`zno_book.reference.runner.select`).

    Returns
    -------
    int
        The largest exit status of the workers.
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    extra = [] if max_priority is None else ["--max-priority", str(max_priority)]
    extra += [] if only is None else ["--only", only]
    procs = [subprocess.Popen([sys.executable, "-m", "zno_book.reference", "worker", "--root", str(root), "--new",
                               *extra], env=env) for _ in range(workers)]
    return max(p.wait() for p in procs)


def main(argv=None) -> int:
    """Run one command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    p = parser()
    args = p.parse_args(argv)
    root = Path(args.root) if args.root is not None else data_dir()
    if not (root / "manifest.json").is_file() and not args.new:
        p.error(f"{root} has no manifest.json, so it is not a data folder of the book (mistyped --root?); "
                "pass --new to start a new data set there")
    store = Store(root, DFTSettings())
    if args.command == "dry-run":
        dry_run(store, args.max_priority, args.only)
    elif args.command == "manifest":
        store.write_manifest()
    elif args.command == "sample":
        sample_liquid(root / "candidates" / "liquid_gfn1.extxyz")
        sample_thermal(root / THERMAL_CANDIDATES, root)
        sample_nanoparticle_optima(root)
        sample_liquid_models(root)
    elif args.command == "worker":
        store.check_settings()
        work(store, args.max_priority, args.only)
    else:
        store.check_settings()
        return start_workers(root, args.workers, args.max_priority, args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
