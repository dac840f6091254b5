"""Tasks that fail on purpose, for the driver's tests: a worker killed mid-task, a task that fails and
then succeeds, one that always fails. Light (ASE's EMT, no mliplib), so a worker starts in a second.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator


def emt_frame(seed: int, dataset: str = "emt", delay: float = 0.0, kill_marker: str | None = None) -> list[Atoms]:
    """EMT energy and forces of a 4-atom Cu cell rattled with ``seed``, after sleeping ``delay`` s.

    With ``kill_marker`` (a path) and no file there yet: creates it, sleeps ``delay`` s and kills its own
    worker process (SIGKILL, mid-task), the way an out-of-memory kill or a lost node ends a task; the
    next attempt finds the marker and returns normally. Never use it with the serial executor (it would
    kill the driver).

    Parameters
    ----------
    seed : int
        Seed of the rattle (0.05 Å standard deviation).
    dataset : str
        ``info["dataset"]`` of the frame (its file in an ExtxyzStore).
    delay : float
        Sleep before the calculation (s).
    kill_marker : str, optional
        Path of the marker file that says the worker was killed once already.

    Returns
    -------
    list of ase.Atoms
        One frame: energy (eV) and forces (4, 3) eV/Å in a single-point calculator; ``info``: dataset,
        seed.
    """
    if kill_marker is not None and not os.path.exists(kill_marker):
        Path(kill_marker).write_text(f"{os.getpid()}\n")
        time.sleep(delay)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(delay)
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
    atoms.rattle(0.05, seed=seed)
    atoms.calc = EMT()
    results = {"energy": atoms.get_potential_energy(), "forces": atoms.get_forces()}
    atoms.calc = SinglePointCalculator(atoms, **results)
    atoms.info.update(dataset=dataset, seed=seed)
    return [atoms]


def flaky(counter: str, failures: int = 1) -> dict:
    """Raises ``RuntimeError`` on its first ``failures`` attempts, then succeeds.

    Parameters
    ----------
    counter : str
        File that counts the attempts across processes (created on the first).
    failures : int
        Attempts that fail.

    Returns
    -------
    dict
        ``{"attempts": n}``, the number of this attempt.

    Raises
    ------
    RuntimeError
        On attempts 1 … ``failures``.
    """
    path = Path(counter)
    attempts = (int(path.read_text()) if path.exists() else 0) + 1
    path.write_text(str(attempts))
    if attempts <= failures:
        raise RuntimeError(f"attempt {attempts} of a task that fails {failures} time(s)")
    return {"attempts": attempts}


def fails(message: str) -> dict:
    """Always raises ``ValueError(message)``.

    Parameters
    ----------
    message : str
        The error message.

    Raises
    ------
    ValueError
        Always.
    """
    raise ValueError(message)


def die() -> dict:
    """Kills its own worker process (SIGKILL) every time: a task that can never finish."""
    os.kill(os.getpid(), signal.SIGKILL)
    return {}
