"""Neighbour-list timings: mliplib's Numba cell list vs vesin vs ASE on wurtzite ZnO supercells.

    .venv/bin/python benchmarks/neighbors.py               # ~1 000, 10 000, 100 000 atoms at 6 Å
    .venv/bin/python benchmarks/neighbors.py --sizes 1000 --repeats 3 --ase-max 200000
    .venv/bin/python benchmarks/neighbors.py --record      # also write benchmarks/results.json [neighbors]

Every engine returns the full list (i→j and j→i) with i, j, shifts and vectors. Each is warmed up first
(Numba compilation excluded), then the engines are run in turn, ``--repeats`` times, and the best time
of each is kept: interleaving makes the comparison fair on a machine whose load changes. Process CPU
time is recorded too: on an oversubscribed machine it is the steadier measure for single-threaded rows
(wall time favours short calls, which more often finish within one time slice).

Rows:
  mliplib           neighbor_list(atoms, cutoff) as shipped (threads only from PARALLEL_MIN_ATOMS atoms)
  mliplib serial    the same kernel on one thread
  mliplib parallel  the same kernel on numba.get_num_threads() threads at any size
  vesin             vesin.NeighborList(full_list=True).compute(..., "ijSD"): unsorted pairs, its own threads
  vesin 1 thread    the same with n_threads=1
  vesin as engine   neighbor_list(atoms, cutoff, engine="vesin"): vesin + reordering to CSR (i ascending)
  ase               ase.neighborlist.neighbor_list("ijSD", ...), skipped above --ase-max atoms (too slow)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numba
import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.neighborlist import neighbor_list as ase_neighbor_list
from results import load_average, record

from mliplib import neighbors as nb


def wurtzite(n_target: int) -> Atoms:
    """ZnO wurtzite (a = 3.25 Å, c = 5.21 Å, 4 atoms per cell) repeated to about n_target atoms,
    slightly rattled so no distance sits exactly on the cutoff."""
    unit = bulk("ZnO", "wurtzite", a=3.25, c=5.21)
    m = max(1, round((n_target / 4) ** (1 / 3)))
    best = min(((a, b, c) for a in range(max(1, m - 2), m + 3) for b in range(max(1, m - 2), m + 3)
                for c in range(max(1, m - 2), m + 3)), key=lambda r: (abs(4 * np.prod(r) - n_target), np.ptp(r)))
    atoms = unit.repeat(best)
    atoms.rattle(0.02, seed=0)
    return atoms


def engines(atoms, cutoff, ase_max):
    import vesin

    positions, box, periodic = atoms.positions, atoms.cell.array, atoms.pbc

    def ours_with(min_atoms):
        def run():
            saved = nb.PARALLEL_MIN_ATOMS
            nb.PARALLEL_MIN_ATOMS = min_atoms
            try:
                return nb.neighbor_list(atoms, cutoff)
            finally:
                nb.PARALLEL_MIN_ATOMS = saved
        return run

    rows = {"mliplib": lambda: nb.neighbor_list(atoms, cutoff),
            "mliplib serial": ours_with(np.inf)}
    if numba.get_num_threads() > 1:
        rows["mliplib parallel"] = ours_with(0)
    rows["vesin"] = lambda: vesin.NeighborList(cutoff=cutoff, full_list=True).compute(
        positions, box, periodic, quantities="ijSD")
    rows["vesin 1 thread"] = lambda: vesin.NeighborList(cutoff=cutoff, full_list=True, n_threads=1).compute(
        positions, box, periodic, quantities="ijSD")
    rows["vesin as engine"] = lambda: nb.neighbor_list(atoms, cutoff, engine="vesin")
    if len(atoms) <= ase_max:
        rows["ase"] = lambda: ase_neighbor_list("ijSD", atoms, cutoff)
    return rows


def machine_state() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",) * 3
    import ase
    import vesin
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
            f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; numba {numba.__version__} "
            f"({numba.get_num_threads()} threads, layer {numba.config.THREADING_LAYER}), numpy {np.__version__}, "
            f"vesin {vesin.__version__}, ase {ase.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--cutoff", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ase-max", type=int, default=20_000, help="skip ASE above this many atoms")
    parser.add_argument("--record", action="store_true", help="write the rows to benchmarks/results.json")
    args = parser.parse_args()
    load_before = load_average()
    print("before:", machine_state())
    print(f"cutoff {args.cutoff} Å, best of {args.repeats} interleaved repeats after one warm-up\n")
    header = f"{'atoms':>7} {'pairs':>10} {'engine':<17} {'best ms':>9} {'µs/atom':>8} {'cpu µs/atom':>11}"
    print(header)
    print("-" * len(header))
    summary, recorded = [], []
    for n_target in args.sizes:
        atoms = wurtzite(n_target)
        rows = engines(atoms, args.cutoff, args.ase_max)
        n_pairs = {}
        for name, run in rows.items():  # warm-up: Numba compilation, first touch of memory
            n_pairs[name] = len(run()[0])
        assert len(set(n_pairs.values())) == 1, n_pairs
        best = dict.fromkeys(rows, np.inf)
        cpu = dict.fromkeys(rows, np.inf)
        for _ in range(args.repeats):
            for name, run in rows.items():
                t, t_cpu = time.perf_counter(), time.process_time()
                run()
                best[name] = min(best[name], time.perf_counter() - t)
                cpu[name] = min(cpu[name], time.process_time() - t_cpu)
        for name, seconds in best.items():
            print(f"{len(atoms):>7} {n_pairs[name]:>10} {name:<17} {seconds * 1e3:>9.2f} "
                  f"{seconds / len(atoms) * 1e6:>8.3f} {cpu[name] / len(atoms) * 1e6:>11.3f}")
            recorded.append({"atoms": len(atoms), "pairs": n_pairs[name], "engine": name, "wall_s": seconds,
                             "cpu_s": cpu[name]})
        ratio = best["mliplib"] / best["vesin"]
        line = (f"{len(atoms):>7} atoms: mliplib/vesin = {ratio:.2f}, "
                f"mliplib/(vesin 1 thread) = {best['mliplib'] / best['vesin 1 thread']:.2f}, "
                f"mliplib/(vesin as engine) = {best['mliplib'] / best['vesin as engine']:.2f}, "
                f"cpu time (mliplib serial)/(vesin 1 thread) = {cpu['mliplib serial'] / cpu['vesin 1 thread']:.2f}")
        line += (f", ase/mliplib = {best['ase'] / best['mliplib']:.1f}" if "ase" in best
                 else f", ase skipped (> {args.ase_max} atoms)")
        summary.append(line)
        print(line, flush=True)
    print("\nsummary")
    print("\n".join(summary))
    print("after:", machine_state())
    if args.record:
        record("neighbors", recorded, ["numba", "numpy", "vesin", "ase"], load_before, cutoff_A=args.cutoff,
               repeats=args.repeats, numba_threads=numba.get_num_threads())


if __name__ == "__main__":
    main()
