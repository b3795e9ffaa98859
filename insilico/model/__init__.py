"""Model definitions: PK structure, parameters, covariates, variability, residual error, PD.

A model is data (YAML ``kind: model``) and the same frozen :class:`Model` object in Python::

    from insilico.model import load_model, typical_parameters, sample_eta, apply_eta

    model = load_model("models/oral_1cpt_lag_allometric.yaml")
    tv = typical_parameters(model, {"WT": weight_kg}, n)
    params = apply_eta(tv, model, sample_eta(model, n, rng))
"""

from insilico.model.catalogue import PARAMETERS, ParameterInfo
from insilico.model.covariates import covariate_columns, covariate_factor, typical_parameters
from insilico.model.residual import add_residual_error, residual_sd
from insilico.model.spec import (
    IIV,
    CovariateEffect,
    DataSpec,
    DosingSpec,
    IIVBlock,
    Model,
    PDSpec,
    PKSpec,
    ResidualError,
    dump_model,
    load_model,
    model_from_dict,
    model_to_dict,
    read_model_yaml,
)
from insilico.model.variability import (
    apply_eta,
    apply_kappa,
    occasion_kappa,
    sample_eta,
    sample_eta_for_patients,
    sample_kappa,
)

__all__ = [
    "IIV",
    "PARAMETERS",
    "CovariateEffect",
    "DataSpec",
    "DosingSpec",
    "IIVBlock",
    "Model",
    "PDSpec",
    "PKSpec",
    "ParameterInfo",
    "ResidualError",
    "add_residual_error",
    "apply_eta",
    "apply_kappa",
    "covariate_columns",
    "covariate_factor",
    "dump_model",
    "load_model",
    "model_from_dict",
    "model_to_dict",
    "occasion_kappa",
    "read_model_yaml",
    "residual_sd",
    "sample_eta",
    "sample_eta_for_patients",
    "sample_kappa",
    "typical_parameters",
]
