"""Protocol sections for efficacy and safety: biomarker baseline, placebo response, endpoints,
safety models (part of ``kind: trial`` files; see :mod:`insilico.trial.spec`).

Every change from baseline is in % of the patient's own baseline unless an endpoint says
``scale: absolute`` (then in the biomarker's unit).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, StrictBool, model_validator

from insilico.endpoints.safety import QT_CATEGORICAL_EVENTS
from insilico.io.specs import FrozenSpec

NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"

#: Events of the built-in safety models that can be declared serious: the ICH E14 categorical
#: QT endpoints (on-treatment QTc > 450, 480, 500 ms; ΔQTc > 30, 60 ms) and drug-induced liver
#: injury.
SAFETY_EVENTS = (*QT_CATEGORICAL_EVENTS, "dili")
#: Serious by default: the ICH E14 categorical QTc outliers of most concern (QTc > 500 ms,
#: ΔQTc > 60 ms) and drug-induced liver injury.
DEFAULT_SERIOUS = ("qt_qtc_gt500", "qt_dqtc_gt60", "dili")


class BaselineSpec(FrozenSpec):
    """Disease baseline of the biomarker, drawn once per patient (the same twin in every arm).

    ``normal``: mean ``mean`` and SD ``sd``, truncated to ``[low, high]`` when given (an
    inclusion criterion on disease severity; drawn by inverse CDF, so exactly inside).
    ``lognormal``: median ``mean`` and SD ``sd`` of the natural log, truncated the same way.
    The baseline replaces the PD model's E0 (direct models) or sets ``kin = baseline * kout``
    (indirect-response models), so drug effects scale with each patient's own baseline.
    """

    distribution: Literal["normal", "lognormal"] = "normal"
    mean: float
    sd: float = Field(ge=0)
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _check(self) -> BaselineSpec:
        if not math.isfinite(self.mean) or (self.distribution == "lognormal" and self.mean <= 0):
            raise ValueError("mean: a finite number (> 0 for lognormal: the median)")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError("low: below high")
        return self


class PlaceboSpec(FrozenSpec):
    """Placebo response: a drift of the biomarker that every arm has, drug or not.

    ``change_pct(t) = (magnitude_pct + eta) * (1 - exp(-ln2 t / half_life_h))`` with
    ``eta ~ N(0, sd_pct^2)`` per patient: an exponential approach to a plateau. Response is
    taken as disease status + drug action + placebo, additive (Holford, "Clinical pharmacology
    = disease progression + drug action", Br J Clin Pharmacol 2015;79:18, PMC4294073; the
    additive R(t) = DP(t) + D(t) + P(t) form). It adds to the drug's % change.
    """

    magnitude_pct: float
    half_life_h: float = Field(gt=0)
    sd_pct: float = Field(0.0, ge=0)


class EndpointSpec(FrozenSpec):
    """An efficacy endpoint.

    kinds
    -----
    ``change``
        Biomarker change from baseline at ``time_h`` (``scale``: ``percent`` or ``absolute``).
    ``responder``
        Change at ``time_h`` at least ``threshold`` in its direction (``threshold < 0``: a
        decrease of at least ``|threshold|``); with ``sustained_from_h`` the patient must meet
        it at every assessment from ``sustained_from_h`` to ``time_h``.
    ``time_to_response``
        First assessment time at which the change meets ``threshold`` (NaN if never before
        ``time_h``, default the end of the trial, or before dropout).
    ``target_attainment``
        Probability of target attainment over the last dosing interval, on total plasma
        concentration ``target_mg_per_L``: ``metric: trough`` (trough >= target),
        ``time_above`` (fraction of the interval above target >= ``min_fraction``),
        ``auc`` (AUC_tau / target >= ``min_ratio`` h) or ``cavg`` (Cavg >= target). For a
        single dose (``once``) the interval is the 24 h after the dose (AUC 0-24).
    """

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["change", "responder", "time_to_response", "target_attainment"]
    time_h: float | None = Field(None, ge=0)
    scale: Literal["percent", "absolute"] = "percent"
    threshold: float | None = None
    sustained_from_h: float | None = Field(None, ge=0)
    metric: Literal["trough", "time_above", "auc", "cavg"] | None = None
    target_mg_per_L: float | None = Field(None, gt=0)
    min_fraction: float = Field(0.5, gt=0, le=1)
    min_ratio: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> EndpointSpec:
        k = self.kind
        if k in ("change", "responder") and self.time_h is None:
            raise ValueError(f"time_h: required by kind {k!r}")
        if k in ("responder", "time_to_response"):
            if self.threshold is None or self.threshold == 0 or not math.isfinite(self.threshold):
                raise ValueError(f"threshold: a non-zero change (negative: decrease) for {k!r}")
        elif self.threshold is not None:
            raise ValueError(f"threshold: only for responder/time_to_response, not {k!r}")
        if self.sustained_from_h is not None:
            if k != "responder":
                raise ValueError("sustained_from_h: only for kind 'responder'")
            if self.time_h is not None and self.sustained_from_h > self.time_h:
                raise ValueError("sustained_from_h: at or before time_h")
        if k == "target_attainment":
            if self.metric is None or self.target_mg_per_L is None:
                raise ValueError("metric: target_attainment needs metric and target_mg_per_L")
        elif self.metric is not None or self.target_mg_per_L is not None:
            raise ValueError(f"metric: only for target_attainment, not {k!r}")
        return self

    @property
    def is_binary(self) -> bool:
        """A per-patient yes/no outcome (a rate with a Wilson interval in the summary)."""
        return self.kind in ("responder", "target_attainment")


class SafetySpec(FrozenSpec):
    """Built-in safety models (:mod:`insilico.endpoints.safety`, :mod:`insilico.endpoints.liver`).

    ``qt``: hERG block at unbound Cmax -> ddQTc (the arm's mean with its one-sided 95 % upper
    bound) and the ICH E14 categorical endpoints per patient (QTc > 450, 480, 500 ms; ΔQTc >
    30, 60 ms), for compounds with a hERG IC50 (others get NaN and are listed in the run's
    notes).
    ``liver``: DILI from daily dose, logP (rule of two) and reactive-metabolite alerts.
    ``serious``: which events count as serious, together with any ``adverse_events`` entry
    marked ``serious: true``.
    """

    qt: StrictBool = False
    liver: StrictBool = False
    serious: list[str] = Field(default_factory=lambda: list(DEFAULT_SERIOUS))

    @model_validator(mode="after")
    def _check(self) -> SafetySpec:
        for k, s in enumerate(self.serious):
            if s not in SAFETY_EVENTS:
                raise ValueError(f"serious[{k}]: one of {list(SAFETY_EVENTS)}")
        return self
