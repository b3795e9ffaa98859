"""Dosing regimens: the compact text form, event tables, validation."""

from __future__ import annotations

import numpy as np
import pytest

from insilico.errors import RegimenParseError, SpecError
from insilico.pk.regimen import (
    BOLUS_CENTRAL,
    BOLUS_DEPOT,
    INFUSION,
    DoseSeries,
    EventTable,
    Regimen,
    build_event_table,
    parse_regimen,
)

# --- documented text forms -------------------------------------------------------------


def test_oral_q12h_x56():
    ev = build_event_table("100 mg PO q12h x56", 3)
    np.testing.assert_array_equal(ev.time_h, 12.0 * np.arange(56))
    assert ev.time_h[-1] == 660.0
    assert np.all(ev.kind == BOLUS_DEPOT)
    assert ev.amount_mg.shape == (3, 56)
    np.testing.assert_array_equal(ev.amount_mg, 100.0)
    np.testing.assert_array_equal(ev.duration_h, 0.0)
    assert ev.steady_state_interval_h == 0.0
    r = parse_regimen("100 mg PO q12h x56")
    assert r.last_interval_h == (660.0, 672.0)
    assert r.end_h == 672.0


def test_mg_per_kg_infusion_scales_with_weight():
    w = np.array([50.0, 70.0, 123.4])
    ev = build_event_table("10 mg/kg IV over 1 h q24h x7", weight_kg=w)
    np.testing.assert_array_equal(ev.time_h, 24.0 * np.arange(7))
    assert np.all(ev.kind == INFUSION)
    np.testing.assert_array_equal(ev.duration_h, 1.0)
    np.testing.assert_allclose(ev.amount_mg, np.repeat(10.0 * w[:, None], 7, axis=1), rtol=0)
    assert ev.n_patients == 3


def test_mg_per_kg_needs_weights():
    with pytest.raises(SpecError) as info:
        build_event_table("10 mg/kg IV over 1 h q24h x7", 2)
    assert info.value.field == "weight_kg"


def test_loading_dose_then_maintenance():
    ev = build_event_table("200 mg PO once then 100 mg PO q12h x13", 2)
    np.testing.assert_array_equal(ev.time_h, 12.0 * np.arange(14))
    np.testing.assert_array_equal(ev.amount_mg[:, 0], 200.0)
    np.testing.assert_array_equal(ev.amount_mg[:, 1:], 100.0)
    assert np.all(ev.kind == BOLUS_DEPOT)
    np.testing.assert_array_equal(ev.total_dose_mg(), 200.0 + 13 * 100.0)


def test_iv_bolus_and_rate_form_and_units():
    ev = build_event_table("500 mg IV at 250 mg/h q12h x4", 1)
    assert np.all(ev.kind == INFUSION)
    np.testing.assert_array_equal(ev.duration_h, 2.0)  # 500 mg / 250 mg/h
    np.testing.assert_array_equal(ev.time_h, [0.0, 12.0, 24.0, 36.0])
    ev = build_event_table("1 g IV over 30 min bid x2", 1)
    np.testing.assert_array_equal(ev.amount_mg, 1000.0)
    np.testing.assert_array_equal(ev.duration_h, 0.5)
    np.testing.assert_array_equal(ev.time_h, [0.0, 12.0])
    ev = build_event_table("250 ug IV q8h x3", 1)
    assert np.all(ev.kind == BOLUS_CENTRAL)
    np.testing.assert_allclose(ev.amount_mg, 0.25, rtol=1e-15)
    np.testing.assert_array_equal(ev.time_h, [0.0, 8.0, 16.0])


@pytest.mark.parametrize(
    ("text", "interval"), [("qd", 24.0), ("bid", 12.0), ("tid", 8.0), ("qid", 6.0), ("q2d", 48.0)]
)
def test_interval_words(text, interval):
    ev = build_event_table(f"5 mg SC {text} x3", 1)
    np.testing.assert_array_equal(ev.time_h, interval * np.arange(3))
    assert np.all(ev.kind == BOLUS_DEPOT)


