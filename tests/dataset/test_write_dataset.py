"""Writing NONMEM-format datasets: verbatim records, added and replaced columns, replicates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from insilico.dataset import read_dataset, write_dataset
from insilico.errors import SpecError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
TEXT = (
    "id,time,amt,evid,dv,wt\n1,0,100,1,.,70.0\n1,1.50,.,0,2.345,\n2,0,50,1,.,80\n2,2,0,0,1e1,80\n"
)


@pytest.fixture
def dataset(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text(TEXT, encoding="utf-8")
    return read_dataset(path)


def test_round_trip_with_prediction_column(dataset, tmp_path):
    out = tmp_path / "out.csv"
    pred = np.array([0.0, 1 / 3, 0.0, 123456.789012345])
    write_dataset(dataset.raw, pd.DataFrame({"PRED": pred}), out)

    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id,time,amt,evid,dv,wt,PRED"
    # The records are written as they were read, text untouched ('.', '1.50', '1e1').
    assert [line.rsplit(",", 1)[0] for line in lines[1:]] == TEXT.splitlines()[1:]

    again = read_dataset(out)
    pd.testing.assert_frame_equal(again.raw[list(dataset.raw.columns)], dataset.raw)
    # Ten significant digits: a relative rounding error of at most 5e-10.
    np.testing.assert_allclose(again.table["PRED"], pred, rtol=1e-9)
    assert again.table["ROW"].tolist() == dataset.table["ROW"].tolist()
    assert again.table["TIME"].tolist() == dataset.table["TIME"].tolist()


def test_same_name_replaces_column_in_place(dataset, tmp_path):
    out = tmp_path / "sim.csv"
    simulated = pd.DataFrame({"DV": [np.nan, 2.0, np.nan, 0.125], "IPRED": [0, 2.1, 0, 0.13]})
    write_dataset(dataset.raw, simulated, out)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["id", "time", "amt", "evid", "dv", "wt", "IPRED"]
    assert frame["dv"].tolist() == [".", "2", ".", "0.125"]
    assert frame["time"].tolist() == ["0", "1.50", "0", "2"]


def test_replicates_repeat_records_with_rep_first(dataset, tmp_path):
    out = tmp_path / "reps.csv"
    n = len(dataset.raw)
    extra = pd.DataFrame({"REP": np.repeat([1, 2, 3], n), "DV": np.arange(3 * n) + 0.5})
    write_dataset(dataset.raw, extra, out)
    frame = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(frame.columns) == ["REP", "id", "time", "amt", "evid", "dv", "wt"]
    assert frame["REP"].tolist() == [str(r) for r in np.repeat([1, 2, 3], n)]
    for rep in range(3):
        block = frame.iloc[rep * n : (rep + 1) * n]
        assert block["time"].tolist() == dataset.raw["time"].tolist()
        assert block["amt"].tolist() == dataset.raw["amt"].tolist()
    assert frame["dv"].tolist() == [f"{v:g}" for v in np.arange(3 * n) + 0.5]


def test_replicates_must_come_in_blocks(dataset, tmp_path):
    n = len(dataset.raw)
    extra = pd.DataFrame({"REP": np.tile([1, 2], n), "DV": np.zeros(2 * n)})
    with pytest.raises(SpecError, match="extra.REP"):
        write_dataset(dataset.raw, extra, tmp_path / "x.csv")


@pytest.mark.parametrize("rows", [3, 8])
def test_row_count_must_match(dataset, tmp_path, rows):
    with pytest.raises(SpecError, match=rf"extra: got '{rows} rows'; allowed: 4 rows"):
        write_dataset(dataset.raw, pd.DataFrame({"PRED": np.zeros(rows)}), tmp_path / "x.csv")
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]


def test_missing_directory(dataset, tmp_path):
    target = tmp_path / "no" / "such" / "out.csv"
    with pytest.raises(SpecError, match=r"--out: got .*out\.csv'; allowed: a path in an existing"):
        write_dataset(dataset.raw, pd.DataFrame({"PRED": np.zeros(4)}), target)


def test_nothing_half_written(dataset, tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    out.write_text("previous\n", encoding="utf-8")

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pacsv, "write_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(dataset.raw, pd.DataFrame({"PRED": np.zeros(4)}), out)
    assert out.read_text(encoding="utf-8") == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "out.csv"]


def test_shared_dataset_round_trip(tmp_path):
    source = DATA / "clinical_theophylline_multiple_dose_theo_md.csv"
    if not source.is_file():
        pytest.skip(f"shared reference data not found at {DATA} (../shared/data beside the repo)")
    dataset = read_dataset(source)
    out = tmp_path / "theo_md_pred.csv"
    pred = dataset.table["DV"].fillna(0.0).to_numpy() * 1.1
    write_dataset(dataset.raw, pd.DataFrame({"PRED": pred}), out)
    again = read_dataset(out)
    pd.testing.assert_frame_equal(again.raw.drop(columns="PRED"), dataset.raw)
    np.testing.assert_allclose(again.table["PRED"], pred, rtol=1e-9)
    pd.testing.assert_frame_equal(again.table.drop(columns="PRED"), dataset.table)
