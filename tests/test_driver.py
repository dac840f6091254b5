"""The task driver (zno_book.driver) on every executor: serial, local processes and a real
dask.distributed LocalCluster of 2 worker processes; stores; retries; killed workers; cluster recipes.

The tiny tasks are real work (a 2-atom GPAW single point, a linear-BP fit, 50 MD steps), deterministic
with one thread per worker, so every executor must give the serial path's numbers.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from zno_book import executors
from zno_book.driver import (
    ExtxyzStore,
    FolderStore,
    PrefixStore,
    Task,
    demo_store,
    demo_tasks,
    main,
    resolve,
    run,
    write_atomic,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "zno"
MODEL = ROOT / "models" / "v1" / "linear_bp.npz"
HAS_GPAW = importlib.util.find_spec("gpaw") is not None
HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason="dask[distributed] is the optional 'dask' extra "
                                "(pip install -e '.[dask]'; part of the test extra)")
FAULTS = "zno_book.driver_faults"
#: extxyz stores per-atom arrays (forces) with 8 decimals; energy and stress (in the comment line) in full
EXTXYZ_DIGITS = 1e-8


def emt_tasks(n: int, delay: float = 0.0, dataset: str = "emt") -> list[Task]:
    return [Task(f"emt/{seed}", f"{FAULTS}:emt_frame", {"seed": seed, "dataset": dataset, "delay": delay},
                 cost=delay) for seed in range(n)]


def frame_tasks(store: ExtxyzStore) -> Counter:
    """Frames per task name in the store's files, read back from disk."""
    return Counter(atoms.info["task"] for path in store.files() for atoms in read(path, index=":"))


def assert_same_results(store_a: PrefixStore, store_b: PrefixStore, names: list[str]) -> None:
    """Equal to floating-point noise: fits and MD are bitwise equal on one machine with one thread, and a
    converged GPAW SCF from the same start agrees to ~1e-12 eV (summation order), 1e-8 being far below any
    physical difference (a change of setting or geometry moves the energy by ≥ 1e-4 eV); forces in an
    extxyz file are rounded to 8 decimals, so two nearly equal ones may differ by one unit there."""
    for name in names:
        a, b = store_a.store_of(name).load(name), store_b.store_of(name).load(name)
        if isinstance(a, dict):
            assert a.keys() == b.keys(), name
            for key in a:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-12, atol=1e-12, err_msg=f"{name}: {key}")
        else:
            assert len(a) == len(b) == 1, name
            for prop, atol in (("energy", 1e-8), ("forces", 2 * EXTXYZ_DIGITS), ("stress", 1e-8)):
                np.testing.assert_allclose(b[0].calc.results[prop], a[0].calc.results[prop], rtol=0, atol=atol,
                                           err_msg=f"{name}: {prop}")


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def serial_demo(tmp_path_factory):
    """The demo tasks on the serial executor: the reference results."""
    root = tmp_path_factory.mktemp("serial")
    tasks = demo_tasks(DATA, MODEL, gpaw=HAS_GPAW)
    report = run(tasks, demo_store(root), executors.serial, workers=1, log=io.StringIO())
    assert report.ok and sorted(report.done) == sorted(t.name for t in tasks)
    return root, tasks


@pytest.fixture(scope="module")
def cluster():
    """A real dask.distributed LocalCluster, 2 single-threaded worker processes, shared by the dask
    tests; allowed-failures 0, so a killed worker reaches the driver as KilledWorker (the driver's
    resubmission is tested, not the scheduler's own retry)."""
    pytest.importorskip("distributed", reason="dask[distributed] is the optional 'dask' extra")
    import dask.config  # after distributed, whose import adds its defaults that this setting changes

    numba_threads = os.environ.get("NUMBA_NUM_THREADS")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        executor = executors.dask(2)
    # the workers' Numba setting stays in the workers: in the calling process (here pytest, whose Numba
    # threads may be running) a changed NUMBA_NUM_THREADS makes every later Numba compilation fail
    assert os.environ.get("NUMBA_NUM_THREADS") == numba_threads
    yield executor
    assert os.environ.get("NUMBA_NUM_THREADS") == numba_threads  # also after workers were killed and restarted
    executor.shutdown()


def on(cluster):
    """An executor factory on the shared cluster that leaves the client open for the next test."""
    return lambda: executors.DaskExecutor(cluster.client, close_client=False, threads=1)


