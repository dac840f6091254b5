"""MD speed of the three potentials (and a PyPI peer) on wurtzite ZnO supercells of 96, 1 000 and 10 000 atoms.

    .venv/bin/python benchmarks/md.py                       # all models, all sizes, peer if importable
    .venv/bin/python benchmarks/md.py --sizes 96 1000 --models linear_bp nnp --no-peer
    .venv/bin/python benchmarks/md.py --record             # also write benchmarks/results.json [md]

What is timed: ASE ``VelocityVerlet`` (0.5 fs, velocities at 300 K) steps with the model's ASE calculator,
i.e. everything an MD step costs (neighbour list with a 0.5 Å skin, rebuilt only when an atom moved more
than skin/2; descriptor; model; forces; ASE's integrator). After 2 warm-up steps (Numba compilation,
first list build), blocks of ``steps`` steps are timed ``--repeats`` times, the rows of one size
interleaved block by block, and each row's best block is kept (the machine's load changes; interleaving
makes the ratios fair). Reported: steps/s, atom-steps/s (= atoms × steps/s), µs per atom-step, CPU time
per wall time (how many cores the run really got), and neighbour-list builds.

Models: the shipped ones from ``models/v1`` (:func:`zno_book.zoo.load_or_train` without retraining,
any cached version); if none is cached, models with the shipped descriptors and architecture fitted in a
few seconds on frames of a model potential (speed does not depend on the weights, except that a sparse
PLIP skips nothing: all 1485 terms are always evaluated).

Peer (``--no-peer`` to skip): TorchANI 2.x (PyPI ``torchani``; ``pip install --no-deps torchani`` so pip
leaves torch alone) — its ``AEVComputer.like_2x`` (ANI-2x symmetry functions: radial 5.1 Å × 16 shells,
angular 3.5 Å × 8 × 4 sections; 128 AEV terms for two elements; pure-PyTorch cell-list neighbours rebuilt
every step, its design) and per-element ANI-2x-size networks (128 → 256 → 192 → 160 → 1, CELU α = 0.1),
random weights, forces by autograd, float32 (TorchANI's default) and float64, torch with all cores. It is
run by the same ASE integrator through a minimal calculator. ANI's angular cutoff (3.5 Å) is much
shorter than ours (6 Å: ~5× fewer triplets), so a ``--peer-cutoff 6`` run with both cutoffs at 6 Å is
the like-for-like comparison of the two codes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("TORCHANI_NO_WARN_EXTENSIONS", "1")

import numba
import numpy as np
import torch
from ase import units
from ase.calculators.calculator import Calculator, all_changes
from ase.md.velocitydistribution import Stationary
from ase.md.verlet import VelocityVerlet
from results import load_average, record

import mliplib
from mliplib.builders import rattled, supercell_of
from mliplib.md import thermalize_momenta
from zno_book import zoo
from zno_book.paths import models_dir
from zno_book.structures import polymorph

SIZES = {96: (4, 3, 2), 1000: (5, 5, 10), 10000: (10, 10, 25)}
STEPS = {96: 200, 1000: 30, 10000: 4}


def wurtzite(n: int):
    reps = SIZES.get(n)
    if reps is None:
        raise SystemExit(f"size {n} not available; choose from {sorted(SIZES)}")
    return rattled(supercell_of(polymorph("wurtzite"), reps), 0.02, 1)


# ------------------------------------------------------------------------------------------- models
def shipped_models(kinds):
    """The cached models/v1 models, or quickly fitted stand-ins (same descriptors and architecture)."""
    out, source = {}, {}
    for kind in kinds:
        entry = zoo.read_manifest().get("models", {}).get(kind)
        if entry is not None and (models_dir() / entry["file"]).exists():
            out[kind] = mliplib.load(models_dir() / entry["file"])
            source[kind] = f"models/v1 ({entry['n_frames_train']} frames, {'current' if entry.get('current') else 'stale'})"
            continue
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from zno_pair import ZnOPair, relaxed_wurtzite
        cell = relaxed_wurtzite()
        frames = []
        for k in range(6):
            atoms = rattled(supercell_of(cell, (2, 2, 1)), 0.05, k)
            atoms.calc = ZnOPair()
            atoms.info["energy"] = atoms.get_potential_energy()
            atoms.arrays["forces"] = atoms.get_forces()
            atoms.calc = None
            frames.append(atoms)
        out[kind] = zoo.train(kind, frames, progress=False, epochs=2, patience=2)
        source[kind] = "stand-in fitted on model-potential frames (no models/v1 cache)"
    return out, source


class TorchANIPeer(Calculator):
    """Energy and forces from TorchANI's AEV + ANI-2x-size networks (random weights), autograd forces."""

    implemented_properties = ["energy", "free_energy", "forces"]

    def __init__(self, dtype=torch.float32, cutoff: float | None = None, **kwargs):
        super().__init__(**kwargs)
        from torchani.aev import AEVComputer
        # TorchANI requires angular < radial cutoff: "both at rc" means angular rc, radial rc + 0.01 Å
        options = {} if cutoff is None else {"radial_cutoff": cutoff + 0.01, "angular_cutoff": cutoff}
        self.aev = AEVComputer.like_2x(num_species=2, neighborlist="cell_list", **options).to(dtype)
        torch.manual_seed(0)
        n_aev = self.aev.out_dim

        def net():
            return torch.nn.Sequential(torch.nn.Linear(n_aev, 256), torch.nn.CELU(0.1), torch.nn.Linear(256, 192),
                                       torch.nn.CELU(0.1), torch.nn.Linear(192, 160), torch.nn.CELU(0.1),
                                       torch.nn.Linear(160, 1)).to(dtype)

        self.nets = torch.nn.ModuleList([net(), net()])
        self.dtype = dtype

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        a = self.atoms
        species = torch.tensor((a.numbers == 30).astype(np.int64))[None]
        coords = torch.tensor(a.positions, dtype=self.dtype)[None].requires_grad_(True)
        cell = torch.tensor(a.cell.array, dtype=self.dtype)
        pbc = torch.tensor(a.pbc)
        aev = self.aev(species, coords, cell=cell, pbc=pbc)[0]
        energy = torch.zeros((), dtype=self.dtype)
        for s, net in enumerate(self.nets):
            mask = species[0] == s
            energy = energy + net(aev[mask]).sum()
        (grad,) = torch.autograd.grad(energy, coords)
        self.results = {"energy": float(energy.detach()), "free_energy": float(energy.detach()),
                        "forces": -grad[0].double().numpy()}


