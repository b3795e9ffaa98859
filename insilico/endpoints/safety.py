"""Per-patient safety models: hERG margin, hERG block, QTc outcomes, exposure-driven AEs.

Everything here is a pure, vectorized function of numpy arrays (one element per patient,
broadcasting allowed). Random variation is passed in as pre-drawn arrays (standard normals,
uniforms) so that the caller keeps control of seeding (:mod:`insilico.rng`).

QT model in one line (per patient ``i``, unbound peak concentration ``Cu``)::

    B_i       = Cu^h / (Cu^h + IC50^h)                       hERG block at the unbound Cmax
    ΔΔQTc_i   = 0.28 · QTc0_i · B_i / (B50 + B_i)  +  σ_res · z_res,i
    QTc0_i    = μ_sex + σ_sex · z_base,i                        baseline QTcF
    ΔQTc_i    = ΔΔQTc_i + placebo_dqtc_mean_ms                  change from baseline
    QTc_i     = QTc0_i + ΔQTc_i

with the ICH E14 categorical endpoints per patient: on-treatment QTc above 450, 480 and 500 ms
and ΔQTc above 30 and 60 ms (ICH E14, 2005, section 3.2.2, analyses of categorical responses).
The per-patient ΔΔQTc is not an event: the E14 threshold of 10 ms applies to the one-sided
upper bound of the arm's *mean* ΔΔQTc (:func:`insilico.results.scorecard.ddqtc_summary`), and
a single patient's ΔΔQTc exceeds 10 ms by assessment noise alone in about 17 % of placebo
patients. Sources and which numbers are calibration choices are documented on
:class:`QTModel`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from insilico.errors import SpecError

HERG_MARGIN_FLAG = 30.0
"""hERG IC50 / unbound Cmax below which a compound is flagged (Redfern et al. 2003,
Cardiovasc Res 58:32, doi:10.1016/S0008-6363(02)00846-5: a provisional 30-fold margin between
hERG IC50 and the free therapeutic plasma concentration)."""

QTC_THRESHOLDS_MS = (450.0, 480.0, 500.0)
"""Absolute on-treatment QTc thresholds of the ICH E14 categorical analysis (ms): a patient is
counted when the QTc exceeds the threshold (ICH E14, 2005, section 3.2.2)."""
DQTC_THRESHOLDS_MS = (30.0, 60.0)
"""Change-from-baseline (ΔQTc) thresholds of the ICH E14 categorical analysis (ms)."""
QTC_THRESHOLD_MS = QTC_THRESHOLDS_MS[-1]
"""Absolute on-treatment QTc of most concern (500 ms)."""
DQTC_THRESHOLD_MS = DQTC_THRESHOLDS_MS[-1]
"""Change from baseline of most concern (60 ms)."""
QT_CATEGORICAL_EVENTS = tuple(f"qt_qtc_gt{t:g}" for t in QTC_THRESHOLDS_MS) + tuple(
    f"qt_dqtc_gt{t:g}" for t in DQTC_THRESHOLDS_MS
)
"""Names of the per-patient ICH E14 categorical endpoints returned by :func:`qt_outcomes`:
``qt_qtc_gt450``, ``qt_qtc_gt480``, ``qt_qtc_gt500``, ``qt_dqtc_gt30``, ``qt_dqtc_gt60``."""

_SEX_CODES = ("F", "M")


def _float(x) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _check_nonneg(name: str, x: np.ndarray) -> None:
    """Negative values (NaN allowed) are a spec error naming the field."""
    bad = x < 0
    if np.any(bad):
        raise SpecError(name, float(x[bad].flat[0]), "values >= 0 (NaN for unknown)")


def herg_margin(herg_ic50_mg_per_L, cmax_unbound_mg_per_L) -> np.ndarray:
    """hERG safety margin ``IC50 / unbound Cmax`` (dimensionless).

    Redfern et al. 2003 (doi:10.1016/S0008-6363(02)00846-5) compared hERG/IKr IC50 with the
    free (unbound) effective therapeutic plasma concentration of 100 drugs and proposed a
    30-fold margin (:data:`HERG_MARGIN_FLAG`) as provisional separation from torsadogenic risk.

    Parameters
    ----------
    herg_ic50_mg_per_L : array_like
        hERG IC50 in mg/L (> 0; ``inf`` for no measurable block; NaN when unknown).
    cmax_unbound_mg_per_L : array_like
        Unbound peak plasma concentration ``fu · Cmax`` in mg/L (>= 0).

    Returns
    -------
    numpy.ndarray
        Broadcast shape of the inputs: ``inf`` where the unbound Cmax is 0, NaN where the IC50
        (or the Cmax) is NaN.
    """
    ic50 = _float(herg_ic50_mg_per_L)
    c = _float(cmax_unbound_mg_per_L)
    _check_nonneg("cmax_unbound_mg_per_L", c)
    if np.any(ic50 <= 0):
        raise SpecError("herg_ic50_mg_per_L", float(ic50[ic50 <= 0].flat[0]), "values > 0")
    ic50, c = np.broadcast_arrays(ic50, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = ic50 / c
    m = np.where(c == 0, np.inf, m)
    return np.where(np.isnan(ic50) | np.isnan(c), np.nan, m)


def herg_block_fraction(conc_unbound_mg_per_L, herg_ic50_mg_per_L, hill=1.0) -> np.ndarray:
    """Fraction of hERG current blocked, ``B = C^h / (C^h + IC50^h)`` (Hill equation).

    The unbound concentration is the one that reaches the channel; a zero concentration gives
    ``B = 0`` whatever the IC50 (so a placebo arm is evaluable without a hERG IC50).

    Parameters
    ----------
    conc_unbound_mg_per_L : array_like
        Unbound plasma concentration, mg/L (>= 0).
    herg_ic50_mg_per_L : array_like
        hERG IC50, mg/L (> 0; ``inf`` for no block; NaN when unknown).
    hill : float or array_like
        Hill coefficient (> 0; 1 for simple 1:1 pore block).

    Returns
    -------
    numpy.ndarray
        Block fraction in [0, 1]; NaN where the IC50 is unknown and the concentration is > 0.
    """
    c = _float(conc_unbound_mg_per_L)
    ic50 = _float(herg_ic50_mg_per_L)
    h = _float(hill)
    _check_nonneg("conc_unbound_mg_per_L", c)
    if np.any(ic50 <= 0):
        raise SpecError("herg_ic50_mg_per_L", float(ic50[ic50 <= 0].flat[0]), "values > 0")
    if np.any(~(h > 0)):
        raise SpecError("hill", float(h[~(h > 0)].flat[0]), "values > 0")
    c, ic50, h = np.broadcast_arrays(c, ic50, h)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        b = 1.0 / (1.0 + (ic50 / c) ** h)  # c = 0 -> inf -> 0; ic50 = inf -> 0
    return np.where(c == 0, 0.0, b)


@dataclass(frozen=True)
class QTModel:
    """Parameters of the hERG block → QTc model, each with its source.

    Drug effect (placebo-corrected, ms), an Emax function of hERG block ``B`` at the unbound
    Cmax whose maximum scales with the patient's own baseline::

        ΔΔQTc_drug = emax_fraction_of_baseline · QTc0 · B / (block_half_max + B)

    Attributes
    ----------
    emax_fraction_of_baseline : float
        Maximal achievable drug-induced ΔQTc as a fraction of baseline QTc: 0.28, estimated
        for human (and dog) by the systems-pharmacology (operational) model of Gotta et al.
        2016, Pharmacol Res Perspect (PMID 28097003): "system-specific maximal achievable
        ΔQTc was estimated to 28 % from baseline".
    anchor_block_fraction, anchor_ddqtc_ms : float
        Calibration anchor for ``block_half_max``: 5 % hERG block gives 10 ms. Harmer & Rolf
        2024, Toxicol Appl Pharmacol 117135, doi:10.1016/j.taap.2024.117135, from 53 clinical
        concentration–QTc data sets: "~4–6 % hERG inhibition correlated with a 10 ms QTc
        prolongation, while ~10–13 % inhibition corresponded to a 20 ms prolongation". The
        midpoint 5 % is used; the 20 ms point is NOT used for calibration and is reproduced
        by the model (20 ms at 11 % block; checked in the tests).
    qtcf_mean_female_ms, qtcf_mean_male_ms, qtcf_sd_ms : float
        Baseline QTcF ~ Normal(mean by sex, sd). Mason et al. 2007, J Electrocardiol 40:228,
        doi:10.1016/j.jelectrocard.2006.09.003: in 46,129 subjects with very low probability
        of cardiovascular disease the QTcF 2nd–98th percentile range was 359–445 ms, i.e.
        mean 402 ms and SD 20.9 ms if normal. Splitting it into women 408 / men 396 ms with
        within-sex SD 20 ms (pooled SD sqrt(20² + 6²) = 20.9 ms) is a CALIBRATION CHOICE that
        reflects the well-known longer QTc of adult women; the paper reports marked sex
        differences but its per-sex numbers were not transcribed here. Age effects ignored.
    within_subject_sd_ms : float
        Within-subject SD of QTcF with triplicate ECGs at a time point in a thorough QT study:
        7.3 ms (Natekar et al. 2011, J Clin Pharmacol, doi:10.1177/0091270010376962;
        9.5 ms with single ECGs, 6.6 ms with six replicates).
    placebo_dqtc_mean_ms : float
        Mean placebo ΔQTc at the time of Cmax: 0 ms. CALIBRATION CHOICE (in TQT studies the
        placebo mean change is a few ms and depends on time of day).
    reference_qtc_ms : float
        Baseline QTcF at which the calibration anchor holds (402 ms, the Mason 2007 centre).
    """

    emax_fraction_of_baseline: float = 0.28
    anchor_block_fraction: float = 0.05
    anchor_ddqtc_ms: float = 10.0
    qtcf_mean_female_ms: float = 408.0
    qtcf_mean_male_ms: float = 396.0
    qtcf_sd_ms: float = 20.0
    within_subject_sd_ms: float = 7.3
    placebo_dqtc_mean_ms: float = 0.0
    reference_qtc_ms: float = 402.0

    def __post_init__(self):
        for name in (
            "emax_fraction_of_baseline",
            "anchor_block_fraction",
            "anchor_ddqtc_ms",
            "qtcf_mean_female_ms",
            "qtcf_mean_male_ms",
            "reference_qtc_ms",
        ):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise SpecError(f"qt_model.{name}", v, "a finite value > 0")
        for name in ("qtcf_sd_ms", "within_subject_sd_ms"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise SpecError(f"qt_model.{name}", v, "a finite value >= 0")
        if not np.isfinite(self.placebo_dqtc_mean_ms):
            raise SpecError("qt_model.placebo_dqtc_mean_ms", self.placebo_dqtc_mean_ms, "finite")
        if not self.anchor_block_fraction < 1:
            raise SpecError("qt_model.anchor_block_fraction", self.anchor_block_fraction, "< 1")
        if self.block_half_max <= 0:
            raise SpecError(
                "qt_model.anchor_ddqtc_ms",
                self.anchor_ddqtc_ms,
                "below emax_fraction_of_baseline * reference_qtc_ms (the maximal effect)",
            )

    @property
    def emax_reference_ms(self) -> float:
        """Maximal drug effect (ms) for a patient at the reference baseline."""
        return self.emax_fraction_of_baseline * self.reference_qtc_ms

    @property
    def block_half_max(self) -> float:
        """hERG block fraction giving half the maximal ΔΔQTc, solved from the anchor.

        ``anchor_ddqtc = emax_ref · B_a / (B50 + B_a)``  ⇒  ``B50 = B_a (emax_ref / anchor - 1)``
        (0.513 with the defaults).
        """
        b = self.anchor_block_fraction
        return b * (self.emax_reference_ms / self.anchor_ddqtc_ms - 1.0)

    @property
    def residual_sd_ms(self) -> float:
        """SD of one patient's ΔQTc (on-treatment minus baseline, two triplicate means):
        ``sqrt(2) · within_subject_sd_ms`` (10.3 ms with the defaults)."""
        return float(np.sqrt(2.0) * self.within_subject_sd_ms)

    def ddqtc_drug_ms(self, block_fraction, qtc_baseline_ms=None) -> np.ndarray:
        """Deterministic placebo-corrected drug effect (ms) at hERG block ``block_fraction``.

        ``qtc_baseline_ms`` defaults to :attr:`reference_qtc_ms`.
        """
        b = _float(block_fraction)
        q0 = self.reference_qtc_ms if qtc_baseline_ms is None else _float(qtc_baseline_ms)
        return self.emax_fraction_of_baseline * q0 * b / (self.block_half_max + b)


def _female(sex) -> np.ndarray:
    """Boolean array, True for ``"F"``; anything but ``"F"``/``"M"`` is a SpecError."""
    s = np.asarray(sex, dtype=object)
    female = s == "F"
    male = s == "M"
    bad = ~(female | male)
    if np.any(bad):
        values = sorted({repr(v) for v in s[bad].ravel()[:1000]})[:5]
        raise SpecError("sex", ", ".join(values), "'F' or 'M' (as in sample_cohort's 'sex')")
    return np.asarray(female, dtype=bool)


def qt_outcomes(
    cmax_unbound_mg_per_L,
    herg_ic50_mg_per_L,
    sex,
    z_baseline,
    z_residual,
    model: QTModel | None = None,
    *,
    hill=1.0,
) -> dict[str, np.ndarray]:
    """Per-patient QTc outcomes from hERG block at the unbound peak concentration.

    Direct (no hysteresis) effect of hERG block at the unbound Cmax (see :class:`QTModel` for
    the equations and sources), plus per-patient baseline QTcF and measurement/within-subject
    residual. A placebo arm passes ``cmax_unbound_mg_per_L = 0``: the drug effect is then
    exactly 0 and events come from the baseline spread and the residual only (with the
    defaults, per placebo patient: QTc > 450 ms about 2 %, > 480 ms about 4e-4, > 500 ms about
    1e-5; ΔQTc > 30 ms about 2e-3, > 60 ms about 3e-9).

    The on-treatment QTc is the one at the time of the unbound Cmax, where a direct hERG effect
    is largest, so "QTc above a threshold at any time on treatment" is read at that time.

    Parameters
    ----------
    cmax_unbound_mg_per_L : array_like, shape (n,)
        Unbound peak concentration ``fu · Cmax`` per patient, mg/L (>= 0).
    herg_ic50_mg_per_L : float or array_like
        hERG IC50 of the compound, mg/L (> 0, ``inf`` = no block, NaN = unknown).
    sex : array_like of str, shape (n,)
        ``"F"`` or ``"M"`` (the ``sex`` column of :func:`insilico.cohort.sample_cohort`;
        pandas Categoricals are accepted).
    z_baseline, z_residual : array_like, shape (n,)
        Standard-normal draws for the baseline QTcF and for the ΔQTc residual.
    model : QTModel, optional
        Parameters; default :class:`QTModel()`.
    hill : float
        Hill coefficient of the hERG concentration–block curve.

    Returns
    -------
    dict of str to numpy.ndarray, each of the broadcast shape
        ``herg_margin``, ``herg_margin_lt30`` (bool), ``herg_block_fraction``,
        ``ddqtc_drug_ms`` (deterministic drug effect), ``ddqtc_ms`` (drug effect plus
        residual, placebo-corrected), ``qtc_baseline_ms``, ``dqtc_ms`` (change from
        baseline), ``qtc_on_drug_ms``, the ICH E14 categorical endpoints as booleans
        ``qt_qtc_gt450``, ``qt_qtc_gt480``, ``qt_qtc_gt500`` (on-treatment QTc above the
        threshold), ``qt_dqtc_gt30``, ``qt_dqtc_gt60`` (ΔQTc above the threshold), and
        ``qt_evaluable`` (False where the hERG IC50 is unknown and the concentration is > 0;
        there the ms values are NaN and every event is False).
    """
    model = QTModel() if model is None else model
    c = _float(cmax_unbound_mg_per_L)
    ic50 = _float(herg_ic50_mg_per_L)
    female = _female(sex)
    zb = _float(z_baseline)
    zr = _float(z_residual)
    c, ic50, female, zb, zr = np.broadcast_arrays(c, ic50, female, zb, zr)

    margin = herg_margin(ic50, c)
    block = herg_block_fraction(c, ic50, hill)
    q0 = np.where(female, model.qtcf_mean_female_ms, model.qtcf_mean_male_ms)
    q0 = q0 + model.qtcf_sd_ms * zb
    drug = model.ddqtc_drug_ms(block, q0)
    ddqtc = drug + model.residual_sd_ms * zr
    dqtc = ddqtc + model.placebo_dqtc_mean_ms
    qtc = q0 + dqtc
    with np.errstate(invalid="ignore"):
        out = {
            "herg_margin": margin,
            "herg_margin_lt30": margin < HERG_MARGIN_FLAG,
            "herg_block_fraction": block,
            "ddqtc_drug_ms": drug,
            "ddqtc_ms": ddqtc,
            "qtc_baseline_ms": q0,
            "dqtc_ms": dqtc,
            "qtc_on_drug_ms": qtc,
        }
        for t in QTC_THRESHOLDS_MS:
            out[f"qt_qtc_gt{t:g}"] = qtc > t
        for t in DQTC_THRESHOLDS_MS:
            out[f"qt_dqtc_gt{t:g}"] = dqtc > t
    out["qt_evaluable"] = np.isfinite(block)
    return out


def logistic_probability(x, intercept, slope) -> np.ndarray:
    """Exposure–response probability ``expit(intercept + slope · x)``.

    The standard logistic-regression exposure–response model for a binary adverse event
    (FDA Guidance for Industry "Exposure-Response Relationships", 2003); its intercept and
    slope are declared in the trial protocol, not estimated here. ``x`` is the exposure metric
    the protocol declares (Cmax, AUC, Cavg, or a ratio such as Cmax_u / potency) in its own
    units; ``slope`` is per unit of ``x``. NaN in ``x`` gives NaN; large arguments cannot
    overflow (``scipy.special.expit``).
    """
    x = _float(x)
    with np.errstate(invalid="ignore"):
        return expit(_float(intercept) + _float(slope) * x)


def draw_events(probability, uniform) -> np.ndarray:
    """Bernoulli events from pre-drawn uniforms: ``uniform < probability``.

    Parameters
    ----------
    probability : array_like
        Per-patient probabilities in [0, 1] (NaN gives no event).
    uniform : array_like
        Uniform(0, 1) draws of the same (broadcastable) shape.
    """
    p = _float(probability)
    u = _float(uniform)
    if np.any((u < 0) | (u >= 1) | np.isnan(u)):
        raise SpecError("uniform", "values outside [0, 1)", "uniform draws in [0, 1)")
    with np.errstate(invalid="ignore"):
        return u < p


def exposure_response_events(x, intercept, slope, uniform) -> dict[str, np.ndarray]:
    """Probability and event of a protocol-declared logistic adverse event, per patient.

    Returns ``{"probability": expit(intercept + slope x), "event": uniform < probability}``.
    """
    p = logistic_probability(x, intercept, slope)
    return {"probability": p, "event": draw_events(p, uniform)}