# ------------------------------------------------------------------------------------ tasks and stores


def test_task_refuses_what_a_worker_could_not_run():
    with pytest.raises(ValueError, match="package.module:function"):
        Task("a", "zno_book.driver_faults.fails")
    with pytest.raises(TypeError, match="JSON-serialisable"):
        Task("a", f"{FAULTS}:fails", {"message": Path("x")})
    with pytest.raises(ValueError, match="retries"):
        Task("a", f"{FAULTS}:fails", retries=-1)
    with pytest.raises(ImportError, match="no_such_function"):
        resolve(f"{FAULTS}:no_such_function")
    with pytest.raises(ValueError, match="unique"):
        run([Task("a", f"{FAULTS}:fails"), Task("a", f"{FAULTS}:fails")], FolderStore("unused"), executors.serial)
    with pytest.raises(ValueError, match="neither in this run"):
        run([Task("a", f"{FAULTS}:fails", after=("b",))], FolderStore("unused"), executors.serial)


def test_folder_store_round_trip(tmp_path):
    store = FolderStore(tmp_path / "results")
    assert store.done() == set()
    task = Task("ensemble/linear/member+0.01", f"{FAULTS}:fails")
    store.save(task, {"weights": np.arange(6.0).reshape(2, 3), "alpha": 0.5, "kind": "linear", "steps": 7})
    assert store.done() == {task.name}
    loaded = store.load(task.name)
    np.testing.assert_array_equal(loaded["weights"], np.arange(6.0).reshape(2, 3))
    assert (loaded["alpha"], loaded["kind"], loaded["steps"]) == (0.5, "linear", 7)
    with pytest.raises(TypeError, match="nested"):
        store.save(Task("bad", f"{FAULTS}:fails"), {"nested": {"a": 1}})
    with pytest.raises(ValueError, match="cannot be a file path"):
        store.path("a/../b")
    assert not [p for p in (tmp_path / "results").rglob("*") if p.name.endswith(".tmp")]


def test_write_atomic_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("old")

    def crash(handle):
        handle.write(b"half a res")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, crash)
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["data.txt"]


def test_extxyz_store_reads_the_shipped_data_as_the_old_runner_wrote_it():
    """Task names per file agree with the manifest that the old claim-file runner wrote; a relaxation's
    frames come back in step order."""
    store = ExtxyzStore(DATA)
    manifest = json.loads((DATA / "manifest.json").read_text())
    assert [p.name for p in store.files()] == sorted(manifest["files"])
    for path in store.files():
        frames = read(path, index=":")
        assert len({a.info["task"] for a in frames}) == manifest["files"][path.name]["tasks"], path.name
    assert sum(entry["tasks"] for entry in manifest["files"].values()) == len(store.done())
    relaxation = store.load("surfaces/10-10")
    assert [a.info["relax_step"] for a in relaxation] == list(range(len(relaxation)))
    assert relaxation[-1].info["relax_final"]


def test_extxyz_store_appends_whole_frames_and_keeps_the_old_bytes(tmp_path):
    shutil.copy(DATA / "phonons.extxyz", tmp_path / "phonons.extxyz")
    old = (tmp_path / "phonons.extxyz").read_bytes()
    saves = []
    store = ExtxyzStore(tmp_path, on_save=lambda s: saves.append(len(s.done())))
    before = store.done()
    task = Task("phonons/extra", f"{FAULTS}:emt_frame")
    frames = resolve(task.fn)(seed=3, dataset="phonons")
    store.save(task, frames)
    assert (tmp_path / "phonons.extxyz").read_bytes().startswith(old)
    assert store.done() == before | {task.name} and saves == [len(before) + 1]
    back = store.load(task.name)
    np.testing.assert_allclose(back[0].get_forces(), frames[0].get_forces(), rtol=0, atol=EXTXYZ_DIGITS)
    assert back[0].get_potential_energy() == pytest.approx(frames[0].get_potential_energy(), rel=1e-12)
    with pytest.raises(ValueError, match="dataset"):
        store.save(Task("x", task.fn), resolve(task.fn)(seed=0, dataset="a/b"))
    with pytest.raises(ValueError, match="belongs to task"):
        store.save(Task("y", task.fn), frames)
    with pytest.raises(TypeError, match="list of ase.Atoms"):
        store.save(Task("z", task.fn), frames[0])