def test_case_insensitive():
    a = build_event_table("100 MG po Q12H X3", 1)
    b = build_event_table("100 mg PO q12h x3", 1)
    np.testing.assert_array_equal(a.time_h, b.time_h)
    np.testing.assert_array_equal(a.amount_mg, b.amount_mg)


def test_steady_state_flag():
    r = parse_regimen("100 mg PO q12h x14 ss")
    assert r.series[0].steady_state
    ev = build_event_table(r, 1)
    assert ev.steady_state_interval_h == 12.0
    assert ev.n_ss_events == 1


def test_same_events_from_text_and_from_specs():
    text = build_event_table("200 mg PO once then 100 mg PO q12h x13", 1)
    spec = build_event_table(
        Regimen(
            (
                DoseSeries(200.0, route="po", interval_h=12.0, n_doses=1),
                DoseSeries(100.0, route="po", start_h=12.0, interval_h=12.0, n_doses=13),
            )
        ),
        1,
    )
    np.testing.assert_array_equal(text.time_h, spec.time_h)
    np.testing.assert_array_equal(text.amount_mg, spec.amount_mg)
    np.testing.assert_array_equal(text.kind, spec.kind)


def test_per_patient_event_lists():
    ev = EventTable.from_patient_events(
        [
            [(0.0, 100.0, "po"), (12.0, 100.0, "po")],
            [(0.0, 50.0, "iv", 2.0), (6.0, 25.0, "iv")],
        ]
    )
    # union of (time, route, duration): 0 iv-infusion, 0 po, 6 iv-bolus, 12 po
    assert ev.n_patients == 2
    assert ev.time_h.tolist() == [0.0, 0.0, 6.0, 12.0]
    keys = zip(ev.time_h.tolist(), ev.duration_h.tolist(), strict=True)
    kinds = dict(zip(keys, ev.kind.tolist(), strict=True))
    assert kinds[(0.0, 2.0)] == INFUSION and kinds[(6.0, 0.0)] == BOLUS_CENTRAL
    np.testing.assert_array_equal(ev.total_dose_mg(), [200.0, 75.0])
    assert np.count_nonzero(ev.amount_mg[0]) == 2 and np.count_nonzero(ev.amount_mg[1]) == 2


def test_missed_doses_by_factor():
    ev = build_event_table("100 mg PO q12h x4", 2)
    factor = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], dtype=float)
    missed = ev.with_amount_factor(factor)
    np.testing.assert_array_equal(missed.total_dose_mg(), [300.0, 300.0])
    np.testing.assert_array_equal(ev.total_dose_mg(), [400.0, 400.0])  # input not mutated


# --- malformed text: the error points at the offending token -------------------------------


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("100 mg PO q12h x56 extra", 19, "extra"),
        ("100 mg XX q12h x3", 7, "XX"),
        ("100 kg PO q12h x3", 4, "kg"),
        ("abc mg PO q12h x3", 0, "abc"),
        ("-100 mg PO q12h x3", 0, "-100"),  # negative dose
        ("100 mg PO q0h x3", 10, "q0h"),  # zero interval
        ("100 mg PO q12h x0", 15, "x0"),
        ("100 mg PO q12h 56", 15, "56"),
        ("100 mg PO qxh x2", 10, "qxh"),
        ("100 mg IV over 1 q12h x2", 17, "q12h"),  # duration without a unit
        ("100 mg PO q12h x3 then", 22, "<end>"),
    ],
)
def test_parse_error_points_at_token(text, position, token):
    with pytest.raises(RegimenParseError) as info:
        parse_regimen(text)
    err = info.value
    assert (err.position, err.token) == (position, token)
    assert isinstance(err, SpecError)
    # the message shows the text and a caret under the token
    lines = str(err).splitlines()
    assert lines[1].strip() == text
    assert lines[2].index("^") - 2 == position


def test_parse_error_infusion_on_oral_route_points_at_route():
    with pytest.raises(RegimenParseError) as info:
        parse_regimen("100 mg PO over 1 h q12h x3")
    assert (info.value.position, info.value.token) == (7, "PO")


def test_parse_error_zero_infusion_duration_points_at_number():
    with pytest.raises(RegimenParseError) as info:
        parse_regimen("100 mg IV over 0 h q12h x2")
    assert (info.value.position, info.value.token) == (15, "0")


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_text_rejected(text):
    with pytest.raises(RegimenParseError):
        parse_regimen(text)


