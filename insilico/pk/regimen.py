"""Dosing regimens: specs, the compact text form, and per-patient event tables.

A :class:`Regimen` is a tuple of :class:`DoseSeries` (``amount`` every ``interval_h`` for
``n_doses`` doses, starting at ``start_h``). :func:`parse_regimen` reads the compact text form::

    100 mg PO q12h x56
    10 mg/kg IV over 1 h q24h x7
    200 mg PO once then 100 mg PO q12h x13
    500 mg IV at 250 mg/h q12h x4
    100 mg PO q12h x14 ss

and :func:`build_event_table` turns a regimen into an :class:`EventTable`: event times shared by
a block of patients, with per-patient amounts (mg/kg doses scaled by body weight, missed doses
set to zero by the trial layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import NoReturn

import numpy as np

from insilico.errors import RegimenParseError, SpecError

#: Routes and the compartment they dose into.
EXTRAVASCULAR_ROUTES = ("po", "sc", "im")
ROUTES = ("iv", *EXTRAVASCULAR_ROUTES)

#: Event kinds in an :class:`EventTable`.
BOLUS_CENTRAL, BOLUS_DEPOT, INFUSION = 0, 1, 2

#: Most doses in one regimen (over all its series): 100,000 doses is 68 years of four
#: doses a day; every dose is an event per patient in the event table.
MAX_DOSES_PER_REGIMEN = 100_000

_INTERVAL_WORDS = {"qd": 24.0, "od": 24.0, "daily": 24.0, "bid": 12.0, "tid": 8.0, "qid": 6.0}


@dataclass(frozen=True)
class DoseSeries:
    """``n_doses`` doses of ``amount`` every ``interval_h`` from ``start_h``.

    Parameters
    ----------
    amount : float
        Dose in ``unit`` (``"mg"``, ``"mg/kg"`` of body weight or ``"mg/m2"`` of body
        surface area).
    route : str
        ``"iv"`` (into the central compartment) or extravascular ``"po"``, ``"sc"``, ``"im"``
        (into the absorption depot, with bioavailability and lag time).
    duration_h : float
        Infusion duration (IV only); 0 for a bolus.
    rate_mg_per_h : float or None
        Infusion rate instead of a duration (IV only; ``duration = amount / rate``).
    steady_state : bool
        The patient is at steady state on this series before its first dose (linear PK:
        solved exactly).
    """

    amount: float
    unit: str = "mg"
    route: str = "po"
    start_h: float = 0.0
    interval_h: float = 24.0
    n_doses: int = 1
    duration_h: float = 0.0
    rate_mg_per_h: float | None = None
    steady_state: bool = False

    def __post_init__(self):
        if not np.isfinite(self.amount) or self.amount < 0:
            raise SpecError("dose.amount", self.amount, "a finite dose >= 0")
        if self.unit not in ("mg", "mg/kg", "mg/m2"):
            raise SpecError("dose.unit", self.unit, "'mg', 'mg/kg' or 'mg/m2'")
        if self.route not in ROUTES:
            raise SpecError("dose.route", self.route, f"one of {list(ROUTES)}")
        if not np.isfinite(self.start_h) or self.start_h < 0:
            raise SpecError("dose.start_h", self.start_h, "a time >= 0 h")
        if not (self.interval_h > 0):
            raise SpecError("dose.interval_h", self.interval_h, "an interval > 0 h")
        if int(self.n_doses) != self.n_doses or not 1 <= self.n_doses <= MAX_DOSES_PER_REGIMEN:
            raise SpecError(
                "dose.n_doses", self.n_doses, f"a whole number from 1 to {MAX_DOSES_PER_REGIMEN}"
            )
        if self.duration_h < 0:
            raise SpecError("dose.duration_h", self.duration_h, "a duration >= 0 h")
        if self.rate_mg_per_h is not None and not (self.rate_mg_per_h > 0):
            raise SpecError("dose.rate_mg_per_h", self.rate_mg_per_h, "a rate > 0 mg/h")
        if (self.duration_h > 0 or self.rate_mg_per_h) and self.route != "iv":
            raise SpecError("dose.route", self.route, "'iv' for an infusion")
        if self.rate_mg_per_h and self.unit != "mg":
            raise SpecError(
                "dose.rate_mg_per_h",
                self.rate_mg_per_h,
                "a duration ('over 1 h') for mg/kg and mg/m2 doses",
            )

    def infusion_duration_h(self, amount_mg: float | None = None) -> float:
        """Infusion duration (h); 0 for a bolus."""
        if self.rate_mg_per_h:
            return float((self.amount if amount_mg is None else amount_mg) / self.rate_mg_per_h)
        return float(self.duration_h)

    @property
    def dose_times_h(self) -> np.ndarray:
        """Times of the doses (h)."""
        return self.start_h + self.interval_h * np.arange(self.n_doses)

    @property
    def end_h(self) -> float:
        """Time one interval after the last dose (h)."""
        return self.start_h + self.interval_h * self.n_doses


@dataclass(frozen=True)
class Regimen:
    """A dosing regimen: one or more dose series."""

    series: tuple[DoseSeries, ...]
    text: str = ""

    def __post_init__(self):
        if not self.series:
            raise SpecError("regimen", self.text or "()", "at least one dose")
        if sum(s.steady_state for s in self.series) > 1 or (
            any(s.steady_state for s in self.series[1:])
        ):
            raise SpecError("regimen", self.text, "'ss' only on the first dose series")
        if sum(s.n_doses for s in self.series) > MAX_DOSES_PER_REGIMEN:
            raise SpecError(
                "regimen", self.text, f"at most {MAX_DOSES_PER_REGIMEN} doses over all its series"
            )

    @property
    def end_h(self) -> float:
        """End of the last dosing interval (h)."""
        return max(s.end_h for s in self.series)

    @property
    def last_dose_h(self) -> float:
        """Time of the last dose (h)."""
        return max(float(s.dose_times_h[-1]) for s in self.series)

    @property
    def n_doses(self) -> int:
        """Number of doses given (over every series)."""
        return int(sum(s.n_doses for s in self.series))

    @property
    def is_single_dose(self) -> bool:
        """One dose in all, not at steady state (``100 mg PO once``): there is no dosing
        interval, and exposure is summarized by the AUC from 0 to infinity."""
        return self.n_doses == 1 and not any(s.steady_state for s in self.series)

    @property
    def last_interval_h(self) -> tuple[float, float]:
        """The last dosing interval ``(start_h, end_h)`` (for a single dose, the dose time and
        one ``interval_h``, 24 h by default, after it)."""
        last = max(self.series, key=lambda s: s.dose_times_h[-1])
        t = float(last.dose_times_h[-1])
        return t, t + last.interval_h

    def scaled(self, factor: float) -> Regimen:
        """The same regimen with every amount multiplied by ``factor`` (dose scans). Its text
        is the original's with only the amounts rewritten (in mg, or mg/kg and mg/m2 as
        written; ``g`` and ``ug`` doses become mg):

        >>> parse_regimen("0.05 g PO qd x7 then 25 mg PO bid x4").scaled(0.2).text
        '10 mg PO qd x7 then 5 mg PO bid x4'
        """
        if not (np.isfinite(factor) and factor > 0):
            raise SpecError("dose scale factor", factor, "a finite factor > 0")
        series = tuple(replace(s, amount=s.amount * factor) for s in self.series)
        if not self.text:
            return Regimen(series, "")
        tokens = [tok for tok, _ in _Tokens(self.text).items]
        for at, s in zip(_amount_positions(self.text), series, strict=True):
            tokens[at] = _number_text(s.amount)
            tokens[at + 1] = s.unit
        return Regimen(series, " ".join(tokens))


_TOKEN = re.compile(r"\S+")


class _Tokens:
    def __init__(self, text: str):
        self.text = text
        self.items = [(m.group(0), m.start()) for m in _TOKEN.finditer(text)]
        self.i = 0

    def peek(self) -> str | None:
        return self.items[self.i][0].lower() if self.i < len(self.items) else None

    def pos(self) -> int:
        return self.items[self.i][1] if self.i < len(self.items) else len(self.text)

    def take(self) -> str:
        tok = self.items[self.i][0]
        self.i += 1
        return tok

    def fail(self, allowed: str) -> NoReturn:
        tok = self.items[self.i][0] if self.i < len(self.items) else "<end>"
        raise RegimenParseError(self.text, self.pos(), tok, allowed)

    def number(self, what: str) -> float:
        tok = self.peek()
        try:
            value = float(tok) if tok is not None else None
        except ValueError:
            value = None
        if value is None or not np.isfinite(value):
            self.fail(what)
        self.take()
        return value


def _hours(tokens: _Tokens, what: str) -> float:
    """A duration: ``1 h``, ``1h``, ``30 min``, ``2 d``."""
    tok = tokens.peek()
    m = re.fullmatch(r"([0-9.]+(?:e[-+]?\d+)?)(h|min|d)?", tok or "")
    if not m:
        tokens.fail(what)
    value = float(m.group(1))
    unit = m.group(2)
    tokens.take()
    if unit is None:
        unit = tokens.peek() if tokens.peek() in ("h", "min", "d") else None
        if unit is None:
            tokens.fail("a time unit: h, min or d")
        tokens.take()
    return value * {"h": 1.0, "min": 1.0 / 60.0, "d": 24.0}[unit]


def _parse_series(tokens: _Tokens, start_h: float) -> tuple[DoseSeries, bool]:
    amount = tokens.number("a dose amount (e.g. 100)")
    if amount < 0:
        tokens.i -= 1
        tokens.fail("a dose amount >= 0")
    unit = tokens.peek()
    if unit == "mg/m²":
        unit = "mg/m2"
    if unit not in ("mg", "mg/kg", "mg/m2", "g", "ug", "mcg"):
        tokens.fail("a dose unit: mg, mg/kg, mg/m2, g, ug")
    tokens.take()
    if unit == "g":
        amount, unit = amount * 1000.0, "mg"
    elif unit in ("ug", "mcg"):
        amount, unit = amount / 1000.0, "mg"
    route = tokens.peek()
    if route not in ROUTES:
        tokens.fail("a route: PO, IV, SC or IM")
    at_route = tokens.i
    tokens.take()
    duration_h, rate = 0.0, None
    if tokens.peek() == "over":
        tokens.take()
        at_duration = tokens.i
        duration_h = _hours(tokens, "an infusion duration (e.g. 1 h)")
        if duration_h <= 0:
            tokens.i = at_duration
            tokens.fail("an infusion duration > 0")
    elif tokens.peek() == "at":
        tokens.take()
        rate = tokens.number("an infusion rate (e.g. 50 mg/h)")
        if tokens.peek() != "mg/h":
            tokens.fail("the rate unit mg/h")
        tokens.take()
    if (duration_h or rate) and route != "iv":
        tokens.i = at_route
        tokens.fail("IV for an infusion ('over ...' or 'at ... mg/h')")
    interval, n_doses, once = None, 1, False
    tok = tokens.peek()
    q = re.fullmatch(r"q([0-9.]+)(h|d)?", tok) if tok is not None else None
    if tok == "once":
        tokens.take()
        once = True
    elif tok is not None and (tok in _INTERVAL_WORDS or q is not None):
        tokens.take()
        if tok in _INTERVAL_WORDS:
            interval = _INTERVAL_WORDS[tok]
        elif q is not None:
            try:
                interval = float(q.group(1)) * (24.0 if q.group(2) == "d" else 1.0)
            except ValueError:
                tokens.i -= 1
                tokens.fail("a dosing interval like q12h")
            if interval <= 0:
                tokens.i -= 1
                tokens.fail("a dosing interval > 0")
        count = tokens.peek()
        if count is not None and re.fullmatch(r"x[0-9]+", count):
            n_doses = int(tokens.take()[1:])
            if not 1 <= n_doses <= MAX_DOSES_PER_REGIMEN:
                tokens.i -= 1
                tokens.fail(f"a number of doses from 1 to {MAX_DOSES_PER_REGIMEN} (e.g. x14)")
        else:
            # 'q12h' alone would silently mean one dose: the count must be written
            tokens.fail("a number of doses like x14 after the interval")
    elif tok not in (None, "then"):
        tokens.fail("'once', an interval like q12h/bid/qd, or 'then'")
    steady = False
    if tokens.peek() == "ss":
        tokens.take()
        steady = True
    series = DoseSeries(
        amount=amount,
        unit=unit,
        route=route,
        start_h=start_h,
        interval_h=interval if interval is not None else 24.0,
        n_doses=n_doses,
        duration_h=duration_h,
        rate_mg_per_h=rate,
        steady_state=steady,
    )
    return series, once or interval is None


def _number_text(x: float) -> str:
    """The shortest text that reads back as ``x`` (``100``, not ``100.0``)."""
    out = repr(float(x))
    return out[:-2] if out.endswith(".0") else out


def _amount_positions(text: str) -> list[int]:
    """Token index of each dose series' amount in a valid regimen text (its unit follows)."""
    tokens = _Tokens(text)
    out = []
    while True:
        out.append(tokens.i)
        _parse_series(tokens, 0.0)
        if tokens.peek() is None:
            return out
        tokens.take()  # 'then'


