"""Information-imbalance timings: mliplib's exact Numba kernel vs DADApy's MetricComparisons.

    .venv/bin/python benchmarks/transferability.py                      # N = 20 000, comparison at 2 000, 5 000
    .venv/bin/python benchmarks/transferability.py --n 20000 --compare 2000 5000 10000 --repeats 2
    .venv/bin/python benchmarks/transferability.py --record   # also write benchmarks/results.json [transferability]

Data: N "environments" with 60 features in each of two spaces that share part of their information
(A: a noisy linear image of an 8-dimensional latent vector; B: a non-linear image of 5 of those latent
coordinates), so both Δ(A→B) and Δ(B→A) are well inside (0, 1), as for two descriptors of the same
atoms.

1. mliplib at ``--n`` points (default 20 000, the size the issue asks for): ``information_imbalance(A, B)``,
   both directions, exact ranks, best of ``--repeats``. Numba compilation is excluded (warm-up call first;
   the kernels are cached on disk anyway).
2. mliplib vs DADApy at each ``--compare`` size: ``MetricComparisons(np.hstack([A, B]), maxk=N - 1)
   .return_inf_imb_two_selected_coords(cols_A, cols_B, k=1)``, i.e. DADApy's exact setting (with a
   smaller maxk it replaces the ranks it did not store by random numbers). DADApy (numpy<2) runs in its
   own venv, .venv-peers (``make peers``), through tests/peers.py: its time is measured inside that
   process (``time.perf_counter``, as for mliplib) around the constructor and the call only: no process
   start-up, import or array transfer. DADApy keeps, per space, the full N × N matrices of neighbour
   indices and distances from scikit-learn (16 N² bytes: 6.4 GB per space at N = 20 000), so it is not
   run at ``--n`` on this machine; the script prints its N² extrapolation, labelled as such. Runs are
   interleaved (ours, DADApy, ours, ...) and the best of each is kept. The two results are compared: they
   must agree to 1e-12.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numba
import numpy as np
from results import load_average, record

from mliplib.transferability import information_imbalance

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import peers


def spaces(n: int, n_features: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    A = z @ rng.normal(size=(8, n_features)) + 0.3 * rng.normal(size=(n, n_features))
    B = np.sin(z[:, :5] @ rng.normal(size=(5, n_features)))
    return A, B


def best_of(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="points for the mliplib-only timing")
    parser.add_argument("--features", type=int, default=60)
    parser.add_argument("--compare", type=int, nargs="*", default=[2000, 5000],
                        help="sizes at which mliplib and DADApy are timed in the same run")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="write the rows to benchmarks/results.json")
    args = parser.parse_args()
    load_before = load_average()

    theirs = peers.dadapy_versions()  # starts the peer process (fails with "run `make peers`" if missing)

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numba threads "
          f"{numba.get_num_threads()}, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"mliplib: numba {numba.__version__}, numpy {np.__version__}, scikit-learn {version('scikit-learn')}; "
          f"DADApy (.venv-peers): dadapy {theirs['dadapy']}, numpy {theirs['numpy']}, "
          f"scikit-learn {theirs['scikit-learn']}")

    A, B = spaces(300, args.features)
    information_imbalance(A, B)  # compile (or load the cached kernels)

    A, B = spaces(args.n, args.features)
    t, (ab, ba) = best_of(lambda: information_imbalance(A, B), args.repeats)
    print(f"\nmliplib  N = {args.n}, {args.features} + {args.features} features: {t:.2f} s "
          f"(best of {args.repeats}); Δ(A→B) = {ab:.4f}, Δ(B→A) = {ba:.4f}; "
          f"load average now {os.getloadavg()[0]:.1f}")
    t_full = t
    recorded = [{"n": args.n, "code": "mliplib", "wall_s": t_full}]

    print(f"\n{'N':>6} {'mliplib s':>10} {'DADApy s':>10} {'DADApy/mliplib':>15} {'max |ΔΔ|':>10}")
    last = None
    for n in args.compare:
        A, B = spaces(n, args.features)

        def ours():
            return information_imbalance(A, B)

        t_ours, t_theirs = [], []
        for _ in range(args.repeats):
            t, r_ours = best_of(ours, 1)
            t_ours.append(t)
            r_theirs, (t,) = peers.dadapy_imbalance(A, B, k=1)  # timed in the peer process
            t_theirs.append(t)
        diff = float(np.max(np.abs(np.subtract(r_ours, r_theirs))))
        assert diff < 1e-12, f"mliplib and DADApy disagree at N = {n}: {r_ours} vs {r_theirs}"
        print(f"{n:>6} {min(t_ours):>10.3f} {min(t_theirs):>10.2f} {min(t_theirs) / min(t_ours):>15.1f} "
              f"{diff:>10.1e}")
        last = n, min(t_theirs)
        recorded += [{"n": n, "code": "mliplib", "wall_s": min(t_ours)},
                     {"n": n, "code": "DADApy", "wall_s": min(t_theirs), "max_abs_difference": diff}]
    if last is not None:
        n, t = last
        print(f"\nDADApy at N = {args.n} by N² extrapolation from N = {n} (not run): "
              f"≈ {t * (args.n / n) ** 2:.0f} s, ≈ {t * (args.n / n) ** 2 / t_full:.0f}× mliplib's measured time; "
              f"its neighbour index + distance matrices take 16 N² bytes = {16 * args.n ** 2 / 1e9:.1f} GB per space")
    if args.record:
        record("transferability", recorded, ["numba", "numpy", "scikit-learn"], load_before,
               dadapy=theirs, features=args.features, repeats=args.repeats)


if __name__ == "__main__":
    main()
