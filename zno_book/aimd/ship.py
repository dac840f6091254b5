"""Shipping a run: book-setting re-labels of sampled production frames, and the provenance manifest.

:func:`relabel` gives ~10 evenly spaced production frames single points with the book's setting through
the book's own code path (:func:`zno_book.reference.engine.single_point`), so the difference between the
MD setting and the reference is measured on the run's own frames (forces, energies, pressure offset).
:func:`write_manifest` records, for ``<root>/aimd/``, every shipped file with its SHA-256, the settings,
the GPAW version, the repository commit, the cost per step and the one-core hours spent.
Units: eV, Å, GPa, s.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from zno_book.reference.engine import DFTSettings, engine_version, single_point

from .analysis import stage_frames
from .ledger import charge, core_hours
from .pilot import pressure_gpa
from .storage import append_frame, read_frames, read_json, sha256, write_json

__all__ = ["RELABEL_FILE", "relabel", "relabel_comparison", "write_manifest"]

RELABEL_FILE = "relabel_book.extxyz"
#: the kinds of file the manifest lists (data, logs, this folder's README; not pid/lock files or stray output)
SHIPPED_SUFFIXES = (".extxyz", ".json", ".jsonl", ".npz", ".log", ".md")


def relabel_steps(frames: list, n_frames: int = 10) -> list[int]:
    """Steps of ``n_frames`` production frames evenly spread over the production stage (fewer if shorter).

    Parameters
    ----------
    frames : list of ase.Atoms
        The run's trajectory frames (``info`` stage and step).
    n_frames : int
        Frames wanted.

    Returns
    -------
    list of int
        Ascending steps; empty without a production stage.
    """
    production = stage_frames(frames, "production")
    if not production:
        return []
    picks = np.linspace(0, len(production) - 1, min(n_frames, len(production))).round().astype(int)
    return sorted({production[k].info["step"] for k in picks})


def relabel(run_dir: Path, n_frames: int = 10, ledger_dir: Path | None = None, log=print) -> int:
    """Book-setting single points on ``n_frames`` production frames of the run in ``run_dir``.

    Appended to ``<run_dir>/relabel_book.extxyz`` (resumable: steps already there are skipped) through
    :func:`zno_book.reference.engine.single_point`; each is charged to the ledger as "relabel".

    Parameters
    ----------
    run_dir : str or Path
        A run directory with ``trajectory.extxyz``.
    n_frames : int
        Production frames to re-label (:func:`relabel_steps`).
    ledger_dir : str or Path, optional
        Folder of the DFT ledger (default ``run_dir.parent``).
    log : callable
        Called with one line (str) per re-labelled frame.

    Returns
    -------
    int
        Frames in ``relabel_book.extxyz`` now, earlier calls included.
    """
    run_dir = Path(run_dir)
    ledger_dir = Path(ledger_dir) if ledger_dir is not None else run_dir.parent
    frames = read_frames(run_dir / "trajectory.extxyz")
    out = run_dir / RELABEL_FILE
    done = {f.info["step"] for f in read_frames(out)}
    settings = DFTSettings()
    by_step = {f.info["step"]: f for f in frames}
    for step in relabel_steps(frames, n_frames):
        if step in done:
            continue
        frame = by_step[step]
        atoms = Atoms(frame.numbers, frame.positions, cell=frame.cell, pbc=True)
        cpu = time.process_time()
        result = single_point(atoms, settings)
        cpu = time.process_time() - cpu
        atoms.calc = SinglePointCalculator(atoms, energy=result["energy"], free_energy=result["energy"],
                                           forces=result["forces"], stress=result["stress"])
        atoms.info.update({"step": step, "time_fs": frame.info["time_fs"], "stage": frame.info["stage"],
                           "config_type": "aimd_liquid_book_relabel", "settings": "book (DFTSettings())",
                           "engine": engine_version(), "kpts": str(tuple(result["kpts"])),
                           "energy_zero_smearing": result["energy_zero_smearing"],
                           "wall_time_s": round(result["wall_time_s"], 3), "cpu_time_s": round(cpu, 3)})
        append_frame(out, atoms)
        charge(ledger_dir, "relabel", f"{run_dir.name}/step{step}", result["wall_time_s"], cpu)
        log(f"re-labelled step {step} with the book setting: {result['wall_time_s']:.0f} s wall, {cpu:.0f} s CPU")
    return len(read_frames(out))


def relabel_comparison(run_dir: Path) -> dict | None:
    """MD setting vs book setting on the re-labelled frames of the run in ``run_dir``.

    Parameters
    ----------
    run_dir : str or Path
        A run directory with ``trajectory.extxyz`` and ``relabel_book.extxyz``.

    Returns
    -------
    dict or None
        ``n_frames``; ``force_rms_eV_A`` and ``force_max_eV_A`` (MD − book, over all components);
        ``energy_diff_spread_meV_atom`` (standard deviation of the per-atom energy difference: what
        matters for relative energies); with stresses, ``pressure_offset_book_minus_md_GPa`` (virial
        pressure, ``mean`` and ``sem``, None for one frame; add it to the MD setting's pressures).
        None if nothing was re-labelled.
    """
    run_dir = Path(run_dir)
    book = read_frames(run_dir / RELABEL_FILE)
    if not book:
        return None
    md = {f.info["step"]: f for f in read_frames(run_dir / "trajectory.extxyz")}
    diffs, energy, offset = [], [], []
    for ref in book:
        frame = md[ref.info["step"]]
        diffs.append(frame.get_forces() - ref.get_forces())
        energy.append((frame.get_potential_energy() - ref.get_potential_energy()) / len(ref))
        if "stress" in frame.calc.results:
            offset.append(pressure_gpa(ref.get_stress(voigt=True)) - pressure_gpa(frame.get_stress(voigt=True)))
    d = np.concatenate(diffs)
    out = {"n_frames": len(book), "force_rms_eV_A": float(np.sqrt(np.mean(d ** 2))),
           "force_max_eV_A": float(np.abs(d).max()),
           "energy_diff_spread_meV_atom": float(np.std(energy) * 1000)}
    if offset:
        out["pressure_offset_book_minus_md_GPa"] = {
            "mean": float(np.mean(offset)),
            "sem": float(np.std(offset, ddof=1) / np.sqrt(len(offset))) if len(offset) > 1 else None}
    return out


def _git_commit(repo: Path) -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "zno_book/aimd"], cwd=repo,
                               capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" (zno_book/aimd modified)" if dirty.stdout.strip() else "")


def write_manifest(root: Path, repo: Path = Path(".")) -> dict:
    """Write ``<root>/aimd/manifest.json``, the provenance of the shipped AIMD files.

    SHA-256 and size of every file under ``<root>/aimd`` with a SHIPPED_SUFFIXES suffix (data,
    checkpoints, logs; not the manifest or hidden files), the code version, the book setting, the
    one-core hours of the ledger, and for each run its protocol, frames, simulated time, cost per step
    (s) and the comparison with its book-setting re-labels (:func:`relabel_comparison`).

    Parameters
    ----------
    root : str or Path
        The data folder.
    repo : Path
        The git work tree whose HEAD commit is recorded (and whether ``zno_book/aimd`` is modified);
        "unknown" if git fails.

    Returns
    -------
    dict
        The manifest written.
    """
    aimd = Path(root) / "aimd"
    files = {}
    for path in sorted(aimd.rglob("*")):
        if path.is_file() and path.suffix in SHIPPED_SUFFIXES and path.name != "manifest.json" \
                and not path.name.startswith("."):
            files[str(path.relative_to(aimd))] = {"sha256": sha256(path), "bytes": path.stat().st_size}
    runs = {}
    for protocol_file in sorted(aimd.glob("*/protocol.json")):
        run_dir = protocol_file.parent
        frames = read_frames(run_dir / "trajectory.extxyz")
        steps = [f for f in frames if f.info["step"] > 0]
        runs[run_dir.name] = {
            "protocol": read_json(protocol_file)["protocol"], "frames": len(frames),
            "simulated_fs": float(frames[-1].info["time_fs"]) if frames else 0.0,
            "wall_s_per_step": float(np.mean([f.info["wall_time_s"] for f in steps])) if steps else None,
            "cpu_s_per_step": float(np.mean([f.info["cpu_time_s"] for f in steps])) if steps else None,
            "relabel_vs_book": relabel_comparison(run_dir)}
    manifest = {"description": "PBE ab-initio MD of liquid ZnO (issue 19): pilot, state point, runs",
                "engine": engine_version(), "code": f"zno_book.aimd at {_git_commit(repo)}",
                "book_setting": DFTSettings().as_dict(),
                "core_hours": {"cpu": core_hours(aimd, "cpu"), "wall": core_hours(aimd, "wall")},
                "runs": runs, "files": files,
                "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    write_json(aimd / "manifest.json", manifest)
    return manifest
