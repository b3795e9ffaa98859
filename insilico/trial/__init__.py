"""Trial protocols: specs (``kind: trial`` YAML), resolved arms, per-block simulation.

>>> from insilico.trial import load_trial_spec
>>> spec = load_trial_spec("workflows/quickstart.yaml")  # doctest: +SKIP
"""

from insilico.trial.spec import (
    AdverseEventSpec,
    ArmSpec,
    BiomarkerSpec,
    CompoundFileSpec,
    CompoundSpec,
    DesignSpec,
    IIVSpec,
    PDSpec,
    RegimenSpec,
    ResponderSpec,
    TrialSpec,
    load_trial_spec,
    trial_spec_from_dict,
)

__all__ = [
    "AdverseEventSpec",
    "ArmSpec",
    "BiomarkerSpec",
    "CompoundFileSpec",
    "CompoundSpec",
    "DesignSpec",
    "IIVSpec",
    "PDSpec",
    "RegimenSpec",
    "ResponderSpec",
    "TrialSpec",
    "load_trial_spec",
    "trial_spec_from_dict",
]
