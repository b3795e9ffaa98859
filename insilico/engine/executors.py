"""Executors: run a plan serially or on Dask; both yield ``(task index, Partial)``.

Completion order is whatever the executor gives; :mod:`insilico.engine.merge` puts partials
back in plan order, so results never depend on it.

Dask: an existing cluster via ``scheduler`` (``tcp://HOST:PORT`` or a scheduler JSON file) or
the ``DASK_SCHEDULER_ADDRESS`` environment variable; otherwise a :class:`LocalCluster` of
worker processes sized to the machine (one thread each). A script that creates a local
cluster must guard its entry point with ``if __name__ == "__main__":`` (workers are spawned
and re-import it).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from importlib.metadata import version

from insilico.engine.plan import Task
from insilico.engine.task import Partial, run_task
from insilico.errors import SpecError
from insilico.trial.context import TrialContext

EXECUTORS = ("auto", "serial", "dask")
#: ``auto`` runs a trial in this process when its work (patients x arms x output times) is
#: below this: starting a local cluster (about 3-5 s for two worker processes) would cost more
#: than the cores it adds save. Serially the kernel covers about 1.5e7 patient-times per
#: second on one core, so this is about 7 s of serial work.
SERIAL_BELOW_PATIENT_TIMES = 1e8
#: How long to try to reach an existing scheduler (s): the connection and Dask's handshake.
CONNECT_TIMEOUT_S = 10.0
#: How long a run waits while the cluster has no worker (none yet, or all lost) before it
#: stops with an error (s). Workers that die are replaced within this by a nanny, a local
#: cluster or a cluster manager (dask-jobqueue, Kubernetes); their tasks then run again.
NO_WORKER_TIMEOUT_S = 30.0


def run_serial(
    ctx: TrialContext,
    tasks: Sequence[Task],
    progress: bool = False,
    callback: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, Partial]]:
    """Run tasks one after the other in this process.

    ``callback(n_done, n_total)`` is called after each task (progress in an app, tests).
    """
    from tqdm.auto import tqdm

    for i, task in enumerate(tqdm(tasks, desc=ctx.name, unit="task", disable=not progress)):
        yield i, run_task(ctx, task)
        if callback is not None:
            callback(i + 1, len(tasks))


def choose_executor(
    executor: str, ctx: TrialContext, scheduler: str | None, workers: int | None
) -> tuple[str, str]:
    """The executor to use and why: ``auto`` becomes ``dask`` when a scheduler or a number of
    workers is given or the trial is large, else ``serial``."""
    if executor != "auto":
        return executor, "asked for"
    if scheduler_address(scheduler):
        return "dask", "a scheduler is given"
    if workers is not None:
        return "dask", "a number of workers is given"
    work = ctx.n_patients * len(ctx.arms) * max(len(ctx.output_times_h), 1)
    if work < SERIAL_BELOW_PATIENT_TIMES:
        return "serial", (
            "a small trial runs in this process: starting a local cluster would take longer "
            "than it saves (--workers N starts one anyway)"
        )
    return "dask", "a large trial runs on a local cluster"


def scheduler_address(scheduler: str | None = None) -> str | None:
    """The scheduler to use: the argument, else ``DASK_SCHEDULER_ADDRESS``, else None (local)."""
    return scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None


def warm_up(ctx: TrialContext) -> None:
    """Simulate one patient of the first drug arm in this process.

    Compiles (or loads) the numba kernels once and writes numba's on-disk cache, so that local
    worker processes load the compiled code instead of all compiling it at the same time.
    """
    from insilico.trial.block import simulate_arm_block

    for arm in ctx.arms:
        if not arm.is_placebo:
            simulate_arm_block(ctx, arm, 0, 1)
            return


def connect(scheduler: str | None, workers: int | None, ctx: TrialContext | None = None):
    """A Dask client and the local cluster it owns (None for an existing scheduler).

    ``scheduler`` (or ``DASK_SCHEDULER_ADDRESS``) names an existing scheduler by address or
    scheduler file; otherwise a local cluster of ``workers`` processes (one per core by
    default) starts, after ``ctx``'s kernels are compiled here when a trial is given.
    """
    from dask.distributed import Client

    address = scheduler_address(scheduler)
    if address:
        return existing_client(address), None
    n = workers or os.cpu_count() or 1
    if ctx is not None:
        warm_up(ctx)
    cluster = local_cluster(n)
    return Client(cluster), cluster


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _handshake(address: str) -> None:
    """Open a Dask connection to ``address`` and close it, within :data:`CONNECT_TIMEOUT_S`
    in all (a server that accepts connections but does not speak Dask's protocol would
    otherwise keep the client waiting for its handshake)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from distributed.comm import connect

    async def attempt() -> None:
        comm = await connect(address, timeout=CONNECT_TIMEOUT_S)
        await comm.close()

    def run() -> None:  # a fresh event loop, whatever the calling thread runs
        asyncio.run(asyncio.wait_for(attempt(), CONNECT_TIMEOUT_S))

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