def parse_regimen(text: str) -> Regimen:
    """Parse the compact regimen text form into a :class:`Regimen`.

    Segments are joined by ``then``; each segment is ``AMOUNT UNIT ROUTE [over DUR h | at RATE
    mg/h] [once | qNh | qd | bid | tid | qid] [xN] [ss]``. A segment after a ``once`` dose starts
    one interval of the following segment later; otherwise a segment starts where the previous
    one's last interval ends.

    Raises
    ------
    RegimenParseError
        Pointing at the offending token, with what was expected there.
    """
    if not isinstance(text, str) or not text.strip():
        raise RegimenParseError(str(text), 0, str(text), "a regimen like '100 mg PO q12h x14'")
    tokens = _Tokens(text)
    raw: list[tuple[DoseSeries, bool]] = []
    while True:
        raw.append(_parse_series(tokens, 0.0))
        if tokens.peek() is None:
            break
        if tokens.peek() != "then":
            tokens.fail("'then' or the end of the regimen")
        tokens.take()
        if tokens.peek() is None:
            tokens.fail("a dose after 'then'")
    # place the segments in time
    series: list[DoseSeries] = []
    t = 0.0
    for k, (s, once) in enumerate(raw):
        if once:
            nxt = raw[k + 1][0].interval_h if k + 1 < len(raw) else s.interval_h
            s = replace(s, interval_h=nxt)
        s = replace(s, start_h=t)
        series.append(s)
        t = s.end_h
    return Regimen(tuple(series), text.strip())