# --- validation of specs -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"amount": -1.0}, "dose.amount"),
        ({"amount": float("nan")}, "dose.amount"),
        ({"amount": 1.0, "interval_h": 0.0}, "dose.interval_h"),
        ({"amount": 1.0, "interval_h": -12.0}, "dose.interval_h"),
        ({"amount": 1.0, "n_doses": 0}, "dose.n_doses"),
        ({"amount": 1.0, "n_doses": 2.5}, "dose.n_doses"),
        ({"amount": 1.0, "route": "po", "duration_h": 1.0}, "dose.route"),
        ({"amount": 1.0, "route": "iv", "duration_h": -1.0}, "dose.duration_h"),
        ({"amount": 1.0, "unit": "mg/lb"}, "dose.unit"),
        ({"amount": 1.0, "route": "nasal"}, "dose.route"),
        ({"amount": 1.0, "start_h": -1.0}, "dose.start_h"),
    ],
)
def test_dose_series_rejects(kwargs, field):
    with pytest.raises(SpecError) as info:
        DoseSeries(**kwargs)
    assert info.value.field == field


def test_zero_dose_is_allowed():
    ev = build_event_table("0 mg IV q12h x3", 2)
    np.testing.assert_array_equal(ev.amount_mg, 0.0)


def test_event_table_rejects_negative_amounts_and_unsorted_times():
    with pytest.raises(SpecError):
        EventTable(np.array([0.0]), np.array([0], np.int8), np.array([[-1.0]]), np.zeros(1))
    with pytest.raises(SpecError):
        EventTable(np.array([1.0, 0.0]), np.zeros(2, np.int8), np.ones((1, 2)), np.zeros(2))
    with pytest.raises(SpecError):
        EventTable(np.array([0.0]), np.zeros(1, np.int8), np.ones((1, 2)), np.zeros(1))


def test_ss_only_on_first_series():
    with pytest.raises(SpecError):
        parse_regimen("200 mg PO once then 100 mg PO q12h x13 ss")


def test_doses_per_body_surface_area():
    from insilico.pk.regimen import build_event_table, parse_regimen

    reg = parse_regimen("75 mg/m2 IV over 1 h q21d x3")
    assert reg.series[0].unit == "mg/m2"
    assert parse_regimen("75 mg/m² IV over 1 h q21d x3").series[0].unit == "mg/m2"
    events = build_event_table(reg, bsa_m2=np.array([1.6, 2.0]))
    np.testing.assert_allclose(events.amount_mg[:, 0], [120.0, 150.0])
    with pytest.raises(SpecError, match="bsa_m2"):
        build_event_table(reg, n_patients=2)


@pytest.mark.parametrize(
    ("text", "factor", "want"),
    [
        ("0.05 g PO qd x7", 0.2, "10 mg PO qd x7"),
        ("500 ug PO bid x4", 3.0, "1.5 mg PO bid x4"),
        ("200 mg PO once then 100 mg PO q12h x13", 0.25, "50 mg PO once then 25 mg PO q12h x13"),
        ("2 mg/kg IV over 1 h q12h x4", 1.5, "3 mg/kg IV over 1 h q12h x4"),
        ("100 mg IV at 50 mg/h q24h x2", 0.3, "30 mg IV at 50 mg/h q24h x2"),
        ("75 mg/m² IV over 1 h q21d x3", 2.0, "150 mg/m2 IV over 1 h q21d x3"),
    ],
)
def test_scaled_regimen_keeps_its_text_and_rescales_only_the_amounts(text, factor, want):
    """Dose scans scale the parsed regimen: every unit the parser reads (g, ug, mg/kg, mg/m2)
    scales, the rate of an 'at ... mg/h' infusion does not, and the new text reads back as the
    scaled regimen."""
    scaled = parse_regimen(text).scaled(factor)
    assert scaled.text == want
    assert parse_regimen(scaled.text).series == scaled.series
    with pytest.raises(SpecError):
        parse_regimen(text).scaled(0.0)
