"""Command line of the AIMD work (issue 19); run from the repository root.

``python -m zno_book.aimd [--root data/zno] COMMAND``:

pilot       measure the candidate DFT settings (resumable), then write ``aimd/pilot_summary.json``
summary     rewrite and print the pilot summary
statepoint  DFT pressures on PLIP frames at the state points (resumable), then ``statepoint_summary.json``
run         start or resume the AIMD run in ``--run-dir`` (its ``protocol.json`` once it exists)
status      progress of a run: steps, simulated time, wall time per step, ETA, process
relabel     book-setting single points on ~10 production frames of a run (resumable)
manifest    write ``aimd/manifest.json``: SHA-256 of every file, code version, settings, costs
budget      one-core hours spent (CPU and wall), by kind

Every DFT command runs serially on one core (OMP/BLAS threads are pinned to 1 unless set) and is
resumable: run it again after a kill and it continues where it stopped.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import sys
import time
from pathlib import Path

from .ledger import core_hours
from .pilot import run_pilot, summarize_pilot
from .run import RunProtocol, liquid_protocol, run, status
from .settings import SETTINGS
from .ship import relabel, write_manifest
from .statepoint import run_statepoint, summarize_statepoint
from .storage import read_json


def _logger(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}"
        print(line, flush=True)
        with open(path, "a") as fh:
            fh.write(line + "\n")
    return log


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m zno_book.aimd", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("data/zno"), help="the data folder (default data/zno)")
    sub = parser.add_subparsers(dest="command", required=True)
    pilot = sub.add_parser("pilot", help="measure the candidate settings (resumable), then write the summary")
    pilot.add_argument("--gpaw-log-dir", type=Path, default=None, help="GPAW text logs, one per snippet")
    sub.add_parser("summary", help="rewrite pilot_summary.json from the measured steps and print it")
    statepoint = sub.add_parser("statepoint", help="DFT pressures at the state points (resumable), then the summary")
    statepoint.add_argument("--summary-only", action="store_true",
                            help="no DFT: summarise the pressures that exist (the book's 4.9 g/cm³ frames at least)")
    run = sub.add_parser("run", help="start or resume an AIMD run")
    run.add_argument("--run-dir", type=Path, default=None, help="default <root>/aimd/nvt_3000K")
    run.add_argument("--setting", help="DFT setting name (new runs only)")
    run.add_argument("--density", type=float, help="g/cm³ (new runs only)")
    run.add_argument("--timestep", type=float, default=2.0, help="fs (new runs only, default 2)")
    run.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    status = sub.add_parser("status", help="progress of a run")
    status.add_argument("--run-dir", type=Path, default=None, help="default <root>/aimd/nvt_3000K")
    relabel_cmd = sub.add_parser("relabel", help="book-setting single points on ~10 production frames (resumable)")
    relabel_cmd.add_argument("--run-dir", type=Path, default=None, help="default <root>/aimd/nvt_3000K")
    relabel_cmd.add_argument("--frames", type=int, default=10)
    sub.add_parser("manifest", help="write <root>/aimd/manifest.json (SHA-256 of every file, code version, costs)")
    sub.add_parser("budget", help="one-core hours spent, by kind")
    return parser


def _run_protocol(args):
    stored = args.run_dir / "protocol.json"
    if stored.exists():
        if args.setting or args.density:
            raise SystemExit(f"{stored} exists: resume without --setting/--density (or use another --run-dir)")
        return RunProtocol.from_dict(read_json(stored)["protocol"])
    if not (args.setting and args.density):
        raise SystemExit("a new run needs --setting and --density")
    return liquid_protocol(SETTINGS[args.setting], args.density, timestep_fs=args.timestep)


def main(argv=None) -> int:
    """``python -m zno_book.aimd [--root DIR] COMMAND [options]``: run one command (module docstring).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status 0. Invalid arguments, or ``run`` options that do not fit the run directory, exit
        through ``SystemExit`` with a message; errors of a command propagate.
    """
    args = _parser().parse_args(argv)
    aimd = args.root / "aimd"
    if getattr(args, "run_dir", "unset") is None:
        args.run_dir = aimd / "nvt_3000K"

    if args.command == "pilot":
        log = _logger(aimd / "pilot.log")
        log(f"pilot start (pid {os.getpid()})")
        run_pilot(args.root, log=log, gpaw_log_dir=args.gpaw_log_dir)
        summarize_pilot(args.root)
        log("pilot done")
    elif args.command == "summary":
        print(json.dumps(summarize_pilot(args.root), indent=1, ensure_ascii=False))
    elif args.command == "statepoint":
        log = _logger(aimd / "statepoint.log")
        if not args.summary_only:
            log(f"state point start (pid {os.getpid()})")
            run_statepoint(args.root, log=log)
        summary = summarize_statepoint(args.root)
        for row in summary["points"]:
            log(f"{row['temperature_K']:.0f} K, {row['density_g_cm3']} g/cm³: P = {row['pressure_GPa']:+.2f} ± "
                f"{row['pressure_err_GPa']:.2f} GPa (virial {row['virial_mean_GPa']:+.2f}, kinetic "
                f"{row['kinetic_GPa']:+.2f}, correction {row['correction_GPa']:+.2f}; {row['n_frames']} frames)")
        log(f"zero pressure at 3000 K: {json.dumps(summary['zero_pressure_3000K'])}")
    elif args.command == "run":
        protocol = _run_protocol(args)
        run(args.run_dir, protocol, max_steps=args.max_steps, log=_logger(args.run_dir / "run.log"),
            ledger_dir=aimd)
    elif args.command == "status":
        print(json.dumps(status(args.run_dir), indent=1))
    elif args.command == "relabel":
        relabel(args.run_dir, args.frames, ledger_dir=aimd, log=_logger(args.run_dir / "run.log"))
    elif args.command == "manifest":
        manifest = write_manifest(args.root)
        print(f"{aimd / 'manifest.json'}: {len(manifest['files'])} files, code {manifest['code']}")
    elif args.command == "budget":
        print(json.dumps({"cpu": core_hours(aimd, "cpu"), "wall": core_hours(aimd, "wall")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
