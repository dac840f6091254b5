"""The generator's command line, ``python -m zno_book.reference``: a dry run reads the data folder and
writes nothing, a folder without a manifest is refused unless ``--new`` is given, ``--only`` and
``--max-priority`` select the tasks a dry run lists, and ``--workers`` must be at least 1.

``run`` end to end, as a subprocess, on the tiny plan (real GPAW on 2-atom cells at a low cutoff: four
single points and a relaxation in two chunks) with 2 local worker processes and on a dask.distributed
LocalCluster of 2 workers: one worker is killed (SIGKILL) while it computes, and every task's frames are
still in the data file exactly once; a rerun computes nothing; both executors give the same frames.
"""

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from zno_book.datasets import verify_checksum
from zno_book.paths import data_dir
from zno_book.reference.__main__ import main
from zno_book.reference.plan import all_tasks, tiny_tasks

ROOT = Path(__file__).resolve().parents[1]
HAS_GPAW = importlib.util.find_spec("gpaw") is not None
HAS_DASK = importlib.util.find_spec("distributed") is not None

LISTED = re.compile(r"^  p(\d+) (\S+)", re.MULTILINE)


def tree(root):
    """Every path below ``root`` with its size and modification time."""
    return {p.relative_to(root): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.fixture
def partial(tmp_path):
    """A data folder with the manifest and the convergence study only (every other task pending)."""
    root = tmp_path / "zno"
    root.mkdir()
    for name in ("manifest.json", "convergence.extxyz"):
        shutil.copy(data_dir() / name, root)
    return root


def test_dry_run_lists_pending_tasks_and_writes_nothing(partial, capsys):
    before = tree(partial)
    assert main(["dry-run", "--root", str(partial)]) == 0
    assert tree(partial) == before  # no .work/, no checkpoints/, nothing touched
    listed = LISTED.findall(capsys.readouterr().out)
    expected = [t.name for t in all_tasks() if not t.name.startswith("convergence/")]
    assert [name for _, name in listed] == expected


def test_dry_run_honours_only_and_max_priority(partial, capsys):
    main(["dry-run", "--root", str(partial), "--only", "eos/wurtzite"])
    out = capsys.readouterr().out
    names = [name for _, name in LISTED.findall(out)]
    assert names == [t.name for t in all_tasks() if t.name.startswith("eos/wurtzite")] and len(names) == 7
    assert "in this selection" in out
    main(["dry-run", "--root", str(partial), "--max-priority", "1"])
    listed = LISTED.findall(capsys.readouterr().out)
    tier1 = [t.name for t in all_tasks() if t.priority == 1]
    assert [name for _, name in listed] == tier1 and all(int(p) <= 1 for p, _ in listed)
    main(["dry-run", "--root", str(partial), "--only", "no/such/task"])
    assert LISTED.findall(capsys.readouterr().out) == []  # an empty selection, not the whole plan


def test_folder_without_manifest_needs_new(tmp_path, capsys):
    typo = tmp_path / "data" / "znoo"
    for command in ("dry-run", "run", "sample", "manifest"):
        with pytest.raises(SystemExit) as stop:
            main([command, "--root", str(typo)])
        assert stop.value.code == 2
        assert "no manifest.json" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing created
    assert main(["dry-run", "--root", str(typo), "--new"]) == 0  # a new data set: everything pending
    assert len(LISTED.findall(capsys.readouterr().out)) == len(all_tasks())
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("workers", ["0", "-1", "two"])
def test_workers_must_be_a_positive_integer(partial, capsys, workers):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--root", str(partial), "--workers", workers])
    assert stop.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_address_needs_the_dask_executor(partial, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "--root", str(partial), "--address", "tcp://localhost:8786"])
    assert stop.value.code == 2 and "--executor dask" in capsys.readouterr().err


# ------------------------------------------------------------------ run, end to end, killing a worker


def cli(root: Path, executor: str, log: Path) -> subprocess.Popen:
    """``python -m zno_book.reference run --plan tiny`` on a new data folder, 2 workers, output in ``log``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with open(log, "ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "zno_book.reference", "run", "--plan", "tiny", "--new",
                                 "--root", str(root), "--executor", executor, "--workers", "2"],
                                cwd=ROOT, env=environment, stdout=handle, stderr=subprocess.STDOUT)


def kill_a_busy_worker(process: subprocess.Popen, root: Path, timeout: float = 600.0) -> str:
    """Once the first frame is saved, SIGKILL a worker process of ``process`` while it computes (it holds
    a GPAW log of ``root/.work/txt`` open) and return that log's name (the task, '/' written '__')."""
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if (root / "tiny.extxyz").exists():
            for child in psutil.Process(process.pid).children(recursive=True):
                try:
                    logs = [f.path for f in child.open_files() if f"{os.sep}.work{os.sep}txt{os.sep}" in f.path]
                except psutil.Error:  # it ended meanwhile
                    continue
                if logs:
                    os.kill(child.pid, signal.SIGKILL)
                    return Path(logs[0]).stem
        time.sleep(0.1)
    raise AssertionError(f"no worker was seen computing after the first frame (exit status {process.poll()})")


