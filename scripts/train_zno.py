"""Train the book's three ZnO potentials and their committees; write models/v1 (``make models``).

    python scripts/train_zno.py                      # everything (models + committees)
    python scripts/train_zno.py --kinds plip nnp     # some kinds only
    python scripts/train_zno.py --no-committees      # single models only
    python scripts/train_zno.py --if-stale           # skip models already trained on the current data
    python scripts/train_zno.py --data-root DIR      # data from DIR (train.extxyz + manifest.json)

Fits on ``load_zno("train")``, reports held-out errors on ``load_zno("test")`` and records everything
in models/v1/manifest.json (see zno_book.zoo). Folders default to $ZNO_BOOK_ROOT (or this checkout).
"""

import argparse
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from zno_book import zoo
from zno_book.paths import models_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", choices=zoo.KINDS, default=list(zoo.KINDS))
    parser.add_argument("--no-committees", action="store_true", help="train the single models only")
    parser.add_argument("--if-stale", action="store_true", help="keep cached models trained on the current data")
    parser.add_argument("--root", default=None, help="output folder (default: models/v1 under $ZNO_BOOK_ROOT or "
                        "this checkout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--data-root", default=None,
                        help="train on the data in this folder instead of data/zno (e.g. a checkout of the "
                             "committed data, so the cache matches what CI sees)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    root = args.root if args.root is not None else models_dir()
    data = zoo.data_fingerprint(args.data_root)
    print(f"data: {data['file']} sha256 {data['sha256'][:12]}… ({data['frames']} frames)")
    kinds = args.kinds
    if args.if_stale:
        kinds = [k for k in kinds if not (zoo.is_current(k, False, root, args.data_root)
                                          and (args.no_committees or zoo.is_current(k, True, root, args.data_root)))]
        if not kinds:
            print("all requested models are current; nothing to do")
            return 0
    manifest = zoo.train_all(root, kinds, committees=not args.no_committees, progress=not args.quiet,
                             data_root=args.data_root)
    print(f"\n{'model':<22}{'train s':>9}{'E test':>10}{'F test':>10}{'E train':>10}{'F train':>10}   (meV/atom, meV/Å RMSE)")
    for name, entry in manifest["models"].items():
        te, tr = entry.get("test_errors") or {}, entry.get("train_errors") or {}
        print(f"{name:<22}{entry['train_wall_time_s']:>9.1f}{te.get('energy_rmse_meV_atom', float('nan')):>10.2f}"
              f"{te.get('forces_rmse_meV_A', float('nan')):>10.0f}{tr.get('energy_rmse_meV_atom', float('nan')):>10.2f}"
              f"{tr.get('forces_rmse_meV_A', float('nan')):>10.0f}" + ("" if entry.get("current") else "   (stale)"))
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
