"""Run a trial end to end: spec -> compounds -> plan -> executor -> merge -> run directory."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from numba.core.event import TimingListener, install_listener

from insilico.engine.executors import EXECUTORS, choose_executor, run_dask, run_serial
from insilico.engine.merge import Merger
from insilico.engine.plan import effective_chunk_size, plan_tasks
from insilico.errors import SpecError
from insilico.io.compounds import resolve_compounds
from insilico.results.rundir import package_versions
from insilico.results.scorecard import summarize_trial
from insilico.trial.context import TrialContext, build_context
from insilico.trial.spec import TrialSpec, load_trial_spec


@dataclass
class TrialResult:
    """Everything a run produces (what the run directory stores)."""

    spec: TrialSpec
    context: TrialContext
    patients: pd.DataFrame
    bands: pd.DataFrame
    summary: pd.DataFrame
    failed: pd.DataFrame
    manifest: dict = field(default_factory=dict)


def prepare_trial(
    spec: TrialSpec | str | Path,
    n_patients: int | None = None,
    seed: int | None = None,
    source: str | None = None,
    dose_scan: list[float] | None = None,
) -> tuple[TrialSpec, TrialContext, pd.DataFrame, dict]:
    """Load and validate everything before any simulation (all input errors surface here).

    Returns the spec, the context, failed compounds and timings.
    """
    t0 = time.perf_counter()
    if not isinstance(spec, TrialSpec):
        source = str(spec)
        spec = load_trial_spec(spec)
    profiles, failed, _ = resolve_compounds(spec.compounds, source)
    t1 = time.perf_counter()
    try:
        ctx, failed = build_context(
            spec, profiles, failed, n_patients=n_patients, seed=seed, dose_scan=dose_scan
        )
    except SpecError as exc:
        if source is None or exc.source is not None:
            raise
        raise SpecError(exc.field, exc.value, exc.allowed, source) from None
    t2 = time.perf_counter()
    return spec, ctx, failed, {"compounds": t1 - t0, "context": t2 - t1}


def run_trial(
    spec: TrialSpec | str | Path,
    executor: str = "serial",
    n_patients: int | None = None,
    seed: int | None = None,
    chunk_size: int | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: bool = False,
    callback=None,
    patients_sink=None,
    source: str | None = None,
    dose_scan: list[float] | None = None,
) -> TrialResult:
    """Run a trial and return its tables (see :func:`insilico.results.rundir.write_run`).

    Parameters
    ----------
    spec : TrialSpec or path
        The protocol (a path is loaded with :func:`insilico.trial.spec.load_trial_spec`).
    executor : {"serial", "dask", "auto"}
        ``dask`` uses ``scheduler`` / ``DASK_SCHEDULER_ADDRESS`` or a local cluster of
        ``workers`` processes; ``auto`` is ``dask`` when a scheduler or ``workers`` is given
        or the trial is large, else ``serial`` (:func:`insilico.engine.executors.choose_executor`;
        the manifest's ``execution.executor_reason`` says which and why).
    n_patients, seed : int, optional
        Override the spec's values.
    chunk_size : int, optional
        Patients per task, rounded up to a multiple of ``insilico.rng.PATIENT_BLOCK``.
        Results do not depend on it.
    callback : callable, optional
        ``callback(n_done, n_total)`` after each completed task.
    dose_scan : list of float, optional
        Doses (mg) to scan, overriding the spec's ``dose_scan`` (``--dose-scan``).
    patients_sink : callable, optional
        Receives the per-patient rows in plan order, one task's rows at a time; the result's
        ``patients`` then holds only the columns the summary needs (bounded client memory).
    """
    if executor not in EXECUTORS:
        raise SpecError("executor", executor, f"one of {list(EXECUTORS)}")
    t_start = time.perf_counter()
    compiling = TimingListener()  # numba compiling (or loading) kernels in this process
    with install_listener("numba:compile", compiling):
        spec, ctx, failed, timings = prepare_trial(spec, n_patients, seed, source, dose_scan)
        tasks = plan_tasks(len(ctx.arms), ctx.n_patients, chunk_size)
        executor, reason = choose_executor(executor, ctx, scheduler, workers)
        info: dict = {"executor": executor, "executor_reason": reason}
        t0 = time.perf_counter()
        if executor == "serial":
            items = run_serial(ctx, tasks, progress=progress, callback=callback)
        else:
            items = run_dask(
                ctx,
                tasks,
                scheduler=scheduler,
                workers=workers,
                progress=progress,
                info=info,
                callback=callback,
            )
        merger = Merger(ctx, len(tasks), sink=patients_sink).add_all(items)
        timings["simulate"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        patients = merger.patients()
        bands = merger.bands()
        summary = summarize_trial(patients, ctx)
        timings["merge"] = time.perf_counter() - t1
    timings["compile"] = compiling.duration if compiling.done else 0.0
    timings["total"] = time.perf_counter() - t_start
    manifest = {
        "name": spec.name,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "spec": spec.model_dump(mode="json"),
        "spec_sha256": spec.sha256(),
        "seed": ctx.seed,
        "n_patients": ctx.n_patients,
        "n_patients_per_trial": ctx.n_per_trial,
        "n_trials": ctx.n_trials,
        "compound_draws": ctx.compound_draws,
        "primary_endpoint": ctx.primary,
        "dose_scan_mg": list(dose_scan) if dose_scan else None,
        "packages": package_versions(),
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "arms": [
            {
                "name": a.name,
                "compound_id": a.compound_id,
                "regimen": a.regimen_name,
                "regimen_text": a.regimen_text,
                "dose_mg": a.dose_mg,
                "typical": a.typical,
                "herg_ic50_mg_per_L": a.herg_ic50_mg_per_L,
                "potency_mg_per_L": a.potency_mg_per_L,
                "clogp": a.clogp,
                "structural_alerts": list(a.structural_alerts),
            }
            for a in ctx.arms
        ],
        "failed_compounds": failed.to_dict("records"),
        "compound_warnings": [dict(w) for w in ctx.compound_warnings],
        "execution": {
            **info,
            "n_tasks": len(tasks),
            "chunk_size": effective_chunk_size(chunk_size),
            "workers": workers,
        },
        "bands": {
            "definition": "inverted-CDF percentiles from fixed-bin histograms; the exact "
            "percentile lies in the reported bin",
            "conc_mg_per_L": {
                "scale": "log10",
                "lo": ctx.conc_grid.lo,
                "hi": ctx.conc_grid.hi,
                "bin_width": ctx.conc_grid.width,
                "resolution": "within a factor 10**(bin_width/2) = "
                f"{10 ** (ctx.conc_grid.width / 2):.4f}",
            },
            "biomarker_change_pct": {
                "scale": "linear",
                "lo": ctx.biomarker_grid.lo,
                "hi": ctx.biomarker_grid.hi,
                "bin_width": ctx.biomarker_grid.width,
                "resolution": f"+-{ctx.biomarker_grid.width / 2} percentage points",
            },
        },
    }
    return TrialResult(spec, ctx, patients, bands, summary, failed, manifest)


def run_and_write(
    root: str | Path = "runs", spec: TrialSpec | str | Path | None = None, **kwargs
) -> tuple[TrialResult, Path]:
    """Run a trial into a new run directory under ``root`` (see :mod:`insilico.results.rundir`).

    Input errors are raised before the directory is created; patients are streamed to
    ``patients.parquet`` in plan order; the directory gets its final name only when complete.
    ``kwargs`` go to :func:`run_trial`. The returned result's ``patients`` holds only the
    summary columns.
    """
    from insilico.results.rundir import RunWriter, new_run_id

    if spec is None:
        raise SpecError("spec", None, "a TrialSpec or the path of a trial YAML file")
    if not isinstance(spec, TrialSpec):
        kwargs.setdefault("source", str(spec))
        spec = load_trial_spec(spec)
    root = Path(root)
    run_id = new_run_id(
        spec.name,
        spec.sha256(),
        root,
        seed=kwargs.get("seed"),
        n_patients=kwargs.get("n_patients"),
    )
    holder: dict = {}

    def sink(rows: pd.DataFrame) -> None:
        if "writer" not in holder:
            holder["writer"] = RunWriter(root, run_id)
        holder["writer"].write_patients(rows)

    try:
        result = run_trial(spec, patients_sink=sink, **kwargs)
        path = holder["writer"].finish(result.manifest, result.bands, result.summary)
    finally:
        if "writer" in holder:
            holder["writer"].abort()  # no-op after finish (the directory was renamed)
    return result, path