def test_prefix_store_routes_by_the_longest_prefix(tmp_path):
    frames, results = ExtxyzStore(tmp_path / "frames"), FolderStore(tmp_path / "results")
    store = PrefixStore({"": results, "dft/": frames})
    assert store.store_of("dft/x") is frames and store.store_of("fit/x") is results
    with pytest.raises(KeyError, match="no store"):
        PrefixStore({"dft/": frames}).store_of("fit/x")


# ------------------------------------------------------------------------------------ executors agree


def test_local_processes_give_the_serial_results_with_one_thread(serial_demo, tmp_path):
    reference, tasks = serial_demo
    threads = Task("threads", "zno_book.driver_tasks:thread_report")
    report = run([*tasks, threads], demo_store(tmp_path), executors.factory("local", 2), workers=2,
                 log=io.StringIO())
    assert report.ok and report.submitted == len(tasks) + 1
    assert_same_results(demo_store(reference), demo_store(tmp_path), [t.name for t in tasks])
    counts = FolderStore(tmp_path / "results").load("threads")
    assert (counts["blas_threads"], counts["numba_threads"], counts["torch_threads"]) == (1, 1, 1)


@needs_dask
def test_dask_cluster_gives_the_serial_results_and_a_rerun_skips(serial_demo, cluster, tmp_path):
    reference, tasks = serial_demo
    threads = Task("threads", "zno_book.driver_tasks:thread_report")
    report = run([*tasks, threads], demo_store(tmp_path), on(cluster), workers=2, log=io.StringIO())
    assert report.ok and report.submitted == len(tasks) + 1
    assert_same_results(demo_store(reference), demo_store(tmp_path), [t.name for t in tasks])
    counts = FolderStore(tmp_path / "results").load("threads")
    assert (counts["blas_threads"], counts["numba_threads"], counts["torch_threads"]) == (1, 1, 1)

    again = run(tasks, demo_store(tmp_path), on(cluster), workers=2, log=io.StringIO())
    assert again.submitted == 0 and sorted(again.skipped) == sorted(t.name for t in tasks)
    (tmp_path / "results" / "md" / "linear_bp.npz").unlink()
    partial = run(tasks, demo_store(tmp_path), on(cluster), workers=2, log=io.StringIO())
    assert partial.submitted == 1 and partial.done == ["md/linear_bp"]
    assert_same_results(demo_store(reference), demo_store(tmp_path), ["md/linear_bp"])
    # the command line, on the same scheduler: everything is done, nothing is submitted, exit status 0
    assert main(["demo", "--executor", "dask", "--address", cluster.cluster.scheduler_address,
                 "--root", str(tmp_path), "--data", str(DATA), "--model", str(MODEL)]) == 0


# ------------------------------------------------------------------------------------------- failures


def test_a_failing_task_is_retried_then_reported_and_the_others_finish(tmp_path):
    tasks = [Task("flaky", f"{FAULTS}:flaky", {"counter": str(tmp_path / "count"), "failures": 1}, retries=1),
             Task("broken", f"{FAULTS}:fails", {"message": "no SCF convergence"}, retries=2),
             Task("after-broken", f"{FAULTS}:emt_frame", {"seed": 9}, after=("broken",)),
             *emt_tasks(3)]
    store = PrefixStore({"emt/": ExtxyzStore(tmp_path / "frames"), "": FolderStore(tmp_path / "results")})
    log = io.StringIO()
    report = run(tasks, store, executors.factory("local", 2), workers=2, log=log)
    assert not report.ok
    assert sorted(report.failed) == ["after-broken", "broken"]
    assert "ValueError: no SCF convergence" in report.failed["broken"]
    assert "waits for broken" in report.failed["after-broken"]
    assert sorted(report.done) == ["emt/0", "emt/1", "emt/2", "flaky"]
    assert FolderStore(tmp_path / "results").load("flaky") == {"attempts": 2}
    assert report.submitted == 2 + 3 + 3  # flaky twice, broken three times, each frame once
    assert log.getvalue().count("retry broken") == 2 and "failed broken: ValueError" in log.getvalue()


