"""Executors for :func:`zno_book.driver.run`: where the tasks run, behind ``concurrent.futures.Executor``.

- :func:`serial`: in the calling process, one task at a time (the reference path; debugging).
- :func:`local`: a ``ProcessPoolExecutor`` of single-threaded worker processes (the default; a laptop).
- :func:`dask`: a ``dask.distributed`` cluster: a ``LocalCluster`` of single-threaded worker processes, a
  running scheduler's address, or any cluster object (e.g. :func:`slurm_dask`).
- :func:`slurm_dask`: a ``dask_jobqueue.SLURMCluster`` recipe for single-core tasks (ensembles, MD, serial
  GPAW single points): each Slurm job is one node share running ``cores`` one-thread workers.
- :func:`executorlib_slurm`: an ``executorlib.SlurmJobExecutor`` recipe for MPI-parallel tasks (GPAW
  built with MPI): inside one Slurm allocation, each task is started with ``srun -n cores_per_task``.

One BLAS/OpenMP/Numba thread per worker process: the workers are the parallelism, and N workers × M
threads on N cores would oversubscribe them. ``dask[distributed]``, ``dask-jobqueue`` and ``executorlib``
are optional extras (``pip install '.[dask]'`` / ``'.[cluster]'``), imported only by the factory that
needs them, so this module imports without them.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from concurrent.futures import Executor, Future

from threadpoolctl import threadpool_limits

#: Environment variables that fix the thread count of BLAS (OpenBLAS, MKL, Accelerate), OpenMP, Numba
#: and numexpr; read when those libraries load, so they must be set before a worker imports numpy.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS", "NUMBA_NUM_THREADS")
KINDS = ("serial", "local", "dask")


def thread_environment(threads: int = 1) -> dict[str, str]:
    """The :data:`THREAD_VARIABLES` set to ``threads``, as a dict of strings (e.g. a worker's environment).

    Parameters
    ----------
    threads : int
        Threads per process (≥ 1).

    Returns
    -------
    dict of str to str
        Variable name → ``str(int(threads))``.

    Raises
    ------
    ValueError
        If ``threads`` < 1.
    """
    if int(threads) < 1:
        raise ValueError(f"threads must be a positive number of threads per worker, got {threads}")
    return {name: str(int(threads)) for name in THREAD_VARIABLES}


def limit_threads(threads: int = 1) -> None:
    """Run this process with ``threads`` threads in BLAS, OpenMP, Numba and PyTorch.

    Sets :data:`THREAD_VARIABLES` for libraries loaded later (a task's first ``import gpaw`` loads its
    own OpenBLAS), limits the BLAS/OpenMP pools already loaded (threadpoolctl) and, when Numba or PyTorch
    is already imported (a spawned worker re-imports the parent's ``__main__`` module first), sets their
    thread counts too. The worker initializer of :func:`local`.

    Parameters
    ----------
    threads : int
        Threads per process (≥ 1).
    """
    os.environ.update(thread_environment(threads))
    threadpool_limits(limits=int(threads))
    for name in ("numba", "torch"):  # only if already imported: their env variables were read then
        if name in sys.modules:
            sys.modules[name].set_num_threads(int(threads))


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it, else ``os.cpu_count()``)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class SerialExecutor(Executor):
    """Runs each submitted call at once in the calling process and returns its finished future.

    The reference path of :func:`zno_book.driver.run` (no processes, no pickling, exceptions with their
    full traceback), and a way to debug a task."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Call ``fn(*args, **kwargs)`` now, in this process, and return its finished future.

        Unlike a pool's ``submit`` it returns only after the call; an ``Exception`` of the call is set
        on the future, as a pool does, not raised here.

        Parameters
        ----------
        fn : callable
            The function.
        *args, **kwargs
            Its arguments.

        Returns
        -------
        concurrent.futures.Future
            Done: holds the result or the exception.
        """
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - the future carries the task's exception, like a pool's
            future.set_exception(exc)
        return future


def serial() -> SerialExecutor:
    """A :class:`SerialExecutor` (tasks run in this process, one after the other)."""
    return SerialExecutor()


def local(workers: int | None = None, threads: int = 1) -> concurrent.futures.ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes, each limited to ``threads`` threads (:func:`limit_threads`).

    ``spawn`` rather than ``fork``: a fresh interpreter per worker (no copied locks or thread pools of
    the parent; the same behaviour on Linux and macOS). A worker that dies (killed, out of memory) breaks
    the pool (``BrokenProcessPool``); :func:`zno_book.driver.run` then starts a new one.

    Parameters
    ----------
    workers : int, optional
        Worker processes (default: :func:`available_cores`).
    threads : int
        BLAS/OpenMP/Numba threads per worker (default 1).

    Returns
    -------
    concurrent.futures.ProcessPoolExecutor
    """
    workers = workers or available_cores()
    thread_environment(threads)  # validates
    return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=limit_threads, initargs=(threads,))


def _call_with_threads(threads: int, fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` after :func:`limit_threads` (``threads``): a dask task's wrapper."""
    limit_threads(threads)
    return fn(*args, **kwargs)


class DaskExecutor(Executor):
    """``concurrent.futures`` interface to a ``distributed.Client``.

    ``client.get_executor(pure=False)``, so a resubmitted task runs again; closes the client and the
    cluster it owns on ``shutdown``.

    Parameters
    ----------
    client : distributed.Client
        The client the tasks are submitted to.
    cluster : distributed.deploy.Cluster, optional
        Closed on shutdown (None when the client connects to a scheduler that someone else runs).
    close_client : bool
        Close the client on shutdown (False to reuse one client across several runs).
    threads : int, optional
        Each task first limits its worker process to this many BLAS/OpenMP/Numba/PyTorch threads
        (:func:`limit_threads`; ≥ 1); None leaves the workers as they were started.
    """

    def __init__(self, client, cluster=None, close_client: bool = True, threads: int | None = None):
        if threads is not None:
            thread_environment(threads)  # validates
        from distributed import CancelledError, KilledWorker  # optional extra, see the module docstring
        from distributed.comm import CommClosedError

        self.client, self.cluster, self.close_client, self.threads = client, cluster, close_client, threads
        self.executor = client.get_executor(pure=False)
        #: errors meaning "the worker was lost", not "the task failed": the driver resubmits
        self.lost_errors = (KilledWorker, CommClosedError, CancelledError)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Submit ``fn(*args, **kwargs)`` to the client (``pure=False``: a resubmission runs again).

        With ``threads``, the worker first calls :func:`limit_threads` (``threads``).

        Parameters
        ----------
        fn : callable
            The function, serialised to a worker by dask (the driver submits :func:`zno_book.driver.execute`).
        *args, **kwargs
            Its arguments.

        Returns
        -------
        concurrent.futures.Future
        """
        if self.threads is None:
            return self.executor.submit(fn, *args, **kwargs)
        return self.executor.submit(_call_with_threads, self.threads, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut down the client's executor, then close the client (if ``close_client``) and the cluster.

        Parameters
        ----------
        wait : bool
            True: wait for the submitted tasks to finish; False: cancel them (distributed's executor).
        cancel_futures : bool
            Not used (``wait=False`` already cancels); accepted for the ``Executor`` interface.
        """
        self.executor.shutdown(wait=wait)
        if self.close_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def dask(workers: int | None = None, address: str | None = None, cluster=None, threads: int = 1,
         **cluster_kwargs) -> DaskExecutor:
    """A :class:`DaskExecutor` on a new ``LocalCluster``, a running scheduler, or a given cluster.

    Parameters
    ----------
    workers : int, optional
        Worker processes of the ``LocalCluster`` (default: :func:`available_cores`); ignored with
        ``address`` or ``cluster``.
    address : str, optional
        A running scheduler, e.g. ``"tcp://10.0.0.1:8786"`` (``dask scheduler`` on a login node, workers
        started by ``dask worker ADDRESS --nworkers N --nthreads 1`` in Slurm jobs).
    cluster : distributed.deploy.Cluster, optional
        A cluster object, e.g. :func:`slurm_dask`; closed on shutdown.
    threads : int
        BLAS/OpenMP/Numba/PyTorch threads per worker process (default 1): set in a new ``LocalCluster``'s
        worker environment, and by every task before it runs (any cluster).
        Distributed's ``pre-spawn-environ`` is not used, because the nanny writes it into the *calling*
        process's ``os.environ`` (Numba then refuses to compile: its thread count changed after launch).
    **cluster_kwargs
        Passed to ``LocalCluster`` (e.g. ``memory_limit="2GB"``); the dashboard listens on a free port
        (``executor.client.dashboard_link``) unless ``dashboard_address`` is given.

    Returns
    -------
    DaskExecutor
    """
    from distributed import Client, LocalCluster  # optional extra, see the module docstring

    if address is not None and cluster is not None:
        raise ValueError("give a scheduler address or a cluster object, not both")
    if address is not None:
        return DaskExecutor(Client(address), threads=threads)
    if cluster is None:
        # env: set inside each worker process before its worker starts (the libraries a task loads later
        # read it); the loaded BLAS pools are limited by each task (DaskExecutor threads)
        cluster = LocalCluster(**{"n_workers": workers or available_cores(), "threads_per_worker": 1,
                                  "processes": True, "dashboard_address": ":0", "env": thread_environment(threads),
                                  **cluster_kwargs})
    return DaskExecutor(Client(cluster), cluster, threads=threads)


def slurm_dask(jobs: int = 1, cores: int = 32, memory: str = "64GB", walltime: str = "04:00:00",
               partition: str | None = None, account: str | None = None, prologue: tuple[str, ...] = (),
               **kwargs):
    """A ``dask_jobqueue.SLURMCluster`` for single-core tasks (ensembles, MD, serial GPAW), scaled to ``jobs``.

    Each Slurm job asks for ``cores`` cores and ``memory`` on one node and runs ``cores`` dask worker
    processes of one thread each (``--nworkers cores --nthreads 1``), with the thread variables set to 1
    in the job script. Use it with ``dask(cluster=slurm_dask(...))``; ``cluster.job_script()`` shows the
    script without submitting anything.

    Parameters
    ----------
    jobs : int
        Slurm jobs to start (``cluster.scale(jobs=jobs)``; 0 submits nothing).
    cores : int
        Cores per job = single-threaded worker processes per job.
    memory : str
        Memory per job (Slurm ``--mem``), e.g. ``"64GB"``; each worker gets ``memory / cores``.
    walltime : str
        Slurm ``-t`` (HH:MM:SS). Tasks still running when a job ends are resubmitted by the driver.
    partition, account : str, optional
        Slurm ``-p`` and ``-A``.
    prologue : tuple of str
        Extra shell lines before the worker starts (``module load ...``, ``source .venv/bin/activate``).
    **kwargs
        Passed to ``SLURMCluster`` (e.g. ``job_extra_directives=["--exclusive"]``, ``interface="ib0"``); the
        dashboard listens on a free port (``cluster.dashboard_link``) unless ``scheduler_options`` says otherwise.

    Returns
    -------
    dask_jobqueue.SLURMCluster
    """
    from dask_jobqueue import SLURMCluster  # optional extra (cluster), see the module docstring

    exports = [f"export {name}={value}" for name, value in thread_environment(1).items()]
    kwargs = {"scheduler_options": {"dashboard_address": ":0"}, **kwargs}  # a free port: cluster.dashboard_link
    cluster = SLURMCluster(cores=cores, processes=cores, memory=memory, walltime=walltime, queue=partition,
                           account=account, job_script_prologue=[*exports, *prologue], **kwargs)
    if jobs:
        cluster.scale(jobs=jobs)
    return cluster


def executorlib_resources(cores_per_task: int, threads_per_core: int = 1, run_time_max: int | None = None,
                          slurm_args: tuple[str, ...] = ()) -> dict:
    """The executorlib ``resource_dict`` of one MPI task (``srun -n cores_per_task``).

    Parameters
    ----------
    cores_per_task : int
        MPI ranks per task (≥ 1).
    threads_per_core : int
        Threads per rank.
    run_time_max : int, optional
        Seconds after which the task is killed (None: the allocation's limit).
    slurm_args : tuple of str
        Extra ``srun`` arguments.

    Returns
    -------
    dict
        ``cores``, ``threads_per_core``, ``slurm_cmd_args`` (list) and, if given, ``run_time_max``.

    Raises
    ------
    ValueError
        If ``cores_per_task`` < 1.
    """
    if int(cores_per_task) < 1:
        raise ValueError(f"cores_per_task must be a positive number of MPI ranks, got {cores_per_task}")
    resources = {"cores": int(cores_per_task), "threads_per_core": int(threads_per_core),
                 "slurm_cmd_args": list(slurm_args)}
    if run_time_max is not None:
        resources["run_time_max"] = int(run_time_max)
    return resources


class RankZero(Executor):
    """An executor whose futures hold rank 0's result, the one result of an MPI-parallel calculation.

    Wraps an executor whose futures hold one result per MPI rank (executorlib with ``cores`` > 1).

    Parameters
    ----------
    executor : concurrent.futures.Executor
        The wrapped executor; shut down with this one.
    """

    def __init__(self, executor: Executor):
        self.executor = executor

    def submit(self, fn, /, *args, **kwargs) -> Future:
        """Submit to the wrapped executor; the returned future holds element 0 (rank 0's) of its result.

        The wrapped future's exception or cancellation is passed on unchanged.

        Parameters
        ----------
        fn : callable
            The function, run on every rank.
        *args, **kwargs
            Its arguments.

        Returns
        -------
        concurrent.futures.Future
        """
        inner, outer = self.executor.submit(fn, *args, **kwargs), Future()

        def forward(done: Future) -> None:
            if done.cancelled():
                outer.cancel()
            elif done.exception() is not None:
                outer.set_exception(done.exception())
            else:
                outer.set_result(done.result()[0])

        inner.add_done_callback(forward)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut down the wrapped executor.

        Parameters
        ----------
        wait : bool
            Wait for the running tasks.
        cancel_futures : bool
            Cancel the tasks not yet started.
        """
        self.executor.shutdown(wait=wait, cancel_futures=cancel_futures)


def executorlib_slurm(cores_per_task: int, max_cores: int | None = None, threads_per_core: int = 1,
                      run_time_max: int | None = None, slurm_args: tuple[str, ...] = (), **kwargs) -> Executor:
    """MPI-parallel tasks inside one Slurm allocation: ``executorlib.SlurmJobExecutor``.

    Run the driver in an ``sbatch`` job (the allocation: partition, nodes, walltime); each task is
    started with ``srun -n cores_per_task`` and runs the task function on every rank (GPAW splits the
    work over the ranks; it must be built with MPI, and executorlib needs ``mpi4py``). At most
    ``max_cores / cores_per_task`` tasks run at once.

    Parameters
    ----------
    cores_per_task : int
        MPI ranks per task.
    max_cores : int, optional
        Cores to use in the allocation (default: ``$SLURM_NTASKS``).
    threads_per_core : int
        Threads per rank (``srun --cpus-per-task``); 1 for GPAW's MPI parallelism.
    run_time_max : int, optional
        Seconds after which a task is killed (the driver then retries it).
    slurm_args : tuple of str
        Extra ``srun`` arguments, e.g. ``("--exact",)``.
    **kwargs
        Passed to ``SlurmJobExecutor`` (e.g. ``cache_directory``, ``pmi_mode="pmix"``).

    Returns
    -------
    concurrent.futures.Executor
        The executor; with ``cores_per_task`` > 1 wrapped in :class:`RankZero` (rank 0's result).
    """
    from executorlib import SlurmJobExecutor  # optional extra (cluster), see the module docstring

    resources = executorlib_resources(cores_per_task, threads_per_core, run_time_max, slurm_args)
    if max_cores is None:
        max_cores = int(os.environ.get("SLURM_NTASKS", cores_per_task))
    executor = SlurmJobExecutor(max_cores=max_cores, resource_dict=resources, **kwargs)
    return RankZero(executor) if cores_per_task > 1 else executor


def factory(kind: str, workers: int | None = None, address: str | None = None):
    """A zero-argument callable that makes a fresh executor of ``kind``, for :func:`zno_book.driver.run`.

    The driver calls it again when a broken process pool must be replaced.

    Parameters
    ----------
    kind : {"serial", "local", "dask"}
        :func:`serial`, :func:`local` or :func:`dask` (see :data:`KINDS`).
    workers : int, optional
        Worker processes of ``local`` and of a new dask ``LocalCluster`` (default: :func:`available_cores`);
        ignored by ``serial``.
    address : str, optional
        A running dask scheduler (``kind`` "dask" only).

    Returns
    -------
    callable
        ``() -> concurrent.futures.Executor``.

    Raises
    ------
    ValueError
        If ``kind`` is unknown, or ``address`` is given with another kind than "dask".
    """
    if kind not in KINDS:
        raise ValueError(f"unknown executor {kind!r}; choose one of {KINDS}")
    if address is not None and kind != "dask":
        raise ValueError(f"a scheduler address needs the dask executor, not {kind!r}")
    if kind == "serial":
        return serial
    if kind == "local":
        return lambda: local(workers)
    return lambda: dask(workers, address)