# ------------------------------------------------------------------------------------------ timing
class Runner:
    """One MD run (calculator + integrator) that can be timed repeatedly: 2 warm-up steps, then
    ``round(steps)`` timed blocks; the best block is kept (rows interleaved round by round, so slow
    moments of a shared machine hit every row alike)."""

    def __init__(self, calc, atoms, warmup: int = 2):
        self.atoms = atoms.copy()
        self.atoms.calc = calc
        thermalize_momenta(self.atoms, temperature_K=300, rng=np.random.default_rng(0))
        Stationary(self.atoms)
        self.dyn = VelocityVerlet(self.atoms, 0.5 * units.fs)
        self.dyn.run(warmup)
        self.calc, self.best, self.builds = calc, None, 0

    def round(self, steps: int) -> None:
        nl = getattr(self.calc, "neighbor_list", None)
        builds0 = None if nl is None else nl.builds
        wall, cpu = time.perf_counter(), time.process_time()
        self.dyn.run(steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if nl is not None:
            self.builds += nl.builds - builds0
        rate = steps / wall
        result = {"steps": steps, "wall_s": wall, "steps_per_s": rate, "atom_steps_per_s": rate * len(self.atoms),
                  "us_per_atom_step": 1e6 / (rate * len(self.atoms)), "cpu_per_wall": cpu / wall}
        if self.best is None or rate > self.best["steps_per_s"]:
            self.best = result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=sorted(SIZES))
    parser.add_argument("--models", nargs="+", default=list(zoo.KINDS), choices=zoo.KINDS)
    parser.add_argument("--no-peer", action="store_true")
    parser.add_argument("--peer-cutoff", type=float, default=None,
                        help="also run TorchANI with radial and angular cutoffs set to this value (Å)")
    parser.add_argument("--peer-cutoff-max-atoms", type=int, default=1000,
                        help="skip the --peer-cutoff run above this size (6 Å angular terms in PyTorch: "
                             "~16 ms per atom-step and GBs of triplet tensors)")
    parser.add_argument("--steps-scale", type=float, default=1.0, help="multiply the number of timed steps")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks per row (best kept, rows interleaved)")
    parser.add_argument("--record", action="store_true", help="write the rows to benchmarks/results.json")
    args = parser.parse_args(argv)
    load_before = load_average()

    torch.set_num_threads(os.cpu_count() or 1)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load average {os.getloadavg()[0]:.1f}")
    models, source = shipped_models(args.models)
    for kind in args.models:
        print(f"  {zoo.LABELS[kind]:<10} {source[kind]}")
    rows = []

    peers = []
    if not args.no_peer:
        try:
            import torchani  # noqa: F401
            peers = [("TorchANI f32", dict(dtype=torch.float32)), ("TorchANI f64", dict(dtype=torch.float64))]
            if args.peer_cutoff:
                peers.append((f"TorchANI f64 rc={args.peer_cutoff:g}", dict(dtype=torch.float64, cutoff=args.peer_cutoff)))
        except ImportError as error:
            print(f"  peer skipped: torchani not importable ({error}); pip install --no-deps torchani")

    for n in args.sizes:
        atoms = wurtzite(n)
        steps = max(2, int(round(STEPS[n] * args.steps_scale)))
        runners = {}
        for kind in args.models:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                runners[zoo.LABELS[kind]] = (Runner(models[kind].calculator(skin=0.5), atoms), steps)
        for label, options in peers:
            peer_steps = max(2, steps // 2) if n >= 10000 else steps
            if "cutoff" in options:
                if n > args.peer_cutoff_max_atoms:
                    continue
                peer_steps = max(2, steps // 10)
            try:
                runners[label] = (Runner(TorchANIPeer(**options), atoms), peer_steps)
            except Exception as error:  # noqa: BLE001 - report and go on
                print(f"{len(atoms):>6} {label:<22} failed: {type(error).__name__}: {error}")
        for _ in range(args.repeats):
            for runner, k in runners.values():
                runner.round(k)
        for label, (runner, k) in runners.items():
            r = runner.best
            rows.append((n, label, r))
            builds = f"  NL builds {runner.builds}/{k * args.repeats}" if hasattr(runner.calc, "neighbor_list") else ""
            print(f"{len(atoms):>6} {label:<22} {r['steps_per_s']:>9.2f} steps/s {r['atom_steps_per_s']:>9.0f} "
                  f"atom-steps/s {r['us_per_atom_step']:>7.1f} µs/atom-step  cpu/wall {r['cpu_per_wall']:.2f}{builds}",
                  flush=True)

    print("\nsummary (atom-steps/s; ratios within one size)")
    for n in args.sizes:
        at = {label: r["atom_steps_per_s"] for size, label, r in rows if size == n}
        parts = [f"{label} {v:.0f}" for label, v in at.items()]
        line = f"  {n:>6} atoms: " + ", ".join(parts)
        lin, nnp = at.get("linear-BP"), at.get("NNP")
        if lin and nnp:
            line += f"; linear-BP/NNP speed {lin / nnp:.2f}"
        for label, v in at.items():
            if label.startswith("TorchANI"):
                if lin:
                    line += f"; linear-BP/{label} {lin / v:.2f}"
                if nnp:
                    line += f"; NNP/{label} {nnp / v:.2f}"
        print(line)
    for label in {label for _, label, _ in rows}:
        per = {n: r["us_per_atom_step"] for n, lab, r in rows if lab == label}
        if len(per) > 1:
            print(f"  cost per atom vs size, {label}: " + ", ".join(f"{n}: {v:.1f} µs" for n, v in sorted(per.items())))
    if args.record:
        packages = ["numba", "numpy", "torch", "ase"] + (["torchani"] if peers else [])
        record("md", [{"atoms": n, "model": label, **r} for n, label, r in rows], packages, load_before,
               models={zoo.LABELS[kind]: source[kind] for kind in args.models}, timestep_fs=0.5,
               numba_threads=numba.get_num_threads(), torch_threads=torch.get_num_threads())
    return rows


if __name__ == "__main__":
    main()
