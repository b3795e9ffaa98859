"""The engine: a pure plan of tasks (arm x block of patient ids), serial and Dask executors,
and the merge of partial results in plan order. The only sub-package that imports Dask.

>>> from insilico.engine import run_trial
>>> result = run_trial("workflows/quickstart.yaml", executor="serial")  # doctest: +SKIP
"""

from insilico.engine.plan import Task, plan_tasks
from insilico.engine.run import TrialResult, prepare_trial, run_and_write, run_trial

__all__ = ["Task", "TrialResult", "plan_tasks", "prepare_trial", "run_and_write", "run_trial"]
