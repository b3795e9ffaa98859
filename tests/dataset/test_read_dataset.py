"""Reading NONMEM-format datasets: the shared reference files, defaults and every rule."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insilico.dataset import STANDARD_COLUMNS, Dataset, dataset_from_frame, read_dataset
from insilico.errors import DatasetError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
HEADER = "ID,TIME,EVID,AMT,RATE,CMT,SS,II,ADDL,MDV,DV"


@pytest.fixture(scope="module")
def shared_data() -> Path:
    """The shared reference-data folder; skip when it is absent."""
    if not (DATA / "nonmem_event_reference_nmtest.csv").is_file():
        pytest.skip(f"shared reference data not found at {DATA} (../shared/data beside the repo)")
    return DATA


def write_csv(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def records(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def expect_error(path: Path, row: int | None, column: str, value: str, **kwargs) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        read_dataset(path, **kwargs)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    if row is not None:
        assert f"row {row}, " in message, message
        assert caught.value.row == row
    assert f"{column}: " in message, message
    assert value in message, message
    return caught.value


# ---------------------------------------------------------------- shared reference data


@pytest.mark.parametrize(
    ("name", "subjects", "records_", "require_dv"),
    [
        ("nonmem_event_reference_nmtest.csv", 54, 7157, False),
        ("clinical_theophylline_multiple_dose_theo_md.csv", 12, 348, True),
        ("clinical_phenobarbital_neonates_pheno_sd.csv", 59, 744, True),
        ("estimation_acop2016_oral_1cpt.csv", 120, 7920, True),
        ("simulated_myelosuppression_friberg_wbcsim.csv", 45, 228, True),
    ],
)
def test_shared_datasets_read(shared_data, name, subjects, records_, require_dv):
    path = shared_data / name
    dataset = read_dataset(path, require_dv=require_dv)
    raw_text = pd.read_csv(path, dtype=str, keep_default_na=False)

    assert isinstance(dataset, Dataset)
    assert dataset.source == str(path)
    assert dataset.subjects() == subjects
    assert len(dataset.table) == len(dataset.raw) == records_
    # Individuals counted as contiguous runs of ID, as NONMEM does.
    ids = raw_text.iloc[:, 0].astype(float).to_numpy()
    assert 1 + np.count_nonzero(ids[1:] != ids[:-1]) == subjects
    # The raw frame is the file's text, names and order untouched.
    assert list(dataset.raw.columns) == list(raw_text.columns)
    pd.testing.assert_frame_equal(
        dataset.raw.astype(object), raw_text.astype(object), check_dtype=False
    )
    assert list(dataset.table.columns[: len(STANDARD_COLUMNS)]) == list(STANDARD_COLUMNS)
    assert dataset.table["ROW"].tolist() == list(range(records_))
    assert dataset.table[list(STANDARD_COLUMNS)].dtypes.eq(np.float64).all()


def test_nmtest_lower_case_columns_and_event_types(shared_data):
    dataset = read_dataset(shared_data / "nonmem_event_reference_nmtest.csv", require_dv=False)
    table = dataset.table
    file = pd.read_csv(shared_data / "nonmem_event_reference_nmtest.csv")
    assert list(dataset.raw.columns[:3]) == ["id", "time", "cp"]
    np.testing.assert_array_equal(table["EVID"], file["evid"])
    np.testing.assert_array_equal(table["RATE"], file["rate"])
    np.testing.assert_array_equal(table["ADDL"], file["addl"])
    assert set(table["EVID"]) == {0.0, 1.0, 3.0, 4.0}
    # No DV column: every record is a prediction-only record.
    assert table["DV"].isna().all()
    assert (table["MDV"] == 1).all()
    # Non-standard columns are kept under their own (lower-case) names.
    np.testing.assert_array_equal(table["cp"], file["cp"])
    assert "dur2" in table.columns


def test_theo_md_values_and_compartments(shared_data):
    path = shared_data / "clinical_theophylline_multiple_dose_theo_md.csv"
    dataset = read_dataset(path, compartments={1: "depot", 2: "central"})
    table = dataset.table
    file = pd.read_csv(path)
    np.testing.assert_array_equal(table["AMT"], file["AMT"])
    np.testing.assert_array_equal(table["MDV"], file["MDV"])
    assert table.loc[table["EVID"] == 1, "CMT"].eq(1).all()
    with pytest.raises(DatasetError, match=r"row 2, CMT: got '1'; allowed: .*2 \(central\)"):
        read_dataset(path, compartments={2: "central"})


# ---------------------------------------------------------------- defaults


def test_minimal_columns_get_nonmem_defaults(tmp_path):
    path = write_csv(tmp_path, "id,time,amt,dv\n1,0,100,.\n1,1,.,5.5\n1,2,0,\n")
    table = read_dataset(path).table
    assert table["EVID"].tolist() == [1, 0, 0]
    assert table["MDV"].tolist() == [1, 0, 1]
    assert table["AMT"].tolist() == [100, 0, 0]
    for item in ("RATE", "SS", "II", "ADDL"):
        assert table[item].tolist() == [0, 0, 0]
    assert table["CMT"].isna().all()
    assert table["DV"].iloc[1] == 5.5
    assert np.isnan(table["DV"].iloc[[0, 2]]).all()


def test_evid_without_amt_column_is_observation(tmp_path):
    path = write_csv(tmp_path, "ID,TIME,DV\n1,0,1\n1,1,2\n")
    table = read_dataset(path).table
    assert table["EVID"].tolist() == [0, 0]
    assert table["MDV"].tolist() == [0, 0]


def test_mdv_kept_when_given_and_forced_on_events(tmp_path):
    path = write_csv(
        tmp_path,
        records(
            "1,0,1,100,0,1,0,0,0,0,.",  # dose with MDV 0: NONMEM sets MDV to 1
            "1,1,0,0,0,2,0,0,0,1,3.5",  # observation kept out of the fit
            "1,2,0,0,0,2,0,0,0,0,4.5",
            "1,3,0,0,0,2,0,0,0,.,.",  # no DV: not an observation to fit
        ),
    )
    table = read_dataset(path).table
    assert table["MDV"].tolist() == [1, 1, 0, 1]


def test_steady_state_constant_infusion_needs_no_amount(tmp_path):
    path = write_csv(tmp_path, records("1,0,1,0,10,2,1,0,0,1,.", "1,5,0,0,0,2,0,0,0,0,3"))
    table = read_dataset(path).table
    assert table["EVID"].tolist() == [1, 0]
    # Without an EVID column the same record is still a dose.
    path = write_csv(tmp_path, "ID,TIME,AMT,RATE,SS,DV\n1,0,0,10,1,.\n1,5,0,0,0,3\n", "b.csv")
    assert read_dataset(path).table["EVID"].tolist() == [1, 0]


def test_individuals_are_contiguous_runs_of_id(tmp_path):
    path = write_csv(tmp_path, "ID,TIME,DV\n1,0,1\n1,1,1\n2,0,1\n1,0,1\n1,4,1\n")
    dataset = read_dataset(path)
    assert dataset.table["SUBJECT"].tolist() == [0, 0, 1, 2, 2]
    assert dataset.subjects() == 3


def test_covariates_carried_forward_then_backward_within_individual(tmp_path):
    text = "ID,TIME,DV,WT,CRCL,SEX\n"
    text += "1,0,.,.,.,M\n1,1,1,70,.,M\n1,2,2,.,.,M\n1,3,3,72,.,M\n1,4,4,.,.,M\n"
    text += "2,0,.,.,90,F\n2,1,1,.,.,F\n2,2,2,55,.,F\n"
    table = read_dataset(write_csv(tmp_path, text)).table
    assert table["WT"].tolist() == [70, 70, 70, 72, 72, 55, 55, 55]
    assert table["CRCL"].iloc[5:].tolist() == [90, 90, 90]
    # Never filled across individuals; an all-missing individual stays missing.
    assert table["CRCL"].iloc[:5].isna().all()
    # DV is never filled; text columns stay text.
    assert table["DV"].isna().tolist() == [True, False, False, False, False, True, False, False]
    assert table["SEX"].tolist() == ["M"] * 5 + ["F"] * 3


def test_time_may_restart_after_reset(tmp_path):
    path = write_csv(
        tmp_path,
        records(
            "1,0,1,100,0,1,0,0,0,1,.",
            "1,10,0,0,0,2,0,0,0,0,3",
            "1,0,4,100,0,1,0,0,0,1,.",
            "1,5,0,0,0,2,0,0,0,0,4",
            "1,2,3,0,0,.,0,0,0,1,.",
        ),
    )
    assert read_dataset(path).table["TIME"].tolist() == [0, 10, 0, 5, 2]


def test_comments_and_blank_lines_are_skipped_but_counted(tmp_path):
    text = "C,ID,TIME,DV\n"
    text += "C,free text, with, more, fields, than the header\n"
    text += ".,1,0,1\n\n# a comment line\n@another\n#,1,0.5,9\n.,1,1,2\nc\n.,1,2,bad\n"
    path = write_csv(tmp_path, text)
    expect_error(path, 10, "DV", "'bad'")
    path = write_csv(tmp_path, text.replace("bad", "3"), "ok.csv")
    dataset = read_dataset(path)
    assert dataset.table["TIME"].tolist() == [0, 1, 2]
    assert dataset.table["ROW"].tolist() == [1, 6, 8]
    assert dataset.raw["DV"].tolist() == ["1", "2", "3"]


def test_comment_column_not_leading(tmp_path):
    path = write_csv(tmp_path, "ID,TIME,DV,C\n1,0,1,.\n1,1,2,C\n1,2,3,#\n1,3,4,\n")
    assert read_dataset(path).table["TIME"].tolist() == [0, 3]


def test_hash_header_bom_crlf_quotes_and_spaces(tmp_path):
    text = '\ufeff#ID,"TIME",DV\r\n1, 0,1.5\r\n\r\n1,1 , . \r\n'
    path = tmp_path / "odd.csv"
    path.write_bytes(text.encode("utf-8"))
    table = read_dataset(path).table
    assert table["TIME"].tolist() == [0, 1]
    assert table["DV"].iloc[0] == 1.5
    assert np.isnan(table["DV"].iloc[1])
    assert table["ROW"].tolist() == [0, 2]


def test_dataset_from_frame_matches_file(tmp_path):
    frame = pd.DataFrame(
        {"ID": [1, 1, 2], "TIME": [0.0, 1.5, 0.0], "AMT": [100, 0, 50], "DV": [np.nan, 2.5, 1.0]}
    )
    dataset = dataset_from_frame(frame)
    assert dataset.source == "<memory>"
    assert dataset.raw["DV"].tolist() == [".", "2.5", "1.0"]
    assert dataset.table["EVID"].tolist() == [1, 0, 1]
    assert dataset.subjects() == 2
    frame.loc[2, "TIME"] = -1.0
    with pytest.raises(DatasetError, match=r"^<memory>: row 4, TIME: got '-1.0'"):
        dataset_from_frame(frame)


# ---------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path):
    expect_error(tmp_path / "absent.csv", None, "file", "not found")


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("ID,TIME,DV,SITE\n1,0,1,Paris\n1,1,2,Orléans\n".encode("latin-1"))
    error = expect_error(path, 3, "encoding", "xe9")
    assert "UTF-8" in str(error)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("ID,TIME,DV\n", "header only"),
        ("ID,TIME,DV\n# x\n", "header only"),
    ],
)
def test_empty_or_header_only(tmp_path, text, value):
    expect_error(write_csv(tmp_path, text), None, "file", value)


@pytest.mark.parametrize(
    ("text", "row", "fields"),
    [
        ("ID,TIME,DV\n1,0,1\n1,1,2,3\n", 3, "got 4"),
        ("ID,TIME,DV\n1,0,1\n1,1,2\n1,2\n", 4, "got 2"),
        ("ID,TIME,DV\n1,0,1,\n1,1,2,\n", 2, "got 4"),
    ],
)
def test_ragged_rows(tmp_path, text, row, fields):
    error = expect_error(write_csv(tmp_path, text), row, "fields", fields)
    assert "3 comma-separated fields" in str(error)


def test_required_columns(tmp_path):
    path = write_csv(tmp_path, "id,Time,AMT\n1,0,100\n")
    error = expect_error(path, None, "columns", "['id', 'Time', 'AMT']")
    assert "missing: DV" in str(error)
    assert read_dataset(path, require_dv=False).table["DV"].isna().all()
    expect_error(write_csv(tmp_path, "ID,DV\n1,0\n", "b.csv"), None, "columns", "missing: TIME")


def test_columns_folding_to_one_item(tmp_path):
    expect_error(write_csv(tmp_path, "ID,TIME,DV,Dv\n1,0,1,1\n"), 1, "Dv", "'DV' is already DV")


def test_reserved_column_name(tmp_path):
    expect_error(write_csv(tmp_path, "ID,TIME,DV,ROW\n1,0,1,1\n"), 1, "ROW", "'ROW'")


def test_amt_required_for_dose_records(tmp_path):
    path = write_csv(tmp_path, "ID,TIME,EVID,DV\n1,0,0,1\n1,1,1,.\n")
    error = expect_error(path, 3, "EVID", "'1'")
    assert "AMT column" in str(error)


# ---------------------------------------------------------------- record rules


RULES = [
    # (bad record, column named in the message, value shown, words of the allowed text)
    ("1,abc,0,0,0,2,0,0,0,0,1", "TIME", "'abc'", "a number"),
    ("1,0,0,0,0,x2,0,0,0,0,1", "CMT", "'x2'", "a number"),
    ("1,inf,0,0,0,2,0,0,0,0,1", "TIME", "'inf'", "finite"),
    ("1,.,0,0,0,2,0,0,0,0,1", "TIME", "'.'", ">= 0"),
    ("1,-1,0,0,0,2,0,0,0,0,1", "TIME", "'-1'", ">= 0"),
    (".,0,0,0,0,2,0,0,0,0,1", "ID", "'.'", "identifying the individual"),
    ("1,0,5,0,0,2,0,0,0,0,1", "EVID", "'5'", "4 (reset and dose)"),
    ("1,0,1.5,10,0,2,0,0,0,1,.", "EVID", "'1.5'", "0 (observation)"),
    ("1,0,1,-10,0,1,0,0,0,1,.", "AMT", "'-10'", ">= 0"),
    ("1,0,0,10,0,2,0,0,0,0,1", "AMT", "'10'", "ambiguous"),
    ("1,0,2,10,0,2,0,0,0,1,.", "AMT", "'10'", "EVID 2"),
    ("1,0,3,10,0,2,0,0,0,1,.", "AMT", "'10'", "EVID 3"),
    ("1,0,0,0,5,2,0,0,0,0,1", "RATE", "'5'", "EVID 0"),
    ("1,0,0,0,0,2,0,24,0,0,1", "II", "'24'", "EVID 0"),
    ("1,0,1,0,0,1,0,0,0,1,.", "AMT", "'0'", "constant infusion"),
    ("1,0,1,10,-3,1,0,0,0,1,.", "RATE", "'-3'", "-2 (duration"),
    ("1,0,1,10,0,1,3,24,0,1,.", "SS", "'3'", "0, 1 or 2"),
    ("1,0,1,10,0,1,1,0,0,1,.", "II", "'0'", "steady-state dose"),
    ("1,0,1,10,0,1,2,.,0,1,.", "II", "'.'", "steady-state dose"),
    ("1,0,1,10,10,1,1,0,0,1,.", "II", "'0'", "SS 1, AMT 0, RATE > 0"),
    ("1,0,1,10,0,1,0,-2,0,1,.", "II", "'-2'", ">= 0"),
    ("1,0,1,10,0,1,0,24,1.5,1,.", "ADDL", "'1.5'", "whole number"),
    ("1,0,1,10,0,1,0,24,-1,1,.", "ADDL", "'-1'", "whole number"),
    ("1,0,1,10,0,1,0,0,3,1,.", "II", "'0'", "ADDL > 0"),
    ("1,0,1,10,0,1.5,0,0,0,1,.", "CMT", "'1.5'", "whole compartment"),
    ("1,0,0,0,0,2,0,0,0,2,1", "MDV", "'2'", "0 or 1"),
]


@pytest.mark.parametrize(("record", "column", "value", "words"), RULES)
def test_record_rule(tmp_path, record, column, value, words):
    # The bad record is line 4 and starts its own individual (ID 2), so that only the
    # rule under test can fail.
    if record.startswith("1,"):
        record = "2," + record[2:]
    path = write_csv(tmp_path, records("1,0,0,0,0,2,0,0,0,0,1", "1,0.5,0,0,0,2,0,0,0,0,1", record))
    error = expect_error(path, 4, column, value)
    assert words in error.allowed, error.allowed


def test_time_decreasing_within_individual(tmp_path):
    path = write_csv(
        tmp_path,
        records(
            "1,0,1,100,0,1,0,0,0,1,.",
            "1,4,0,0,0,2,0,0,0,0,3",
            "2,1,0,0,0,2,0,0,0,0,3",  # a new individual may start earlier
            "2,0.5,0,0,0,2,0,0,0,0,3",
        ),
    )
    error = expect_error(path, 5, "TIME", "'0.5'")
    assert "EVID 3 or 4" in error.allowed


def test_compartment_not_in_model(tmp_path):
    path = write_csv(tmp_path, records("1,0,1,100,0,1,0,0,0,1,.", "1,1,0,0,0,3,0,0,0,0,2"))
    error = expect_error(path, 3, "CMT", "'3'", compartments={1: "depot", 2: "central"})
    assert "1 (depot), 2 (central)" in error.allowed
    # A missing or 0 CMT means the model's default compartment.
    path = write_csv(tmp_path, records("1,0,1,100,0,.,0,0,0,1,.", "1,1,0,0,0,0,0,0,0,0,2"), "b.csv")
    table = read_dataset(path, compartments={1: "depot", 2: "central"}).table
    assert np.isnan(table["CMT"].iloc[0])
    assert table["CMT"].iloc[1] == 0


def test_error_names_the_column_as_spelled_in_the_file(tmp_path):
    path = write_csv(tmp_path, "id,time,amt,evid,dv\n1,0,-5,1,.\n")
    expect_error(path, 2, "amt", "'-5'")


@pytest.mark.slow
def test_million_records_read_quickly(tmp_path):
    n = 1_000_000
    rng = np.random.default_rng(1)
    first = np.arange(n) % 20 == 0
    frame = pd.DataFrame(
        {
            "ID": np.arange(n) // 20 + 1,
            "TIME": np.tile(np.arange(20) * 0.5, n // 20),
            "EVID": first.astype(int),
            "AMT": np.where(first, 100, 0),
            "RATE": 0,
            "CMT": np.where(first, 1, 2),
            "SS": 0,
            "II": 0,
            "ADDL": 0,
            "MDV": first.astype(int),
            "DV": np.round(rng.lognormal(size=n), 4),
            "WT": np.round(rng.normal(70, 10, n), 1),
        }
    )
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    start = time.perf_counter()
    dataset = read_dataset(path)
    elapsed = time.perf_counter() - start
    assert dataset.subjects() == n // 20
    # About 1 s on a 2-core machine; the bound leaves room for a loaded CI runner.
    assert elapsed < 6.0, elapsed
