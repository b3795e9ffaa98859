"""Efficacy endpoints, safety models and the statistics of a trial's verdict.

* :mod:`insilico.endpoints.efficacy`: disease baseline, placebo drift, responders, time to
  response, target attainment.
* :mod:`insilico.endpoints.safety`: hERG margin, hERG block -> ddQTc, ICH E14 QT events,
  exposure-response logistic adverse events.
* :mod:`insilico.endpoints.liver` and :mod:`insilico.chem.alerts`: drug-induced liver
  injury from the rule of two and reactive-metabolite structural alerts.
* :mod:`insilico.endpoints.stats` and :mod:`insilico.endpoints.dose_selection`: intervals,
  tests, power, replicate and uncertainty summaries, best dose.
"""

from insilico.endpoints.dose_selection import best_dose
from insilico.endpoints.efficacy import (
    placebo_change_pct,
    placebo_responder_rate,
    sample_baseline,
)
from insilico.endpoints.liver import LiverRiskModel, dili_probability, rule_of_two
from insilico.endpoints.safety import (
    HERG_MARGIN_FLAG,
    QTModel,
    herg_block_fraction,
    herg_margin,
    logistic_probability,
    qt_outcomes,
)
from insilico.endpoints.stats import (
    mcnemar_test,
    newcombe_difference_interval,
    paired_difference_interval,
    probability_of_success,
    two_proportion_power,
    two_proportion_test,
    variance_decomposition,
    wilson_interval,
)

__all__ = [
    "HERG_MARGIN_FLAG",
    "LiverRiskModel",
    "QTModel",
    "best_dose",
    "dili_probability",
    "herg_block_fraction",
    "herg_margin",
    "logistic_probability",
    "mcnemar_test",
    "newcombe_difference_interval",
    "paired_difference_interval",
    "placebo_change_pct",
    "placebo_responder_rate",
    "probability_of_success",
    "qt_outcomes",
    "rule_of_two",
    "sample_baseline",
    "two_proportion_power",
    "two_proportion_test",
    "variance_decomposition",
    "wilson_interval",
]