@dataclass(frozen=True)
class EventTable:
    """Dosing events shared in time by a block of patients, with per-patient amounts.

    Attributes
    ----------
    time_h : ndarray, shape (n_events,)
        Event times (h), non-decreasing.
    kind : ndarray of int8, shape (n_events,)
        ``BOLUS_CENTRAL`` (IV bolus), ``BOLUS_DEPOT`` (extravascular: enters the depot after the
        patient's lag time, scaled by bioavailability) or ``INFUSION`` (IV, zero order).
    amount_mg : ndarray, shape (n_patients, n_events)
        Amount of each event for each patient (mg); 0 where a patient has no such event.
    duration_h : ndarray, shape (n_events,)
        Infusion duration (h); 0 for boluses.
    steady_state_interval_h : float
        If > 0, patients are at steady state of the first ``n_ss_events`` events repeated every
        ``steady_state_interval_h`` before ``time_h[0]``.
    """

    time_h: np.ndarray
    kind: np.ndarray
    amount_mg: np.ndarray
    duration_h: np.ndarray
    steady_state_interval_h: float = 0.0
    n_ss_events: int = 0
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        n_ev = self.time_h.shape[0]
        if self.amount_mg.ndim != 2 or self.amount_mg.shape[1] != n_ev:
            raise SpecError("events.amount_mg", self.amount_mg.shape, f"shape (n, {n_ev})")
        if np.any(np.diff(self.time_h) < 0):
            raise SpecError("events.time_h", "unsorted", "non-decreasing times")
        if np.any(~np.isfinite(self.amount_mg)) or np.any(self.amount_mg < 0):
            raise SpecError("events.amount_mg", "negative or non-finite", "amounts >= 0 mg")

    @property
    def n_patients(self) -> int:
        return self.amount_mg.shape[0]

    def take(self, index) -> EventTable:
        """Events of a subset of patients."""
        return replace(self, amount_mg=self.amount_mg[index])

    def with_amount_factor(self, factor: np.ndarray) -> EventTable:
        """Multiply amounts by a per-patient-per-event factor (0 = missed dose)."""
        return replace(self, amount_mg=self.amount_mg * factor)

    def total_dose_mg(self) -> np.ndarray:
        """Total amount given per patient (mg), not counting bioavailability."""
        return self.amount_mg.sum(axis=1)

    @staticmethod
    def from_patient_events(events: list[list[tuple]]) -> EventTable:
        """Build a table from per-patient lists of ``(time_h, amount_mg, route[, duration_h])``.

        Times differ between patients: the table holds the union of ``(time, route, duration)``
        and each patient has a zero amount where it has no event.
        """
        keys = sorted(
            {(float(e[0]), e[2], float(e[3]) if len(e) > 3 else 0.0) for pe in events for e in pe}
        )
        index = {k: j for j, k in enumerate(keys)}
        amount = np.zeros((len(events), len(keys)))
        for i, pe in enumerate(events):
            for e in pe:
                if e[2] not in ROUTES:
                    raise SpecError("events.route", e[2], f"one of {list(ROUTES)}")
                key = (float(e[0]), e[2], float(e[3]) if len(e) > 3 else 0.0)
                amount[i, index[key]] += float(e[1])
        time = np.array([k[0] for k in keys], dtype=float)
        kind = np.array([_event_kind(k[1], k[2]) for k in keys], dtype=np.int8)
        dur = np.array([k[2] for k in keys], dtype=float)
        return EventTable(time, kind, amount, dur)