#: the tiny runs of this module by executor, for comparing them
RUNS = {}


@pytest.fixture(scope="module", params=["local", pytest.param("dask", marks=pytest.mark.skipif(
    not HAS_DASK, reason="dask[distributed] is the optional 'dask' extra"))])
def tiny_run(request, tmp_path_factory):
    """The tiny plan run by the command line on 2 workers of ``request.param``, one of them killed mid-task."""
    if not HAS_GPAW:
        pytest.skip("GPAW is installed by `make test` (make dft)")
    root, log = tmp_path_factory.mktemp(request.param) / "data", tmp_path_factory.mktemp("logs") / "run.log"
    process = cli(root, request.param, log)
    try:
        killed = kill_a_busy_worker(process, root)
        status = process.wait(timeout=900)
    finally:
        if process.poll() is None:
            process.kill()
    RUNS[request.param] = {"executor": request.param, "root": root, "log": log, "status": status, "killed": killed}
    return RUNS[request.param]


def plan_task(log_name: str) -> str:
    """The plan task of a GPAW log name (``tiny__cscl__rattle0``, ``checkpoints__tiny__rocksalt__relax__chunk01``)."""
    name = log_name.replace("__", "/")
    return name.removeprefix("checkpoints/").rsplit("/chunk", 1)[0] if name.startswith("checkpoints/") else name


def test_run_loses_and_duplicates_nothing_when_a_worker_is_killed(tiny_run):
    root, text = tiny_run["root"], tiny_run["log"].read_text()
    assert tiny_run["status"] == 0, text
    frames = read(root / "tiny.extxyz", index=":")
    steps = Counter((a.info["task"], a.info.get("relax_step")) for a in frames)
    assert set(steps.values()) == {1}, text  # no frame twice
    assert {task for task, _ in steps} == {t.name for t in tiny_tasks()}, text  # none missing
    assert plan_task(tiny_run["killed"]) in {task for task, _ in steps}
    relaxation = [a for a in frames if a.info["task"] == "tiny/rocksalt/relax"]
    assert [a.info["relax_step"] for a in relaxation] == list(range(len(relaxation))) and len(relaxation) > 6
    assert relaxation[-1].info["relax_final"] and not any(a.info["relax_final"] for a in relaxation[:-1])
    assert relaxation[-1].get_potential_energy() < relaxation[0].get_potential_energy()
    assert {a.info["executor"].split()[0] for a in frames} == {tiny_run["executor"]}
    if tiny_run["executor"] == "local":  # the pool broke and was replaced (Dask reschedules by itself)
        assert "pool broke" in text and "lost" in text
    verify_checksum(root / "tiny.extxyz", root / "manifest.json")  # the manifest follows the last save
    assert not (root / "checkpoints").exists()  # the finished relaxation's chunks are removed


def test_a_rerun_computes_nothing(tiny_run, tmp_path):
    before = (tiny_run["root"] / "tiny.extxyz").read_bytes()
    process = cli(tiny_run["root"], tiny_run["executor"], tmp_path / "rerun.log")
    assert process.wait(timeout=300) == 0
    text = (tmp_path / "rerun.log").read_text()
    assert f"{len(tiny_tasks())} of the {len(tiny_tasks())} tasks selected are in the data files already" in text
    assert "0 tasks to run" in text and (tiny_run["root"] / "tiny.extxyz").read_bytes() == before


def test_local_processes_and_dask_give_the_same_frames(tiny_run):
    """The dask run's frames equal the local run's (same machine, one thread per worker: the same SCF
    from the same start; 1e-6 eV and 1e-6 Å are far below any physical difference)."""
    if tiny_run["executor"] == "local" or "local" not in RUNS:
        pytest.skip("compares the dask run with the local one")
    local = {(a.info["task"], a.info.get("relax_step")): a for a in read(RUNS["local"]["root"] / "tiny.extxyz", index=":")}
    frames = read(tiny_run["root"] / "tiny.extxyz", index=":")
    assert len(frames) == len(local)
    for atoms in frames:
        reference = local[atoms.info["task"], atoms.info.get("relax_step")]
        np.testing.assert_allclose(atoms.positions, reference.positions, rtol=0, atol=1e-6)
        assert atoms.get_potential_energy() == pytest.approx(reference.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(atoms.get_forces(), reference.get_forces(), rtol=0, atol=1e-6)
