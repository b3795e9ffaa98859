"""Protocol sections for trial conduct and uncertainty: dropout, adherence, titration,
replicates, success criterion, compound uncertainty and dose scan (see
:mod:`insilico.trial.spec`).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from insilico.io.specs import FrozenSpec


class DropoutSpec(FrozenSpec):
    """Dropout with a constant hazard: time on study ``T ~ Exponential(hazard_per_day / 24 h)``.

    Doses after ``T`` are not taken; assessments after ``T`` are missing. ``analysis``:
    ``non_responder`` counts a patient without the assessment as a non-responder (non-responder
    imputation, the conservative primary analysis of binary endpoints); ``completers``
    leaves them out of the rate (its denominator shrinks).
    """

    hazard_per_day: float = Field(ge=0, le=10)
    analysis: Literal["non_responder", "completers"] = "non_responder"


class AdherenceSpec(FrozenSpec):
    """Each scheduled dose is missed independently with probability ``p_miss_dose``."""

    p_miss_dose: float = Field(ge=0, lt=1)


class TitrationSpec(FrozenSpec):
    """Forced-to-target titration: at each visit, a patient whose biomarker change (% of
    baseline, without residual error) has not reached ``target_change_pct`` and who has had no
    adverse event so far has every later dose multiplied by ``factor``, at most ``max_steps``
    times. ``target_change_pct < 0``: the target is a decrease of at least that much.
    """

    visits_h: list[float] = Field(min_length=1)
    factor: float = Field(2.0, gt=1, le=10)
    max_steps: int = Field(2, ge=1, le=10)
    target_change_pct: float

    @model_validator(mode="after")
    def _check(self) -> TitrationSpec:
        if any(not (math.isfinite(v) and v > 0) for v in self.visits_h):
            raise ValueError("visits_h: times > 0 h")
        if sorted(set(self.visits_h)) != list(self.visits_h):
            raise ValueError("visits_h: strictly increasing times")
        if self.target_change_pct == 0:
            raise ValueError("target_change_pct: a non-zero change (negative: decrease)")
        return self


class DesignSpec(FrozenSpec):
    """``paired``: every twin receives every arm; ``parallel``: randomized with ``ratios``;
    plus dropout, adherence and titration (all optional)."""

    type: Literal["paired", "parallel"] = "paired"
    ratios: dict[str, float] | None = None
    dropout: DropoutSpec | None = None
    adherence: AdherenceSpec | None = None
    titration: TitrationSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> DesignSpec:
        if self.ratios is not None:
            if self.type != "parallel":
                raise ValueError("ratios only with type: parallel")
            for k, v in self.ratios.items():
                if not (math.isfinite(v) and v > 0):
                    raise ValueError(f"ratios.{k}: a number > 0")
        return self


class ReplicatesSpec(FrozenSpec):
    """``n_trials`` independent trials of ``n_patients`` each (trial ``r`` holds patient ids
    ``r*n_patients .. (r+1)*n_patients - 1``): between-trial spread and power."""

    n_trials: int = Field(ge=1, le=100_000)


class SuccessSpec(FrozenSpec):
    """A trial succeeds for an arm when its ``endpoint`` rate beats ``comparator`` by more
    than ``margin`` (a difference of proportions) at one-sided level ``alpha``: pooled
    two-proportion z-test for parallel groups, McNemar's test for paired twins.
    ``direction: greater``: a higher rate is better."""

    endpoint: str
    comparator: str = "placebo"
    alpha: float = Field(0.025, gt=0, lt=0.5)
    direction: Literal["greater", "less"] = "greater"


class UncertaintySpec(FrozenSpec):
    """Compound uncertainty: ``compound_draws`` draws of each compound's typical parameters
    from their log-scale uncertainty (``sd_log`` of each profile parameter; 0 for measured
    values). Trial replicate ``r`` uses draw ``r mod compound_draws``; the summary splits the
    between-trial variance into compound uncertainty and patient/trial sampling."""

    compound_draws: int = Field(ge=2, le=10_000)


class DoseScanSpec(FrozenSpec):
    """Doses (mg) to scan: each compound's first regimen with every dose scaled so that its
    first dose equals each of ``doses_mg`` (the arms are then generated, one per dose)."""

    doses_mg: list[float] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> DoseScanSpec:
        if any(not (math.isfinite(d) and d > 0) for d in self.doses_mg):
            raise ValueError("doses_mg: doses > 0 mg")
        if len(set(self.doses_mg)) != len(self.doses_mg):
            raise ValueError("doses_mg: distinct doses")
        return self