def _event_kind(route: str, duration_h: float) -> int:
    if route == "iv":
        return INFUSION if duration_h > 0 else BOLUS_CENTRAL
    return BOLUS_DEPOT


def build_event_table(
    regimen: Regimen | str,
    n_patients: int = 1,
    weight_kg: np.ndarray | None = None,
    bsa_m2: np.ndarray | None = None,
) -> EventTable:
    """Event table of a regimen for ``n_patients`` patients.

    Parameters
    ----------
    regimen : Regimen or str
        The regimen (text is parsed with :func:`parse_regimen`).
    n_patients : int
        Number of patients (rows of ``amount_mg``).
    weight_kg : ndarray, shape (n_patients,), optional
        Body weights; required when a dose is in mg/kg.
    bsa_m2 : ndarray, shape (n_patients,), optional
        Body surface areas (m²); required when a dose is in mg/m2.
    """
    if isinstance(regimen, str):
        regimen = parse_regimen(regimen)
    if weight_kg is not None:
        weight_kg = np.asarray(weight_kg, dtype=float).reshape(-1)
        n_patients = weight_kg.shape[0]
    if bsa_m2 is not None:
        bsa_m2 = np.asarray(bsa_m2, dtype=float).reshape(-1)
        n_patients = bsa_m2.shape[0]
    times, kinds, amounts, durations = [], [], [], []
    ss_interval, n_ss = 0.0, 0
    for s in regimen.series:
        if s.unit == "mg/kg":
            if weight_kg is None:
                raise SpecError("weight_kg", None, "body weights for a mg/kg dose")
            per_patient = s.amount * weight_kg
        elif s.unit == "mg/m2":
            if bsa_m2 is None:
                raise SpecError("bsa_m2", None, "body surface areas for a mg/m2 dose")
            per_patient = s.amount * bsa_m2
        else:
            per_patient = np.full(n_patients, s.amount)
        for t in s.dose_times_h:
            times.append(float(t))
            kinds.append(_event_kind(s.route, s.infusion_duration_h()))
            amounts.append(per_patient)
            durations.append(s.infusion_duration_h())
        if s.steady_state:
            ss_interval, n_ss = s.interval_h, 1
    order = np.argsort(np.asarray(times), kind="stable")
    if n_ss:
        # steady state refers to the first event of the first series, which stays first
        n_ss = 1
    amount = np.column_stack([amounts[j] for j in order]) if times else np.zeros((n_patients, 0))
    if weight_kg is None and bsa_m2 is None and n_patients != amount.shape[0]:
        amount = np.broadcast_to(amount, (n_patients, amount.shape[1])).copy()
    return EventTable(
        time_h=np.asarray(times, dtype=float)[order],
        kind=np.asarray(kinds, dtype=np.int8)[order],
        amount_mg=np.ascontiguousarray(amount, dtype=float),
        duration_h=np.asarray(durations, dtype=float)[order],
        steady_state_interval_h=ss_interval,
        n_ss_events=n_ss,
        meta={"regimen": regimen.text},
    )
