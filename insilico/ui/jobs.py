"""A trial run started from the app: in the background, with progress and cancel.

Two ways, the same function underneath (:func:`insilico.engine.run.run_and_write`, as
``insilico run``), so the results are identical:

- ``isolated=True`` (the default for the Dask executor): a child process
  ``python -m insilico.ui.runner`` in its own session. A local Dask cluster spawns worker
  processes that re-import the parent's ``__main__``; inside Streamlit that is the app script,
  which cannot carry an ``if __name__ == "__main__"`` guard. The child's ``__main__`` is the
  runner module, which has one. Cancel sends SIGTERM to the child's process group (the run
  directory is removed by the writer's cleanup, the cluster closed), then SIGKILL after
  :data:`CANCEL_GRACE_S`.
- ``isolated=False``: a thread in this process (serial executor, tests); cancel raises
  :class:`RunCancelled` from the progress callback at the next task boundary.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from insilico.errors import InsilicoError, SpecError

#: Seconds between SIGTERM and SIGKILL on cancel.
CANCEL_GRACE_S = 15.0
EXECUTORS = ("dask", "serial")


class RunCancelled(InsilicoError):
    """The run was cancelled by the user."""


@dataclass
class RunJob:
    """State of one background run (read by the app while it polls)."""

    job_id: str
    name: str
    executor: str
    status: str = "starting"  # starting, running, done, failed, cancelled
    n_done: int = 0
    n_total: int = 0
    run_id: str | None = None
    error: str = ""
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status in ("starting", "running")

    @property
    def fraction(self) -> float:
        return self.n_done / self.n_total if self.n_total else 0.0

    @property
    def elapsed_s(self) -> float:
        return (self.finished or time.time()) - self.started

    def cancel(self) -> None:
        """Ask the run to stop (no-op when finished)."""
        if not self.active:
            return
        self._cancel.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                return

            def _kill_later() -> None:
                try:
                    proc.wait(CANCEL_GRACE_S)
                except subprocess.TimeoutExpired:
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass

            threading.Thread(target=_kill_later, daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run has finished (True) or ``timeout`` seconds passed (False)."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return not self.active


#: Jobs started by this app server, newest last: a page reload starts a new browser session
#: (its state is gone), but the server and its jobs live on; the Run page reattaches.
_STARTED: list[RunJob] = []
_STARTED_LOCK = threading.Lock()
#: Finished jobs kept for reattaching, besides the running ones.
KEEP_FINISHED = 20


def started_jobs() -> list[RunJob]:
    """The jobs this server started that are still running or finished most recently,
    newest first (see :data:`KEEP_FINISHED`)."""
    with _STARTED_LOCK:
        return list(reversed(_STARTED))


def latest_active_job() -> RunJob | None:
    """The newest job of this server still running (to reattach after a page reload)."""
    return next((j for j in started_jobs() if j.active), None)


def _remember(job: RunJob) -> None:
    with _STARTED_LOCK:
        _STARTED.append(job)
        finished = [j for j in _STARTED if not j.active]
        for old in finished[: max(len(finished) - KEEP_FINISHED, 0)]:
            _STARTED.remove(old)


def _finish(job: RunJob, status: str, error: str = "") -> None:
    job.status = status
    job.error = error
    job.finished = time.time()


def start_run(
    spec_data: dict,
    root: str | Path,
    executor: str = "dask",
    scheduler: str | None = None,
    workers: int | None = None,
    chunk_size: int | None = None,
    isolated: bool | None = None,
) -> RunJob:
    """Start a run of a validated trial mapping in the background and return its job.

    Parameters
    ----------
    spec_data : dict
        ``TrialSpec.model_dump(mode="json")`` (absolute paths), e.g. from
        :func:`insilico.ui.design.validate_design`.
    root : path
        The runs folder (the run lands in ``root/<run-id>/`` as with ``insilico run --out``).
    executor : {"dask", "serial"}
    scheduler : str, optional
        A Dask scheduler address (``tcp://HOST:PORT``); None: ``DASK_SCHEDULER_ADDRESS`` or a
        local cluster.
    isolated : bool, optional
        Run in a child process (default: True for Dask, False for serial).
    """
    if executor not in EXECUTORS:
        raise SpecError("executor", executor, f"one of {list(EXECUTORS)}")
    if scheduler is not None and not str(scheduler).strip():
        scheduler = None
    from insilico.trial.spec import trial_spec_from_dict

    spec = trial_spec_from_dict(spec_data)  # fail here, readable, before anything starts
    job = RunJob(uuid.uuid4().hex[:10], spec.name, executor)
    isolated = executor == "dask" if isolated is None else isolated
    kwargs = {
        "root": str(Path(root).resolve()),
        "executor": executor,
        "scheduler": scheduler,
        "workers": workers,
        "chunk_size": chunk_size,
    }
    target = _run_process if isolated else _run_thread
    job._thread = threading.Thread(
        target=target, args=(job, spec_data, kwargs), daemon=True, name=f"insilico-run-{job.job_id}"
    )
    _remember(job)
    job._thread.start()
    return job


def _run_thread(job: RunJob, spec_data: dict, kwargs: dict) -> None:
    from insilico.engine.run import run_and_write
    from insilico.trial.spec import trial_spec_from_dict

    def callback(n_done: int, n_total: int) -> None:
        job.status = "running"
        job.n_done, job.n_total = n_done, n_total
        if job._cancel.is_set():
            raise RunCancelled("run cancelled")

    try:
        spec = trial_spec_from_dict(spec_data)
        job.status = "running"
        _, path = run_and_write(spec=spec, callback=callback, **kwargs)
        job.run_id = Path(path).name
        _finish(job, "done")
    except RunCancelled:
        _finish(job, "cancelled")
    except InsilicoError as exc:
        _finish(job, "failed", str(exc).splitlines()[0])
    except Exception as exc:  # noqa: BLE001 - shown to the user as one readable line
        _finish(
            job, "failed", f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        )


def _child_env() -> dict[str, str]:
    """The environment of the runner process: this package importable from its checkout."""
    env = dict(os.environ)
    pkg_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_parent, env.get("PYTHONPATH", "")) if p)
    return env


def _run_process(job: RunJob, spec_data: dict, kwargs: dict) -> None:
    cmd = [sys.executable, "-m", "insilico.ui.runner"]
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env=_child_env(),
        )
    except OSError as exc:
        _finish(job, "failed", f"cannot start the run process: {exc}")
        return
    job._proc = proc
    stdin, stdout, stderr = proc.stdin, proc.stdout, proc.stderr
    if stdin is None or stdout is None or stderr is None:  # all three are pipes above
        raise RuntimeError("the run process was started without its pipes")
    if job._cancel.is_set():
        job.cancel()
    stderr_tail: list[str] = []

    def _drain_stderr() -> None:
        for line in stderr:  # keep the pipe from filling; keep the end for errors
            stderr_tail.append(line.rstrip())
            del stderr_tail[:-20]

    threading.Thread(target=_drain_stderr, daemon=True).start()
    stdin.write(json.dumps({"spec": spec_data, **kwargs}))
    stdin.close()
    final: dict = {}
    for line in stdout:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "progress" in msg:
            job.status = "running"
            job.n_done, job.n_total = msg["progress"]
        else:
            final = msg
    proc.wait()
    if "done" in final:
        job.run_id = Path(final["done"]).name
        _finish(job, "done")
    elif final.get("cancelled") or job._cancel.is_set():
        _finish(job, "cancelled")
    elif "error" in final:
        _finish(job, "failed", final["error"])
    else:
        tail = next((s for s in reversed(stderr_tail) if s.strip()), "")
        _finish(job, "failed", f"the run process ended with code {proc.returncode}: {tail}")
