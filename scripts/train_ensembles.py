"""Regenerate models/v2 and artefacts/v2/{protocol,learning_curves}: the protocol search, the ensembles and
the learning curves, all on zno_book.driver (resumable: a rerun skips every finished task).

    python scripts/train_ensembles.py                           # everything, local executor, 2 workers
    python scripts/train_ensembles.py --workers 1               # on a loaded machine
    python scripts/train_ensembles.py --executor dask --address tcp://host:8786
    python scripts/train_ensembles.py --steps protocol          # only some steps
    python scripts/train_ensembles.py --split heldout           # evaluate the learning curves on another split

Steps, in order: ``protocol`` (zno_book.protocol.search → models/v2/protocol.json), ``ensembles``
(zno_book.ensembles.train → models/v2/ensembles, models/v2/manifest.json), ``curves``
(zno_book.learning_curves.train → artefacts/v2/learning_curves) and ``evaluate`` (the learning curves on
``--split``, default "test" until the held-out set exists). Folders default to $ZNO_BOOK_ROOT (or this
checkout).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from zno_book import ensembles, learning_curves, protocol
from zno_book.executors import KINDS as EXECUTORS

STEPS = ("protocol", "ensembles", "curves", "evaluate")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS))
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--address", default=None, help="a running Dask scheduler (with --executor dask)")
    parser.add_argument("--kinds", nargs="+", choices=protocol.KINDS, default=list(protocol.KINDS))
    parser.add_argument("--split", default="test", help="held-out split of the learning curves' evaluation")
    parser.add_argument("--root", default=None, help="the book's root (default: $ZNO_BOOK_ROOT or this checkout)")
    parser.add_argument("--data-root", default=None, help="the data folder (default: data/zno under the root)")
    args = parser.parse_args(argv)
    common = {"executor": args.executor, "workers": args.workers, "address": args.address, "kinds": args.kinds,
              "root": args.root, "data_root": args.data_root}
    start = time.perf_counter()
    if "protocol" in args.steps:
        result = protocol.search(**common)
        if "incomplete" in result:
            print(f"protocol search: failed tasks {result['incomplete']}; rerun to retry", file=sys.stderr)
            return 1
    if "ensembles" in args.steps and not ensembles.train(**common).ok:
        return 1
    if "curves" in args.steps and not learning_curves.train(**common).ok:
        return 1
    if "evaluate" in args.steps:
        learning_curves.write_evaluation(args.split, args.root, args.data_root)
    print(f"train_ensembles: {args.steps} done in {time.perf_counter() - start:.0f} s (wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
