"""Timing of the PLIP pool (``PLIP.default_zno()``) on wurtzite cells of growing size.

For each cell: neighbour list, values, values + stored per-pair gradients (skipped when the
(n_pairs, n_features, 3) array would exceed ``--max-gradient-gb``), and the on-the-fly
``forces_and_virial`` contraction; best of ``--repeat`` runs, reported per atom (flat in N expected).

    .venv/bin/python benchmarks/plip.py [--repeat 3] [--threads 2] [--sizes 72 1008 10140]
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from ase.build import bulk

from mliplib.descriptors import PLIP
from mliplib.neighbors import neighbor_list

#: wurtzite repeats giving 72, 1008 and 10 140 atoms (4 atoms per primitive cell)
REPEATS = {72: (3, 3, 2), 1008: (6, 6, 7), 10140: (13, 13, 15)}


def best_of(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(REPEATS), choices=list(REPEATS))
    parser.add_argument("--max-gradient-gb", type=float, default=4.0)
    args = parser.parse_args()
    numba.set_num_threads(args.threads)

    desc = PLIP.default_zno()
    print(f"{desc}\nthreads: {args.threads}, best of {args.repeat}")
    unit = bulk("ZnO", "wurtzite", a=3.29, c=5.30, u=0.38)
    rng = np.random.default_rng(0)
    warm = unit.repeat((2, 2, 2))
    desc.compute(warm, gradients=True)  # JIT (or cache load) outside the timings
    desc.forces_and_virial(warm, np.zeros((len(warm), desc.n_features)))

    header = (f"{'atoms':>7} {'pairs/atom':>10} {'nlist µs/at':>12} {'values µs/at':>13} "
              f"{'+grad µs/at':>12} {'grad MB/at':>11} {'F,W µs/at':>10}")
    print(header)
    for n in args.sizes:
        atoms = unit.repeat(REPEATS[n])
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        t_nl, pairs = best_of(lambda: neighbor_list(atoms, desc.cutoff), args.repeat)
        t_v, G = best_of(lambda: desc.compute(atoms, neighbors=pairs), args.repeat)
        grad_bytes = len(pairs.i) * desc.n_features * 3 * 8
        if grad_bytes <= args.max_gradient_gb * 1e9:
            t_g, (_, grads) = best_of(lambda: desc.compute(atoms, gradients=True, neighbors=pairs), args.repeat)
            grad_bytes = grads.nbytes
            del grads
            t_g = f"{t_g / n * 1e6:12.1f}"
        else:
            t_g = f"{'skipped':>12}"
        w = rng.normal(size=G.shape)
        t_f, _ = best_of(lambda: desc.forces_and_virial(atoms, w, neighbors=pairs), args.repeat)
        print(f"{n:7d} {len(pairs.i) / n:10.1f} {t_nl / n * 1e6:12.1f} {t_v / n * 1e6:13.1f} {t_g} "
              f"{grad_bytes / n / 1e6:11.2f} {t_f / n * 1e6:10.1f}")


if __name__ == "__main__":
    main()
