"""Command line: ``python -m mliplib.reference {run,dry-run,sample,manifest} [options]``.

run       run pending DFT tasks with N single-core workers (resumable; skips finished tasks)
dry-run   list what remains, with rough cost estimates
sample    make the candidate frames that some tasks label (liquid: GFN1-xTB MD with tblite; thermal
          snapshots of the crystals: MD with a linear-BP fitted to the tier-1 frames; each shipped
          model's optima of the nanoparticles (nanoparticles/<cluster>/at_<kind>) and frames of its own
          liquid MD at the reference state (liquid/at_<kind>/frameNN))
manifest  rewrite manifest.json (checksums, counts, settings) from the data files
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from mliplib.reference.engine import DFTSettings
from mliplib.reference.runner import Store, dry_run, work

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "data" / "zno"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mliplib.reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "dry-run", "sample", "manifest", "worker"])
    parser.add_argument("--root", default=str(DEFAULT_ROOT), help="data folder (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2, help="parallel single-core workers for run")
    parser.add_argument("--max-priority", type=int, default=None, help="only tasks with priority ≤ this")
    parser.add_argument("--only", default=None, help="only tasks whose name starts with this prefix")
    args = parser.parse_args(argv)
    store = Store(args.root, DFTSettings())
    if args.command == "dry-run":
        dry_run(store)
    elif args.command == "manifest":
        store.write_manifest()
    elif args.command == "sample":
        from mliplib.reference.plan import THERMAL_CANDIDATES
        from mliplib.reference.sampling import (sample_liquid, sample_liquid_models, sample_nanoparticle_optima,
                                                sample_thermal)
        sample_liquid(Path(args.root) / "candidates" / "liquid_gfn1.extxyz")
        sample_thermal(Path(args.root) / THERMAL_CANDIDATES, Path(args.root))
        sample_nanoparticle_optima(Path(args.root))
        sample_liquid_models(Path(args.root))
    elif args.command == "worker":
        store.check_settings()
        work(store, args.max_priority, args.only)
    else:
        store.check_settings()
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        extra = [] if args.max_priority is None else ["--max-priority", str(args.max_priority)]
        extra += [] if args.only is None else ["--only", args.only]
        procs = [subprocess.Popen([sys.executable, "-m", "mliplib.reference", "worker", "--root", args.root,
                                   *extra], env=env) for _ in range(args.workers)]
        return max(p.wait() for p in procs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
