"""Run directories (write, read, list; :mod:`insilico.results.access` for readers such as the
app) and the per-arm summary statistics."""

from insilico.results.rundir import Run, RunWriter, list_runs, read_run, write_run
from insilico.results.summary import format_summary, summarize_patients, wilson_interval

__all__ = [
    "Run",
    "RunWriter",
    "format_summary",
    "list_runs",
    "read_run",
    "summarize_patients",
    "wilson_interval",
    "write_run",
]
