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
#: How long to try to reach an existing scheduler.
CONNECT_TIMEOUT = "10s"


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
        if address.endswith(".json") and not os.path.isfile(address):
            raise SpecError("scheduler", address, "an existing scheduler file or tcp://HOST:PORT")
        try:
            if address.endswith(".json"):
                return Client(scheduler_file=address, timeout=CONNECT_TIMEOUT), None
            return Client(address, timeout=CONNECT_TIMEOUT), None
        except (OSError, TimeoutError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            allowed = f"a reachable Dask scheduler ({reason})"
            raise SpecError("scheduler", address, allowed) from None
    n = workers or os.cpu_count() or 1
    if ctx is not None:
        warm_up(ctx)
    cluster = local_cluster(n)
    return Client(cluster), cluster


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
    try:
        if info is not None:
            info["scheduler"] = client.scheduler.address
            info["n_workers"] = len(client.scheduler_info().get("workers", {}))
        ctx_future = client.scatter(ctx, broadcast=True)
        run_key = uuid.uuid4().hex[:12]  # task keys unique per run on a shared cluster
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
        with tqdm(total=len(futures), desc=ctx.name, unit="task", disable=not progress) as bar:
            for done, f in enumerate(as_completed(futures), start=1):
                yield futures[f], f.result()
                bar.update(1)
                f.release()
                if callback is not None:
                    callback(done, len(futures))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