def installed_version() -> str:
    """The version of insilico installed here (a cluster must run the same)."""
    return version("insilico")


def existing_client(address: str):
    """A client of the scheduler at ``address`` (``tcp://HOST:PORT`` or a scheduler file),
    checked up front: a Dask scheduler must answer within :data:`CONNECT_TIMEOUT_S`, and it
    and every worker must have this version of insilico (tasks and results are insilico
    objects). Raises :class:`SpecError` naming what is wrong."""
    import json

    from dask.distributed import Client

    target = address
    if address.endswith(".json"):
        try:
            with open(address, encoding="utf-8") as f:
                target = json.load(f)["address"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            allowed = f"a readable Dask scheduler file ({_first_line(exc)})"
            raise SpecError("scheduler", address, allowed) from None
    try:
        _handshake(target)
        client = Client(target, timeout=f"{CONNECT_TIMEOUT_S:g}s")
    except (OSError, TimeoutError, ValueError) as exc:
        allowed = f"a Dask scheduler answering within {CONNECT_TIMEOUT_S:g} s ({_first_line(exc)})"
        raise SpecError("scheduler", address, allowed) from None
    mine = installed_version()
    probe = partial(version, "insilico")  # pickled by reference to importlib: loads anywhere
    try:
        try:
            theirs = client.run_on_scheduler(probe)
        except Exception as exc:  # the scheduler's environment, whatever it raises
            theirs = f"none ({_first_line(exc)})"
        if theirs != mine:
            raise SpecError(
                "scheduler",
                address,
                f"a scheduler whose environment has insilico {mine} (it has {theirs})",
            )
        found = client.run(probe, on_error="return")
        wrong = {w: v for w, v in found.items() if v != mine}
        if wrong:
            worker, v = sorted(wrong.items())[0]
            have = v if isinstance(v, str) else f"none ({_first_line(v)})"
            raise SpecError(
                "scheduler",
                address,
                f"workers with insilico {mine} ({len(wrong)} of {len(found)} differ: "
                f"{worker} has {have})",
            )
    except BaseException:
        client.close()
        raise
    return client


#: glibc malloc: serve allocations below this size from the heap instead of fresh mmaps.
#: Dask's nannies set MALLOC_TRIM_THRESHOLD_, which otherwise makes every numpy temporary of
#: 128 KiB or more a fresh mmap (measured: about 1.5x the CPU per task).
MMAP_THRESHOLD_BYTES = 64 * 2**20


def local_cluster(n_workers: int):
    """A :class:`dask.distributed.LocalCluster` of ``n_workers`` single-threaded processes."""
    import dask
    from dask.distributed import LocalCluster

    env = {"distributed.nanny.pre-spawn-environ.MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD_BYTES}
    with dask.config.set(env):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )


def run_dask(
    ctx: TrialContext,
    tasks: Sequence[Task],
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    info: dict | None = None,
    callback: Callable[[int, int], None] | None = None,
) -> Iterator[tuple[int, Partial]]:
    """Run tasks on a Dask cluster (see module docstring); yields as tasks complete.

    ``info`` (optional dict) receives ``scheduler`` and ``n_workers`` for the manifest;
    ``callback(n_done, n_total)`` is called after each completed task.
    """
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    if workers is not None and workers < 1:
        raise SpecError("workers", workers, "a number of workers >= 1")
    client, cluster = connect(scheduler, workers, ctx)
    watchdog = None
    try:
        address = client.scheduler.address
        _wait_for_a_worker(client, address, "at the start")
        if info is not None:
            info["scheduler"] = address
            info["n_workers"] = len(client.scheduler_info().get("workers", {}))
        run_key = uuid.uuid4().hex[:12]  # task keys unique per run on a shared cluster
        # The context as a task, not scattered data: a worker that dies while receiving or
        # holding it costs a recomputation elsewhere, never the run.
        ctx_future = client.submit(
            _context, ctx, key=f"insilico-{ctx.name}-{run_key}-context", pure=False
        )
        futures = {}
        for i, task in enumerate(tasks):
            f = client.submit(
                run_task,
                ctx_future,
                task,
                key=f"insilico-{ctx.name}-{run_key}-{i}",
                pure=False,
                retries=2,
            )
            futures[f] = i
        watchdog = _WorkerWatchdog(client, [ctx_future, *futures])
        with tqdm(total=len(futures), desc=ctx.name, unit="task", disable=not progress) as bar:
            for done, f in enumerate(as_completed(futures), start=1):
                try:
                    part = f.result()
                except Exception as exc:
                    if watchdog.fired_after_s is None and not _cluster_failure(exc):
                        raise  # an error of the task itself (bad input, a defect), as serially
                    raise _lost_workers(exc, watchdog, address, done - 1, len(futures)) from None
                yield futures[f], part
                bar.update(1)
                f.release()
                if callback is not None:
                    callback(done, len(futures))
    finally:
        if watchdog is not None:
            watchdog.stop()
        client.close()
        if cluster is not None:
            cluster.close()


def _context(ctx: TrialContext) -> TrialContext:
    """The trial context, as the result of a task (see :func:`run_dask`)."""
    return ctx


def _wait_for_a_worker(client, address: str, when: str) -> None:
    try:
        client.wait_for_workers(1, timeout=NO_WORKER_TIMEOUT_S)
    except (TimeoutError, OSError):
        allowed = f"a cluster with at least one worker (none {when} for {NO_WORKER_TIMEOUT_S:g} s)"
        raise SpecError("scheduler", address, allowed) from None


class _WorkerWatchdog:
    """Cancels the run's futures once the cluster has had no worker for
    :data:`NO_WORKER_TIMEOUT_S` (otherwise its tasks would wait for one forever)."""

    def __init__(self, client, futures, poll_s: float = 1.0):
        import threading

        self.fired_after_s: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._watch, args=(client, futures, poll_s), daemon=True
        )
        self._thread.start()

    def _watch(self, client, futures, poll_s: float) -> None:
        import time

        alone_since = None
        while not self._stop.wait(poll_s):
            try:
                n = len(client.scheduler_info().get("workers", {}))
            except Exception:  # the client is closing
                return
            now = time.monotonic()
            if n:
                alone_since = None
                continue
            alone_since = alone_since or now
            if now - alone_since >= NO_WORKER_TIMEOUT_S:
                self.fired_after_s = now - alone_since
                client.cancel(futures)
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)


def _cluster_failure(exc: BaseException) -> bool:
    """Whether ``exc`` is the cluster failing (a task cancelled, its workers killed, a
    connection lost) rather than the task's own error."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return isinstance(exc, CancelledError | KilledWorker | CommClosedError | OSError | TimeoutError)


def _lost_workers(exc, watchdog, address: str, n_done: int, n_total: int) -> Exception:
    """The error a run stops with when the cluster fails it (``exc``)."""
    from insilico.errors import InsilicoError

    progress = f"{n_done} of {n_total} tasks had finished; nothing was written"
    if watchdog.fired_after_s is not None:
        return SpecError(
            "scheduler",
            address,
            f"a cluster that keeps at least one worker (it had none for "
            f"{NO_WORKER_TIMEOUT_S:g} s; {progress})",
        )
    name = type(exc).__name__
    return InsilicoError(f"the run on {address} failed ({progress}): {name}: {_first_line(exc)}")
