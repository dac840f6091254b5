"""One driver, any executor: run named tasks on a ``concurrent.futures.Executor`` and store each result once.

A :class:`Task` names an importable function (``"module:function"``) and its JSON-serialisable keyword
arguments, so any worker, on this machine or on a cluster node, imports and runs it (nothing pickled
but the function's name and the result). :func:`run` submits the tasks whose dependencies are finished,
at most ``workers + queue`` at a time, and saves every result as it arrives; the driver is the only
process that writes the store, so there are no lock files, and each write is atomic (a temporary file in
the same folder, then ``os.replace``), so a crash leaves either the whole result or none of it.

- Finished tasks (names in ``store.done()``) are skipped: a rerun resumes.
- A task that raises is retried ``task.retries`` times, then reported as failed; the others go on, and
  :func:`run` returns a :class:`Report` listing the failures (the command line exits non-zero).
- A task whose worker dies (killed, out of memory, node lost: ``BrokenProcessPool`` for local processes,
  ``KilledWorker`` for Dask) is resubmitted, on a new process pool if the old one broke: nothing is lost.
  Each submission's future is read once and a task is resubmitted only after its future failed, so a
  result is saved once. One driver per store: two drivers on one store would run the same tasks twice.
- Progress: one line per finished task on stderr, with done/total, elapsed time and an ETA from the
  tasks' estimated costs (one-core seconds), scaled by the throughput measured so far.

Stores: :class:`FolderStore` (one ``.npz`` per task: fits, ensemble members, MD runs),
:class:`ExtxyzStore` (labelled frames appended to ``<dataset>.extxyz``, the task name in
``atoms.info["task"]``: the format of ``data/zno/``) and :class:`PrefixStore` (several behind one).
Executors: :mod:`zno_book.executors`.

Command line (the tiny tasks of the tests; see :func:`demo_tasks`)::

    python -m zno_book.driver demo --executor local --workers 2 --root /tmp/demo
    python -m zno_book.driver demo --executor dask --workers 2 --root /tmp/demo
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import importlib
import importlib.util
import io
import json
import os
import socket
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, CancelledError, Executor, Future, wait
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import numpy as np
from ase import Atoms
from ase.io import read, write

from zno_book import executors

# ---------------------------------------------------------------------------------------------- tasks


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of work: ``fn(**kwargs)``, run on any worker, its result saved under ``name``.

    Parameters
    ----------
    name : str
        Identity (unique in a run; the store's key): a finished name is never run again.
    fn : str
        ``"package.module:function"``, importable on every worker.
    kwargs : dict
        Keyword arguments of ``fn``, JSON-serialisable (paths as strings).
    cost : float
        Estimated cost in one-core seconds (for the ETA and nothing else).
    after : tuple of str
        Names of the tasks that must be finished first (e.g. the previous chunk of a relaxation).
    retries : int
        Reruns after the task raised, before it is reported as failed.
    """

    name: str
    fn: str
    kwargs: dict = dataclasses.field(default_factory=dict)
    cost: float = 1.0
    after: tuple[str, ...] = ()
    retries: int = 1

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ValueError(f"task name must be a non-empty string without surrounding blanks, got {self.name!r}")
        module, _, function = self.fn.partition(":")
        if not module or not function:
            raise ValueError(f"task {self.name}: fn must be 'package.module:function', got {self.fn!r}")
        try:
            json.dumps(self.kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name}: kwargs must be JSON-serialisable (paths as str): {exc}") from None
        if not self.cost >= 0 or int(self.retries) < 0:
            raise ValueError(f"task {self.name}: need cost ≥ 0 and retries ≥ 0, got {self.cost} and {self.retries}")
        object.__setattr__(self, "after", tuple(self.after))