def test_killing_a_local_worker_mid_task_loses_and_duplicates_nothing(tmp_path):
    """One task SIGKILLs its worker process mid-task (as the OOM killer would): the pool breaks, the
    driver starts a new one and resubmits what was in flight; every frame is saved exactly once."""
    store = ExtxyzStore(tmp_path / "frames")
    killer = Task("emt/killer", f"{FAULTS}:emt_frame",
                  {"seed": 99, "dataset": "emt", "delay": 1.0, "kill_marker": str(tmp_path / "killed")})
    tasks = [*emt_tasks(6, delay=0.3), killer]
    log = io.StringIO()
    report = run(tasks, store, executors.factory("local", 2), workers=2, log=log)
    assert report.ok, report.failed
    assert (tmp_path / "killed").exists() and report.lost >= 1 and "pool broke" in log.getvalue()
    assert frame_tasks(store) == Counter({t.name: 1 for t in tasks})
    serial = ExtxyzStore(tmp_path / "serial")
    run(emt_tasks(6), serial, executors.serial, workers=1, log=io.StringIO())
    for name in (t.name for t in emt_tasks(6)):
        np.testing.assert_array_equal(store.load(name)[0].get_forces(), serial.load(name)[0].get_forces())


@needs_dask
def test_killing_a_dask_worker_mid_task_loses_and_duplicates_nothing(cluster, tmp_path):
    """The worker process dies mid-task; the scheduler reports KilledWorker (allowed-failures 0), the
    nanny restarts the worker, the driver resubmits; every frame is saved exactly once."""
    store = ExtxyzStore(tmp_path / "frames")
    killer = Task("emt/killer", f"{FAULTS}:emt_frame",
                  {"seed": 99, "dataset": "emt", "delay": 1.0, "kill_marker": str(tmp_path / "killed")})
    tasks = [killer, *emt_tasks(4, delay=0.3)]
    log = io.StringIO()
    report = run(tasks, store, on(cluster), workers=2, log=log)
    assert report.ok, report.failed
    killed_pid = int((tmp_path / "killed").read_text())
    assert report.lost >= 1 and "lost  emt/killer" in log.getvalue()
    with pytest.raises(ProcessLookupError):
        os.kill(killed_pid, 0)
    assert frame_tasks(store) == Counter({t.name: 1 for t in tasks})


def test_a_task_that_always_kills_its_worker_fails_after_the_lost_limit(tmp_path):
    tasks = [Task("doomed", f"{FAULTS}:die"), *emt_tasks(2)]
    report = run(tasks, ExtxyzStore(tmp_path), executors.factory("local", 1), workers=1, lost_limit=2,
                 log=io.StringIO())
    # lost twice with emt/0 in flight (a broken pool fails both), then alone: emt/0 is not blamed
    assert list(report.failed) == ["doomed"] and "lost 3 times" in report.failed["doomed"]
    assert sorted(report.done) == ["emt/0", "emt/1"]


# ---------------------------------------------------------------------------------- cluster recipes


def test_slurm_dask_recipe_asks_for_single_threaded_workers_on_the_cores_it_was_given():
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is the optional 'cluster' extra")
    cluster = executors.slurm_dask(jobs=0, cores=8, memory="16GB", walltime="02:00:00", partition="short",
                                   account="proj", prologue=("source .venv/bin/activate",))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p short", "#SBATCH -A proj", "#SBATCH -t 02:00:00", "#SBATCH --cpus-per-task=8",
                 "export OMP_NUM_THREADS=1", "export NUMBA_NUM_THREADS=1", "source .venv/bin/activate"):
        assert line in script.splitlines(), line
    assert "--nworkers 8" in script and "--nthreads 1" in script


def test_executorlib_recipe_gives_each_task_its_mpi_ranks():
    pytest.importorskip("executorlib", reason="executorlib is the optional 'cluster' extra")
    from executorlib.standalone.command import generate_slurm_command

    resources = executors.executorlib_resources(8, run_time_max=3600, slurm_args=("--exact",))
    assert generate_slurm_command(cwd=None, **resources) == ["srun", "-n", "8", "--cpus-per-task=1", "--time=61",
                                                             "--exact"]
    executor = executors.executorlib_slurm(8, max_cores=16)  # nothing starts before a submit
    try:
        assert isinstance(executor, executors.RankZero)
    finally:
        executor.shutdown()
    # an MPI task's future holds one result per rank; RankZero keeps rank 0's
    assert executors.RankZero(executors.serial()).submit(lambda: ["rank 0", "rank 1"]).result() == "rank 0"
    with pytest.raises(ValueError, match="MPI ranks"):
        executors.executorlib_resources(0)
