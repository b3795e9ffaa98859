"""Child process of :mod:`insilico.ui.jobs`: one run, progress as JSON lines on stdout.

Reads ``{"spec": ..., "root": ..., "executor": ..., "scheduler": ..., "workers": ...,
"chunk_size": ...}`` from stdin, calls :func:`insilico.engine.run.run_and_write` and writes
``{"progress": [n_done, n_total]}`` per task, then ``{"done": path}``, ``{"error": reason}`` or
``{"cancelled": true}``. SIGTERM cancels (the partial run directory is removed, the cluster
closed). Its ``__main__`` guard lets a local Dask cluster spawn worker processes safely.
"""

from __future__ import annotations

import json
import signal
import sys


def _emit(msg: dict) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> int:
    """Run the job described on stdin; returns the exit code."""

    def _term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        from insilico.engine.run import run_and_write
        from insilico.errors import InsilicoError
        from insilico.trial.spec import trial_spec_from_dict

        job = json.loads(sys.stdin.read())
        spec = trial_spec_from_dict(job.pop("spec"))
        _, path = run_and_write(spec=spec, callback=lambda d, t: _emit({"progress": [d, t]}), **job)
        _emit({"done": str(path)})
        return 0
    except KeyboardInterrupt:
        _emit({"cancelled": True})
        return 130
    except InsilicoError as exc:
        _emit({"error": str(exc).splitlines()[0]})
        return 2
    except Exception as exc:  # noqa: BLE001 - one readable line for the app
        import traceback

        traceback.print_exc()
        _emit({"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 1


if __name__ == "__main__":
    sys.exit(main())
