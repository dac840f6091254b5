"""Descriptor timings: our Behler–Parrinello and PLIP vs DScribe ACSF (values only), same parameters.

    .venv/bin/python benchmarks/descriptors.py                  # 72- and 1 008-atom wurtzite, best of 5
    .venv/bin/python benchmarks/descriptors.py --repeats 3 --threads 1
    .venv/bin/python benchmarks/descriptors.py --scaling       # BP values+gradients, 96 … 10 000 atoms
    .venv/bin/python benchmarks/descriptors.py --record        # also write benchmarks/results.json [descriptors]
    PYTHONPATH=/tmp/base:. .venv/bin/python benchmarks/descriptors.py --threads 1 --baseline old.descriptors

Every timing is end to end from ``ase.Atoms`` (our rows include the neighbour list, as DScribe's include
its own), per atom, best of ``--repeats`` interleaved runs after a warm-up (Numba compilation excluded).
Our kernels are timed on 1 thread and on ``--threads`` threads; DScribe ACSF has no threads within one
structure (``n_jobs`` parallelises over structures), so the 1-thread ratio is the like-for-like one.
Both wall time and process CPU time are recorded: on a shared machine the CPU time of a 1-thread run is
the steadier measure (it excludes time spent descheduled), so the summary ratios use it; for multi-thread
rows only the wall time is meaningful.

``--baseline MODULE`` also times the descriptors of MODULE, an older copy of ``mliplib.descriptors``
importable under another name, interleaved with ours in the same process (the fair before/after
comparison on a loaded machine), e.g. from commit C:

    mkdir -p /tmp/base/old && git archive C mliplib | tar -x -C /tmp/base/old --strip-components=1
    sed -i 's/mliplib[.]/old./g' $(grep -rl mliplib /tmp/base/old)

Rows:
  dscribe ACSF values     dscribe.descriptors.ACSF(**bp.dscribe_kwargs(), periodic=True).create(atoms)
  BP values               BehlerParrinello.default_zno().compute(atoms)
  BP values+gradients     .compute(atoms, gradients=True): G and ∂G_i/∂r_ij for every pair
  BP forces+virial        .forces_and_virial(atoms, dE_dG): on-the-fly contraction, no stored gradients
  PLIP values             PLIP.default_zno().compute(atoms)
  PLIP forces+virial      PLIP.default_zno().forces_and_virial(atoms, dE_dG)
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import time
from importlib.metadata import version

import numba
import numpy as np
from ase.build import bulk
from results import load_average, record

import mliplib.descriptors
from mliplib.descriptors import PLIP, BehlerParrinello

#: wurtzite repeats (4 atoms per primitive cell): 72 and 1 008 atoms; --scaling adds 96 … 10 368 atoms
REPEATS = {72: (3, 3, 2), 1008: (6, 6, 7)}
SCALING = {96: (4, 3, 2), 1008: (6, 6, 7), 10368: (18, 16, 9)}


def structure(n: int):
    atoms = bulk("ZnO", "wurtzite", a=3.25, c=5.21, u=0.38).repeat({**REPEATS, **SCALING}[n])
    atoms.rattle(0.05, seed=0)
    return atoms


def machine_state() -> str:
    load = os.getloadavg()
    return (f"{platform.machine()}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} "
            f"{load[2]:.2f}; numba {numba.__version__}, numpy {np.__version__}, dscribe {version('dscribe')}")


def rows(atoms, acsf, threads, modules):
    """Name → (function, numba threads) for one structure; ``modules``: tag → descriptors module."""
    out = {"dscribe ACSF values": (lambda: acsf.create(atoms), 1)}
    for label, module in modules.items():
        bp, plip = module.BehlerParrinello.default_zno(), module.PLIP.default_zno()
        w_bp = np.random.default_rng(0).normal(size=(len(atoms), bp.n_features))
        w_plip = np.random.default_rng(1).normal(size=(len(atoms), plip.n_features))
        for t in sorted({1, threads}):
            tag = f" [{t} thr]{label}"
            out["BP values" + tag] = (lambda bp=bp: bp.compute(atoms), t)
            out["BP values+gradients" + tag] = (lambda bp=bp: bp.compute(atoms, gradients=True), t)
            out["BP forces+virial" + tag] = (lambda bp=bp, w=w_bp: bp.forces_and_virial(atoms, w), t)
            out["PLIP values" + tag] = (lambda plip=plip: plip.compute(atoms), t)
            out["PLIP forces+virial" + tag] = (lambda plip=plip, w=w_plip: plip.forces_and_virial(atoms, w), t)
    return out


def main() -> None:
    from dscribe.descriptors import ACSF

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(REPEATS), choices=list(REPEATS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=numba.config.NUMBA_NUM_THREADS)
    parser.add_argument("--scaling", action="store_true",
                        help="only BP values+gradients on 96 … 10 368 atoms: cost per atom and gradient memory")
    parser.add_argument("--baseline", metavar="MODULE",
                        help="also time the descriptors of MODULE (an older copy of mliplib.descriptors)")
    parser.add_argument("--record", action="store_true",
                        help="write the rows to benchmarks/results.json (not with --scaling or --baseline)")
    args = parser.parse_args()
    if args.record and (args.scaling or args.baseline):
        parser.error("--record records the comparison with DScribe only: drop --scaling and --baseline")
    load_before = load_average()
    if args.scaling:
        return scaling(args.repeats)
    modules = {"": mliplib.descriptors}
    if args.baseline:
        modules[" baseline"] = importlib.import_module(args.baseline)

    bp = BehlerParrinello.default_zno()
    plip = PLIP.default_zno()
    acsf = ACSF(periodic=True, **bp.dscribe_kwargs())
    print("before:", machine_state())
    print(f"{bp}\nDScribe ACSF parameters (identical functions and columns): {bp.dscribe_kwargs()}")
    print(f"PLIP.default_zno(): {plip.n_features} features, cutoff {plip.cutoff} Å")
    print(f"best of {args.repeats} interleaved repeats after one warm-up; times per atom\n")
    header = (f"{'atoms':>6} {'pairs/at':>8} {'row':<39} {'wall ms':>9} {'wall µs/at':>10} {'cpu µs/at':>10} "
              f"{'DScribe/row (cpu)':>18}")
    summary, recorded = [], []
    for n in args.sizes:
        atoms = structure(n)
        ref = acsf.create(atoms)
        assert np.allclose(bp.to_dscribe_order(bp.compute(atoms)), ref, rtol=1e-10, atol=0), "BP ≠ DScribe"
        table = rows(atoms, acsf, args.threads, modules)
        for fn, t in table.values():  # warm-up
            numba.set_num_threads(t)
            fn()
        best = dict.fromkeys(table, np.inf)
        cpu = dict.fromkeys(table, np.inf)
        for _ in range(args.repeats):
            for name, (fn, t) in table.items():
                numba.set_num_threads(t)
                start, start_cpu = time.perf_counter(), time.process_time()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
                cpu[name] = min(cpu[name], time.process_time() - start_cpu)
        numba.set_num_threads(args.threads)
        pairs = bp.neighbors(atoms)
        print(header)
        print("-" * len(header))
        ds, ds_cpu = best["dscribe ACSF values"], cpu["dscribe ACSF values"]
        for name, seconds in best.items():
            ratio = f"{ds_cpu / cpu[name]:>18.2f}" if "[1 thr]" in name or name.startswith("dscribe") else " " * 18
            base = name + " baseline"
            change = f"  ours/baseline (cpu) {cpu[name] / cpu[base]:.3f}" if base in cpu and "[1 thr]" in name else ""
            print(f"{n:>6} {len(pairs.i) / n:>8.1f} {name:<39} {seconds * 1e3:>9.2f} {seconds / n * 1e6:>10.2f} "
                  f"{cpu[name] / n * 1e6:>10.2f} {ratio}{change}")
            recorded.append({"atoms": n, "pairs_per_atom": len(pairs.i) / n, "row": name.split(" [")[0],
                             "threads": table[name][1], "wall_s": seconds, "cpu_s": cpu[name]})
        print()
        for t in sorted({1, args.threads}):
            tag = f" [{t} thr]"
            ref, times, kind = (ds_cpu, cpu, "cpu") if t == 1 else (ds, best, "wall")
            summary.append(f"{n:>6} atoms, {t} thread(s), {kind} time: DScribe values / our BP values = "
                           f"{ref / times['BP values' + tag]:.1f}, / our BP values+gradients = "
                           f"{ref / times['BP values+gradients' + tag]:.1f}, / our BP forces+virial = "
                           f"{ref / times['BP forces+virial' + tag]:.1f}, / our PLIP values = "
                           f"{ref / times['PLIP values' + tag]:.1f}")
    print("summary (≥ 1 means ours is faster; target: BP values+gradients ≥ 5× DScribe values)")
    print("\n".join(summary))
    print("after:", machine_state())
    if args.record:
        record("descriptors", recorded, ["numba", "numpy", "dscribe"], load_before, repeats=args.repeats,
               bp_features=bp.n_features, plip_features=plip.n_features, cutoff_A=bp.cutoff)


def scaling(repeats: int) -> None:
    """Cost per atom (1 thread, CPU time) of BP values, values+gradients and forces+virial, and memory of
    the stored per-pair gradients, vs system size."""
    bp = BehlerParrinello.default_zno()
    numba.set_num_threads(1)
    print("before:", machine_state())
    print(f"BehlerParrinello.default_zno(): {bp.n_features} features, cutoff {bp.cutoff} Å; 1 thread, CPU time, "
          f"best of {repeats}")
    print(f"{'atoms':>6} {'pairs/at':>8} {'values µs/at':>12} {'+gradients µs/at':>16} {'forces+virial µs/at':>19} "
          f"{'gradients MB':>12} {'kB/atom':>8}")
    for n in SCALING:
        atoms = structure(n)
        w = np.random.default_rng(0).normal(size=(n, bp.n_features))
        calls = {"values": lambda atoms=atoms: bp.compute(atoms),
                 "gradients": lambda atoms=atoms: bp.compute(atoms, gradients=True),
                 "forces": lambda atoms=atoms, w=w: bp.forces_and_virial(atoms, w)}
        cpu = dict.fromkeys(calls, np.inf)
        for name, fn in calls.items():
            fn()  # warm-up (and compilation)
            for _ in range(repeats):
                start = time.process_time()
                fn()
                cpu[name] = min(cpu[name], time.process_time() - start)
        _, grads = bp.compute(atoms, gradients=True)
        print(f"{n:>6} {len(grads.i) / n:>8.1f} {cpu['values'] / n * 1e6:>12.1f} {cpu['gradients'] / n * 1e6:>16.1f} "
              f"{cpu['forces'] / n * 1e6:>19.1f} {grads.nbytes / 1e6:>12.1f} {grads.nbytes / n / 1e3:>8.1f}")
        del grads
    print("after:", machine_state())


if __name__ == "__main__":
    main()
