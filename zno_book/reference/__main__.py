"""Command line: ``python -m zno_book.reference {run,dry-run,sample,manifest} [options]``.

run       run the pending DFT tasks on an executor: --executor local (default: a pool of single-core
          processes), dask (a LocalCluster of --workers processes, or the scheduler at --address) or
          serial; resumable (skips finished tasks), the driver process the only writer of the data folder
dry-run   list what remains, with rough cost estimates (reads the data folder, writes nothing)
sample    make the candidate frames that some tasks label (liquid: GFN1-xTB MD with tblite; thermal
          snapshots of the crystals: MD with a linear-BP fitted to the tier-1 frames; each shipped
          model's optima of the nanoparticles (nanoparticles/<cluster>/at_<kind>) and frames of its own
          liquid MD at the reference state (liquid/at_<kind>/frameNN))
manifest  rewrite manifest.json (checksums, counts, settings) from the data files

The data folder (--root) must hold a manifest.json, so that a mistyped folder is not taken for a new
data set; pass --new to start one in a folder without a manifest. --plan tiny runs a smoke-test plan of
about a minute (2-atom cells at a low cutoff, data set "tiny"): use it with a new folder, never data/zno.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zno_book.executors import KINDS
from zno_book.paths import ENV_VAR, data_dir
from zno_book.reference.engine import DFTSettings
from zno_book.reference.plan import THERMAL_CANDIDATES, all_tasks, tiny_tasks
from zno_book.reference.runner import dry_run, run, select, write_manifest
from zno_book.reference.sampling import (
    sample_liquid,
    sample_liquid_models,
    sample_nanoparticle_optima,
    sample_thermal,
)

COMMANDS = ("run", "dry-run", "sample", "manifest")
#: the plans --plan chooses from: the book's, and the smoke test of the pipeline
PLANS = {"book": all_tasks, "tiny": tiny_tasks}


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
    p.add_argument("--executor", choices=KINDS, default="local",
                   help="where run computes: local processes, a dask cluster, or serially in this process")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes of run (default: the cores available)")
    p.add_argument("--address", default=None, help="a running Dask scheduler, e.g. tcp://10.0.0.1:8786 (dask)")
    p.add_argument("--plan", choices=sorted(PLANS), default="book", help="the book's plan or the tiny smoke test")
    p.add_argument("--max-priority", type=int, default=None, help="only tasks with priority ≤ this")
    p.add_argument("--only", action="append", default=None, metavar="PREFIX",
                   help="only tasks whose name starts with this prefix (repeat for several)")
    return p


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
    settings = DFTSettings()
    tasks = select(PLANS[args.plan](), args.max_priority, args.only)
    if args.command == "dry-run":
        dry_run(root, tasks, settings, selected=args.max_priority is not None or args.only is not None)
    elif args.command == "manifest":
        write_manifest(root, settings)
    elif args.command == "sample":
        sample_liquid(root / "candidates" / "liquid_gfn1.extxyz")
        sample_thermal(root / THERMAL_CANDIDATES, root)
        sample_nanoparticle_optima(root)
        sample_liquid_models(root)
    else:
        if args.address is not None and args.executor != "dask":
            p.error("--address names a Dask scheduler: use it with --executor dask")
        report = run(root, tasks, args.executor, args.workers, args.address, settings)
        return 0 if report.ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