def resolve(fn: str) -> Callable:
    """The function named by ``"package.module:function"`` (a dotted attribute path after the colon).

    Parameters
    ----------
    fn : str
        ``"package.module:function"``; after the colon a dotted attribute path, e.g.
        ``"package.module:Class.method"``.

    Returns
    -------
    callable
        The named object, imported in this process.

    Raises
    ------
    ImportError
        If the module cannot be imported or has no such attribute.
    TypeError
        If the named object is not callable.
    """
    module_name, _, qualname = fn.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ImportError(f"cannot import task function {fn!r}: {exc}") from exc
    if not callable(target):
        raise TypeError(f"task function {fn!r} is a {type(target).__name__}, not a function")
    return target


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a worker sends back: the task's result, its compute time and the worker.

    Parameters
    ----------
    result : object
        The task function's return value.
    seconds : float
        Wall time of the call on the worker (s), module import excluded.
    worker : str
        ``host:pid`` of the worker process.
    """

    result: Any
    seconds: float
    worker: str


def execute(fn: str, kwargs: dict) -> Outcome:
    """Run ``fn(**kwargs)`` (see :func:`resolve`) in this process and time it; what the executors run.

    The time excludes importing ``fn``'s module (a worker's first task imports it). An exception of the
    function propagates (the driver retries the task, then reports it as failed).

    Parameters
    ----------
    fn : str
        ``"package.module:function"``.
    kwargs : dict
        Keyword arguments of the function.

    Returns
    -------
    Outcome
        The function's return value, its wall time (s) and the worker (``host:pid``).
    """
    function = resolve(fn)
    start = time.perf_counter()
    result = function(**kwargs)
    return Outcome(result, time.perf_counter() - start, f"{socket.gethostname()}:{os.getpid()}")


# --------------------------------------------------------------------------------------------- stores


class Store(Protocol):
    """Where results go. The driver is its only writer; ``save`` must be atomic."""

    def done(self) -> set[str]:
        """Names of the finished tasks.

        Returns
        -------
        set of str
        """

    def save(self, task: Task, result) -> None:
        """Store ``result`` under ``task.name``, all or nothing.

        Parameters
        ----------
        task : Task
            The finished task; its ``name`` is the key.
        result : object
            What the task's function returned, in a form this store holds.

        Raises
        ------
        TypeError or ValueError
            What the stores here raise for a result they cannot hold; :func:`run` then reports that
            task as failed and goes on.
        """


def write_atomic(path: str | Path, write_to: Callable[[BinaryIO], Any]) -> Path:
    """Write a file all or nothing.

    ``write_to(handle)`` fills a temporary file in the same folder, which is flushed to disk and renamed
    over ``path`` (``os.replace``, atomic on POSIX and Windows).

    Parameters
    ----------
    path : str or Path
        The file (its folder is created).
    write_to : callable
        Writes the content to the binary handle it receives.

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # not matched by *.npz or *.extxyz
    try:
        with open(temporary, "wb") as handle:
            write_to(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    return path


class FolderStore:
    """One ``.npz`` file per task under ``root``: task ``a/b`` → ``root/a/b.npz``.

    A result is a dict of arrays, numbers and strings (no objects: files load with
    ``allow_pickle=False``). For fits, ensemble members and MD runs.

    Parameters
    ----------
    root : str or Path
        The folder (created on the first save).
    """

    suffix = ".npz"

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        """The file of task ``name``: ``root/<name>.npz``.

        Parameters
        ----------
        name : str
            Task name, parts separated by ``/`` (no empty, ``.`` or ``..`` parts, no backslashes).

        Returns
        -------
        Path

        Raises
        ------
        ValueError
            If ``name`` cannot be a relative file path under ``root``.
        """
        parts = name.split("/")
        if any(part in ("", ".", "..") or "\\" in part for part in parts):
            raise ValueError(f"task name {name!r} cannot be a file path under {self.root}: use '/'-separated "
                             "non-empty parts without '.', '..' or backslashes")
        return self.root.joinpath(*parts[:-1], parts[-1] + self.suffix)

    def done(self) -> set[str]:
        """Names of the tasks with a ``.npz`` file under ``root`` (empty if ``root`` does not exist)."""
        if not self.root.exists():
            return set()
        return {path.relative_to(self.root).as_posix()[:-len(self.suffix)]
                for path in self.root.rglob("*" + self.suffix)}

    def save(self, task: Task, result: dict) -> None:
        """Write ``result`` to :meth:`path` of ``task.name`` as an uncompressed ``.npz``, atomically.

        Parameters
        ----------
        task : Task
            The finished task.
        result : dict
            str key → array, number or string (what ``np.asarray`` turns into a non-object array).

        Raises
        ------
        TypeError
            If ``result`` is not a dict with str keys, or a value would be an object array (nested dict,
            ragged list, None).
        ValueError
            If ``task.name`` is not a valid file path (:meth:`path`).
        """
        if not isinstance(result, dict) or not all(isinstance(key, str) for key in result):
            raise TypeError(f"task {task.name}: FolderStore saves a dict with str keys, got {type(result).__name__}")
        arrays = {key: np.asarray(value) for key, value in result.items()}
        objects = [key for key, value in arrays.items() if value.dtype.kind == "O"]
        if objects:
            raise TypeError(f"task {task.name}: values {objects} are not arrays of numbers or strings "
                            "(nested dicts, ragged lists, None); flatten them into separate keys")
        write_atomic(self.path(task.name), lambda handle: np.savez(handle, **arrays))

    def load(self, name: str) -> dict:
        """The saved result of task ``name``.

        Parameters
        ----------
        name : str
            A finished task's name.

        Returns
        -------
        dict
            key → array, with 0-d arrays as Python numbers or strings.

        Raises
        ------
        FileNotFoundError
            If the task has no file.
        """
        with np.load(self.path(name), allow_pickle=False) as data:
            return {key: data[key].item() if data[key].ndim == 0 else data[key] for key in data.files}


class ExtxyzStore:
    """Labelled frames in ``root/<dataset>.extxyz``, one file per data set (the ``data/zno/`` format).

    A result is a list of ``ase.Atoms`` (energies, forces, stress in a single-point calculator), all with
    the same ``info["dataset"]``; each frame gets ``info["task"] = task.name``. Saving appends the frames
    to the data set's file by rewriting it whole to a temporary file and renaming it (atomic: a reader
    never sees half a frame; the files are a few hundred kB).

    Parameters
    ----------
    root : str or Path
        The data folder.
    on_save : callable, optional
        Called with the store after each save (e.g. to rewrite a manifest with :func:`write_atomic`).
    """

    def __init__(self, root: str | Path, on_save: Callable[[ExtxyzStore], None] | None = None):
        self.root = Path(root)
        self.on_save = on_save

    def files(self) -> list[Path]:
        """The data set files, sorted by name."""
        return sorted(self.root.glob("*.extxyz"))

    def frames(self) -> list[Atoms]:
        """Every frame of every data set file."""
        return [atoms for path in self.files() for atoms in read(path, index=":")]

    def done(self) -> set[str]:
        """The ``info["task"]`` of every frame in the data set files (reads them all)."""
        return {atoms.info["task"] for atoms in self.frames()}

    def load(self, name: str) -> list[Atoms]:
        """The frames of task ``name``, in the order they were saved.

        Parameters
        ----------
        name : str
            A task name.

        Returns
        -------
        list of ase.Atoms
            Empty if no frame carries that name.
        """
        return [atoms for atoms in self.frames() if atoms.info["task"] == name]

    def save(self, task: Task, frames: list[Atoms]) -> None:
        """Append the task's frames to ``root/<info["dataset"]>.extxyz`` atomically, then call ``on_save``.

        Each frame gets ``info["task"] = task.name`` (set in place).

        Parameters
        ----------
        task : Task
            The finished task.
        frames : list of ase.Atoms
            Labelled frames (energy eV, forces (n_atoms, 3) eV/Å, stress eV/Å³ in a single-point
            calculator), all with the same ``info["dataset"]``: a file name without ``/`` that does
            not start with ``.``.

        Raises
        ------
        TypeError
            If ``frames`` is not a non-empty list or tuple of ``ase.Atoms``.
        ValueError
            If the frames' data sets differ or are not valid file names, or a frame's ``info["task"]``
            names another task.
        """
        frames = list(frames) if isinstance(frames, (list, tuple)) else []
        if not frames or not all(isinstance(atoms, Atoms) for atoms in frames):
            raise TypeError(f"task {task.name}: ExtxyzStore saves a non-empty list of ase.Atoms")
        datasets = {atoms.info.get("dataset") for atoms in frames}
        dataset = next(iter(datasets))
        if len(datasets) != 1 or not isinstance(dataset, str) or not dataset or "/" in dataset \
                or dataset.startswith("."):
            raise ValueError(f"task {task.name}: every frame needs the same info['dataset'] (a file name "
                             f"without '/'), got {sorted(map(repr, datasets))}")
        for atoms in frames:
            if atoms.info.setdefault("task", task.name) != task.name:
                raise ValueError(f"task {task.name}: a frame says it belongs to task {atoms.info['task']!r}")
        text = io.StringIO()
        write(text, frames, format="extxyz")
        path = self.root / f"{dataset}.extxyz"
        old = path.read_bytes() if path.exists() else b""
        write_atomic(path, lambda handle: handle.write(old + text.getvalue().encode()))
        if self.on_save is not None:
            self.on_save(self)


class PrefixStore:
    """Several stores behind one: a task is saved in the store of the longest prefix of its name.

    Parameters
    ----------
    stores : dict
        Name prefix → store, e.g. ``{"dft/": ExtxyzStore(data), "": FolderStore(results)}`` (``""``
        takes every other name).
    """

    def __init__(self, stores: dict[str, Store]):
        self.stores = dict(sorted(stores.items(), key=lambda item: -len(item[0])))

    def store_of(self, name: str) -> Store:
        """The store of task ``name``: the one with the longest prefix of it.

        Parameters
        ----------
        name : str
            A task name.

        Returns
        -------
        Store

        Raises
        ------
        KeyError
            If no prefix matches (no ``""`` store).
        """
        for prefix, store in self.stores.items():
            if name.startswith(prefix):
                return store
        raise KeyError(f"no store for task {name!r}: prefixes are {list(self.stores)}")

    def done(self) -> set[str]:
        """The finished names of all the stores."""
        return set().union(*(store.done() for store in self.stores.values()))

    def save(self, task: Task, result) -> None:
        """Save in the store of :meth:`store_of` (``task.name``).

        Parameters
        ----------
        task : Task
            The finished task.
        result : object
            What that store saves.

        Raises
        ------
        KeyError
            If no prefix matches ``task.name``; otherwise what that store raises.
        """
        self.store_of(task.name).save(task, result)


# -------------------------------------------------------------------------------------------- the run


@dataclasses.dataclass
class Report:
    """What a :func:`run` did.

    Parameters
    ----------
    done : list of str
        Tasks finished in this run, in completion order.
    skipped : list of str
        Tasks already in the store.
    failed : dict of str to str
        Task name → reason.
    submitted : int
        Submissions, retries and resubmissions included.
    lost : int
        Submissions lost with their worker.
    seconds : dict of str to float
        Task name → compute time on its worker (s).
    wall_time_s : float
        Wall time of the run (s).
    """

    done: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    submitted: int = 0
    lost: int = 0
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    wall_time_s: float = 0.0

    @property
    def ok(self) -> bool:
        """True when no task failed."""
        return not self.failed

    def summary(self) -> str:
        """One line: counts and wall time."""
        return (f"{len(self.done)} done, {len(self.skipped)} already done, {len(self.failed)} failed; "
                f"{self.submitted} submissions ({self.lost} lost with a worker) in {_clock(self.wall_time_s)}")


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _stamp() -> str:
    return time.strftime("%H:%M:%S")


#: losses after which a task runs alone (see :meth:`_Run.alone`)
ISOLATE_AFTER_LOSSES = 2


class _Pool:
    """The executor of a run: made by ``make``, replaced when broken, shut down at the end."""

    def __init__(self, make: Callable[[], Executor]):
        self.make = make
        self.executor = make()
        self.broken = False
        self.fresh = True  # nothing submitted yet to this executor
        self.lost_errors = (BrokenExecutor, CancelledError, *getattr(self.executor, "lost_errors", ()))

    def submit(self, task: Task) -> Future:
        future = self.executor.submit(execute, task.fn, task.kwargs)
        self.fresh = False
        return future

    def replace(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor, self.broken, self.fresh = self.make(), False, True

    def close(self, wait: bool) -> None:
        self.executor.shutdown(wait=wait, cancel_futures=True)


class _Run:
    """State of one :func:`run`: tasks waiting, running, finished; counters; progress lines."""

    def __init__(self, pending: list[Task], finished: set[str], store: Store, pool: _Pool, capacity: int,
                 workers: int, lost_limit: int, log, report: Report):
        self.order = {task.name: k for k, task in enumerate(pending)}
        self.waiting, self.running = list(pending), {}
        self.finished, self.store, self.pool, self.capacity = finished, store, pool, capacity
        self.workers, self.lost_limit, self.log, self.report = workers, lost_limit, log, report
        self.failures, self.losses = Counter(), Counter()
        self.total, self.remaining_cost, self.done_cost = len(pending), sum(t.cost for t in pending), 0.0
        self.start = time.perf_counter()

    def say(self, text: str) -> None:
        print(f"[{_stamp()}] {text}", file=self.log, flush=True)

    def loop(self) -> None:
        while self.waiting or self.running:
            self.submit_ready()
            if not self.running and not self.pool.broken:
                self.give_up_on_blocked()
                return
            if self.running:
                completed, _ = wait(self.running, return_when=FIRST_COMPLETED)
                for future in sorted(completed, key=lambda f: self.order[self.running[f].name]):
                    self.handle(self.running.pop(future), future)

    def submit_ready(self) -> None:
        if self.pool.broken:
            if self.running:  # let the broken pool's other futures come back first
                return
            self.say("the process pool broke (a worker died): starting a new one")
            self.pool.replace()
        if any(self.alone(task) for task in self.running.values()):
            return
        for task in list(self.waiting):
            if len(self.running) >= self.capacity:
                return
            if not all(name in self.finished for name in task.after):
                continue
            if self.alone(task) and self.running:  # let the pool empty, then run it by itself
                return
            try:
                future = self.pool.submit(task)
            except BrokenExecutor as exc:
                if self.pool.fresh:
                    raise RuntimeError(f"a new executor broke before running anything: {exc}") from exc
                self.pool.broken = True
                return
            self.waiting.remove(task)
            self.running[future] = task
            self.report.submitted += 1
            if self.alone(task):
                return

    def alone(self, task: Task) -> bool:
        """Whether ``task`` runs by itself: a broken process pool fails every task in flight, not only
        the one whose worker died, so a task lost twice runs alone until it finishes or fails."""
        return self.losses[task.name] >= ISOLATE_AFTER_LOSSES

    def requeue(self, task: Task) -> None:
        bisect.insort(self.waiting, task, key=lambda t: self.order[t.name])

    def handle(self, task: Task, future: Future) -> None:
        try:
            outcome = future.result()
        except self.pool.lost_errors as exc:
            self.pool.broken |= isinstance(exc, BrokenExecutor)
            self.report.lost += 1
            self.losses[task.name] += 1
            if self.losses[task.name] > self.lost_limit:
                self.fail(task, f"its worker was lost {self.losses[task.name]} times (last: {exc!r})")
            else:
                self.say(f"lost  {task.name}: its worker died ({type(exc).__name__}); resubmitting")
                self.requeue(task)
        except Exception as exc:  # noqa: BLE001 - any error of the task: retry, then report
            self.failures[task.name] += 1
            if self.failures[task.name] <= task.retries:
                self.say(f"retry {task.name} ({self.failures[task.name]}/{task.retries}) after "
                         f"{type(exc).__name__}: {exc}")
                self.requeue(task)
            else:
                self.log.write("".join(traceback.format_exception(exc)))
                self.fail(task, f"{type(exc).__name__}: {exc}")
        else:
            self.complete(task, outcome)

    def complete(self, task: Task, outcome: Outcome) -> None:
        try:
            self.store.save(task, outcome.result)
        except Exception as exc:  # noqa: BLE001 - a result the store refuses fails that task only
            self.fail(task, f"result not saved: {type(exc).__name__}: {exc}")
            return
        self.finished.add(task.name)
        self.report.done.append(task.name)
        self.report.seconds[task.name] = outcome.seconds
        self.remaining_cost -= task.cost
        self.done_cost += task.cost
        self.say(f"done  {task.name} in {outcome.seconds:.1f} s on {outcome.worker} | {self.progress()}")

    def fail(self, task: Task, reason: str) -> None:
        self.report.failed[task.name] = reason
        self.remaining_cost -= task.cost
        self.say(f"FAILED {task.name}: {reason} | {self.progress()}")

    def give_up_on_blocked(self) -> None:
        for task in self.waiting:
            missing = [name for name in task.after if name not in self.finished]
            self.fail(task, f"not run: waits for {', '.join(missing)} (failed, not run, or a dependency cycle)")
        self.waiting.clear()

    def progress(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done_cost / elapsed if self.done_cost > 0 else self.workers  # one-core s per s
        eta = _clock(max(self.remaining_cost, 0.0) / rate) if rate > 0 else "?"
        finished = len(self.report.done) + len(self.report.failed)
        failed = f", {len(self.report.failed)} failed" if self.report.failed else ""
        return f"{finished}/{self.total}{failed} | elapsed {_clock(elapsed)}, ETA {eta}"


def _check_tasks(tasks: list[Task], finished: set[str]) -> None:
    names = [task.name for task in tasks]
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise ValueError(f"task names must be unique; repeated: {duplicates[:10]}")
    known = set(names) | finished
    unknown = sorted({name for task in tasks for name in task.after if name not in known})
    if unknown:
        raise ValueError(f"tasks wait for {unknown[:10]}, which are neither in this run nor finished in the store")


def run(tasks: Iterable[Task], store: Store, executor: Callable[[], Executor] | None = None,
        workers: int | None = None, queue: int | None = None, lost_limit: int = 3, log=None) -> Report:
    """Run the unfinished ``tasks`` on an executor and save each result in ``store`` as it arrives.

    Parameters
    ----------
    tasks : iterable of Task
        In priority order (earlier first among those ready).
    store : Store
        ``done()`` and ``save(task, result)``, e.g. :class:`ExtxyzStore`, :class:`FolderStore`.
    executor : callable, optional
        Makes a fresh ``concurrent.futures.Executor`` (called again if a process pool breaks), e.g.
        ``zno_book.executors.factory("dask", 4)`` or ``lambda: DaskExecutor(client, close_client=False)``.
        Default: :func:`zno_book.executors.local` with ``workers`` processes.
    workers : int, optional
        Parallel workers (default: the cores available): sets the default executor, the initial ETA, and
        with ``queue`` how many tasks are submitted at once.
    queue : int, optional
        Tasks submitted beyond ``workers`` (default: ``workers``), so that no worker waits.
    lost_limit : int
        Resubmissions of a task whose worker died before it is reported as failed (a task that kills
        its worker every time, e.g. out of memory, must not loop forever). A broken process pool fails
        every task in flight, so a task lost twice runs alone: only its own deaths then count.
    log : file, optional
        Progress lines (default: ``sys.stderr``).

    Returns
    -------
    Report
        ``report.ok`` is False if any task failed; ``report.failed`` says why.
    """
    log = sys.stderr if log is None else log
    tasks = list(tasks)
    finished = set(store.done())
    _check_tasks(tasks, finished)
    pending = [task for task in tasks if task.name not in finished]
    for fn in sorted({task.fn for task in pending}):
        resolve(fn)  # a typo fails here, not on every worker
    workers = workers or executors.available_cores()
    report = Report(skipped=[task.name for task in tasks if task.name in finished])
    start = time.perf_counter()
    print(f"[{_stamp()}] {len(pending)} tasks to run ({len(report.skipped)} already done), ≈"
          f"{sum(t.cost for t in pending) / 3600:.2f} one-core hours, {workers} workers", file=log, flush=True)
    if pending:
        pool = _Pool(executor or (lambda: executors.local(workers)))
        state = _Run(pending, finished, store, pool, workers + (workers if queue is None else queue), workers,
                     lost_limit, log, report)
        try:
            state.loop()
        except BaseException:
            pool.close(wait=False)
            raise
        pool.close(wait=True)
    report.wall_time_s = time.perf_counter() - start
    print(f"[{_stamp()}] finished: {report.summary()}", file=log, flush=True)
    for name, reason in report.failed.items():
        print(f"  failed {name}: {reason}", file=log)
    return report


# ------------------------------------------------------------------------------------ the demo tasks


def demo_tasks(data: str | Path, model: str | Path, gpaw: bool = True) -> list[Task]:
    """The tiny tasks of the tests and of ``python -m zno_book.driver demo``, real work of each kind.

    ``dft/rocksalt``: a 2-atom GPAW single point at 300 eV, k 2×2×2 (→ :class:`ExtxyzStore`);
    ``fit/linear_bp``: a linear-BP fit to 6 frames of ``data``/train.extxyz; ``md/linear_bp``: 50 MD steps
    of a 36-atom wurtzite cell with the shipped ``model`` (→ :class:`FolderStore`). See
    :mod:`zno_book.driver_tasks`.

    Parameters
    ----------
    data : str or Path
        The DFT data folder (its ``train.extxyz`` is read by the fit).
    model : str or Path
        A saved potential (``.npz``, :func:`mliplib.load`) for the MD task.
    gpaw : bool
        Include the DFT task (False: without GPAW).

    Returns
    -------
    list of Task
        ``dft/rocksalt`` (if ``gpaw``), ``fit/linear_bp``, ``md/linear_bp``; estimated costs 10, 5 and
        5 one-core seconds.
    """
    tasks = [Task("fit/linear_bp", "zno_book.driver_tasks:linear_fit",
                  {"frames": str(Path(data) / "train.extxyz"), "n_frames": 6}, cost=5.0),
             Task("md/linear_bp", "zno_book.driver_tasks:md_run", {"model": str(model), "steps": 50}, cost=5.0)]
    if gpaw:
        tasks.insert(0, Task("dft/rocksalt", "zno_book.driver_tasks:gpaw_single_point",
                             {"ecut": 300.0, "kpts": 2, "dataset": "tiny"}, cost=10.0))
    return tasks


def demo_store(root: str | Path) -> PrefixStore:
    """Where the demo tasks go: ``root/frames/*.extxyz`` (DFT) and ``root/results/`` (the rest).

    Parameters
    ----------
    root : str or Path
        The output folder.

    Returns
    -------
    PrefixStore
        ``"dft/"`` → :class:`ExtxyzStore`, every other name → :class:`FolderStore`.
    """
    return PrefixStore({"dft/": ExtxyzStore(Path(root) / "frames"), "": FolderStore(Path(root) / "results")})


def main(argv: list[str] | None = None) -> int:
    """``python -m zno_book.driver demo --executor {serial,local,dask} [--workers N] [--address A] --root DIR``.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 if every task finished, 1 if any failed.
    """
    parser = argparse.ArgumentParser(prog="python -m zno_book.driver", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["demo"], help="run the tiny tasks of demo_tasks")
    parser.add_argument("--executor", choices=executors.KINDS, default="local")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: the cores)")
    parser.add_argument("--address", default=None, help="a running Dask scheduler (with --executor dask)")
    parser.add_argument("--root", required=True, help="output folder (a rerun skips what is in it)")
    parser.add_argument("--data", default="data/zno", help="the DFT data folder (default: %(default)s)")
    parser.add_argument("--model", default="models/v1/linear_bp.npz", help="model for MD (default: %(default)s)")
    args = parser.parse_args(argv)
    has_gpaw = importlib.util.find_spec("gpaw") is not None
    if not has_gpaw:
        print("GPAW is not installed: the DFT task is left out (make dft installs it)", file=sys.stderr)
    workers = 1 if args.executor == "serial" else args.workers
    report = run(demo_tasks(args.data, args.model, gpaw=has_gpaw), demo_store(args.root),
                 executors.factory(args.executor, workers, args.address), workers=workers)
    return 0 if report.ok else 1


if __name__ == "__main__":
    # run the importable module's main, so that pickled references name zno_book.driver, not __main__
    from zno_book.driver import main as importable_main

    sys.exit(importable_main())
