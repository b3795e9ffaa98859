"""``simulate_file``: a dataset simulated chunk by chunk, the same as all at once."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from insilico.cli import main
from insilico.dataset import read_dataset, write_dataset
from insilico.dataset import stream as stream_module
from insilico.dataset.simulate import ResidualNormals, simulate_dataset
from insilico.dataset.stream import simulate_file
from insilico.errors import DatasetError
from insilico.model import load_model
from insilico.rng import PATIENT_BLOCK, stream

ROOT = Path(__file__).resolve().parents[2]
NMTEST = ROOT.parent / "shared" / "data" / "nonmem_event_reference_nmtest.csv"
ADVAN2 = ROOT / "models" / "nonmem_advan2.yaml"
ALLOMETRIC = ROOT / "models" / "oral_1cpt_lag_allometric.yaml"
WHOLE = 10**9


@pytest.fixture(scope="module")
def model():
    """IIV, IOV (on two parameters) and a combined residual error."""
    base = load_model(ALLOMETRIC)
    return base.model_copy(update={"iov": {"cl_L_per_h": 0.05, "ka_per_h": 0.2}})


@pytest.fixture(scope="module")
def plain():
    """IIV and a residual error, no IOV (data without occasions)."""
    return load_model(ALLOMETRIC)


@pytest.fixture
def tiny_blocks(monkeypatch):
    """Read the file a few lines at a time, so records and chunks span many blocks."""
    monkeypatch.setattr(stream_module, "_HEAD_BYTES", 16)
    monkeypatch.setattr(stream_module, "_MIN_BLOCK_BYTES", 64)


def population_text(n_subjects: int = PATIENT_BLOCK + 80) -> str:
    """Subjects of 1 dose and 2-4 samples, occasions, a weight with gaps, comment lines.

    More subjects than a random-effect block, so draws come from two blocks.
    """
    rng = np.random.default_rng(3)
    lines = ["ID,TIME,EVID,AMT,CMT,DV,WT,OCC"]
    for i in range(1, n_subjects + 1):
        wt = f"{rng.uniform(40, 120):.1f}"
        first_occ = 1 + i % 3
        lines.append(f"{i},0,1,100,1,.,{wt},{first_occ}")
        for k, t in enumerate((1.0, 4.0, 26.0, 30.0)[: 2 + i % 3]):
            occ = first_occ if t < 24 else first_occ + 1
            cell = "." if k == 1 else wt
            lines.append(f"{i},{t:g},0,0,2,{rng.uniform(1, 9):.3f},{cell},{occ}")
        if i % 200 == 0:
            lines.append(f"# subject {i} done")
        if i % 301 == 0:
            lines.append("")
    return "\n".join(lines) + "\n"


def reference(model, data: Path, out: Path, replicates=None, seed=0) -> bytes:
    """The whole-dataset path: read_dataset, simulate_dataset, write_dataset."""
    ds = read_dataset(data, compartments=model.compartment_map(), require_dv=False)
    write_dataset(ds.raw, simulate_dataset(model, ds, replicates=replicates, seed=seed), out)
    return out.read_bytes()


@pytest.mark.parametrize("replicates", [None, 3])
def test_output_is_the_same_bytes_whatever_the_chunk_size(tmp_path, model, replicates):
    data = tmp_path / "data.csv"
    data.write_text(population_text())
    outputs = {}
    for chunk in (50, 1000, WHOLE):
        out = tmp_path / f"out{chunk}.csv"
        summary = simulate_file(
            model, data, out, replicates=replicates, seed=11, chunk_records=chunk
        )
        outputs[chunk] = out.read_bytes()
        assert summary.subjects == PATIENT_BLOCK + 80
        assert summary.rows == summary.records * (replicates or 1)
        assert (summary.chunks > 1) == (chunk < WHOLE)
    assert outputs[50] == outputs[1000] == outputs[WHOLE]
    assert outputs[WHOLE] == reference(model, data, tmp_path / "ref.csv", replicates, seed=11)
    got = pd.read_csv(tmp_path / "out50.csv", na_values=".")
    if replicates:
        assert list(got["REP"].unique()) == [1, 2, 3]
        obs = got["EVID"] == 0
        # residual error and random effects: DV differs from IPRED, IPRED from PRED
        assert (got.loc[obs, "DV"] != got.loc[obs, "IPRED"]).all()
        assert got["DV"][~obs].isna().all()
    assert (got["IPRED"] != got["PRED"]).mean() > 0.5
    assert not list(tmp_path.glob(".*tmp"))


def test_small_blocks_and_chunks_give_the_same_bytes(tmp_path, model, tiny_blocks):
    data = tmp_path / "data.csv"
    data.write_text(population_text(60))
    expected = reference(model, data, tmp_path / "ref.csv", replicates=2, seed=4)
    for chunk in (1, 7, WHOLE):
        out = tmp_path / "out.csv"
        simulate_file(model, data, out, replicates=2, seed=4, chunk_records=chunk)
        assert out.read_bytes() == expected


@pytest.mark.skipif(not NMTEST.is_file(), reason=f"{NMTEST} not present")
def test_nonmem_reference_dataset_in_chunks_matches_the_whole(tmp_path):
    advan2 = load_model(ADVAN2)
    expected = reference(advan2, NMTEST, tmp_path / "ref.csv")
    out = tmp_path / "out.csv"
    summary = simulate_file(advan2, NMTEST, out, chunk_records=100)
    assert out.read_bytes() == expected
    assert (summary.records, summary.subjects) == (7157, 54)


def test_subjects_are_never_split(tmp_path, plain, tiny_blocks):
    # "1" and "1.0" are the same individual; an ID that comes back is a new one
    text = (
        "ID,TIME,AMT,CMT,WT\n"
        "1,0,100,1,70\n1.0,1,0,2,.\n1,2,0,2,.\n1,3,0,2,.\n1,4,0,2,.\n1,5,0,2,.\n"
        "2,0,100,1,50\n2,1,0,2,.\n"
        "1,0,100,1,90\n1,1,0,2,.\n1,8,0,2,.\n"
    )
    data = tmp_path / "data.csv"
    data.write_text(text)
    expected = reference(plain, data, tmp_path / "ref.csv")
    for chunk in (1, 2, 3, 5):
        summary = simulate_file(plain, data, tmp_path / "out.csv", chunk_records=chunk)
        assert summary.subjects == 3
        assert (tmp_path / "out.csv").read_bytes() == expected


def test_comment_records_are_left_out(tmp_path, plain, tiny_blocks):
    text = (
        "ID,TIME,AMT,CMT,WT,C\n"
        "1,0,100,1,70,.\n1,1,0,2,70,C\n1,2,0,2,70,\n# a comment line\n"
        "2,0,100,1,60,#dropped\n2,0,100,1,60,.\n2,5,0,2,60,1\n"
    )
    data = tmp_path / "data.csv"
    data.write_text(text)
    expected = reference(plain, data, tmp_path / "ref.csv")
    for chunk in (1, 2, WHOLE):
        summary = simulate_file(plain, data, tmp_path / "out.csv", chunk_records=chunk)
        assert (summary.records, summary.subjects) == (4, 2)
        assert (tmp_path / "out.csv").read_bytes() == expected


def test_quoted_cells_crlf_and_byte_order_mark(tmp_path, plain, tiny_blocks):
    rows = [
        "ID,TIME,AMT,CMT,WT,NOTE",
        '1,0,100,1,70,"dose, morning"',
        '1,1,0,2,70,"two\nlines"',
        '# a comment with an unbalanced " quote',
        "1,2,0,2,70,plain",
        '2,0,100,1,55,"say ""hi"""',
        "2,3,0,2,55,.",
    ]
    data = tmp_path / "data.csv"
    data.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n")
    expected = reference(plain, data, tmp_path / "ref.csv")
    for chunk in (1, 2, WHOLE):
        simulate_file(plain, data, tmp_path / "out.csv", chunk_records=chunk)
        assert (tmp_path / "out.csv").read_bytes() == expected
    back = pd.read_csv(tmp_path / "out.csv", dtype=str, keep_default_na=False)
    assert list(back["NOTE"]) == ["dose, morning", "two\nlines", "plain", 'say "hi"', "."]


def bad_files() -> dict[str, bytes]:
    """Files with one error far from the start (after comments and blank lines)."""
    lines = population_text(120).splitlines()
    # an observation record late in the file, after another record of the same subject
    late = next(
        i
        for i in range(len(lines) - 30, 1, -1)
        if lines[i].split(",")[:1] == lines[i - 1].split(",")[:1] and ",0,0,2," in lines[i]
    )
    subject = lines[late].split(",")[0]

    def replace(line: str) -> bytes:
        return ("\n".join([*lines[:late], line, *lines[late + 1 :]]) + "\n").encode()

    return {
        "evid": replace(f"{subject},40,7,0,2,1.0,70,1"),
        "amount": replace(f"{subject},40,1,-100,1,.,70,1"),
        "time": replace(f"{subject},0.5,0,0,2,1.0,70,2"),
        "fields": replace(f"{subject},40,0,0,2"),
        "number": replace(f"{subject},soon,0,0,2,1.0,70,1"),
        "compartment": replace(f"{subject},40,0,0,9,1.0,70,1"),
        "encoding": replace(f"{subject},40,0,0,2,1.0,7X,1").replace(b"7X", b"7\xff"),
        "empty": b"",
        "blank": b"  \n\n \n",
        "header only": b"ID,TIME,AMT\n# nothing\n\n",
        "no ID": b"TIME,AMT,CMT\n0,100,1\n1,0,2\n",
        "reserved": b"ID,TIME,ROW\n1,0,1\n",
        "all comments": b"C,ID,TIME\nC,1,0\nc,1,1\n",
        "all comment records": b"ID,TIME,C\n1,0,C\n1,1,#x\n",
    }


@pytest.mark.parametrize("small", [False, True])
@pytest.mark.parametrize("case", list(bad_files()))
def test_errors_are_read_datasets_with_the_files_line(tmp_path, model, monkeypatch, case, small):
    if small:
        monkeypatch.setattr(stream_module, "_HEAD_BYTES", 16)
        monkeypatch.setattr(stream_module, "_MIN_BLOCK_BYTES", 64)
    data = tmp_path / "data.csv"
    data.write_bytes(bad_files()[case])
    with pytest.raises(DatasetError) as whole:
        read_dataset(data, compartments=model.compartment_map(), require_dv=False)
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")
    with pytest.raises(DatasetError) as chunked:
        simulate_file(model, data, out, replicates=2, chunk_records=25)
    assert str(chunked.value) == str(whole.value)
    assert chunked.value.row == whole.value.row
    assert out.read_text() == "previous results\n"
    assert not list(tmp_path.glob(".*tmp"))


def test_error_in_a_later_chunk_names_its_line(tmp_path, model):
    text = population_text(300).splitlines()
    text[-5] = text[-5].replace(",0,0,2,", ",0,-5,2,", 1)
    data = tmp_path / "data.csv"
    data.write_text("\n".join(text) + "\n")
    with pytest.raises(DatasetError) as caught:
        simulate_file(model, data, tmp_path / "out.csv", chunk_records=40)
    assert caught.value.row == len(text) - 4
    assert "AMT" in str(caught.value)


def test_missing_file_and_bad_output_directory(tmp_path, model):
    with pytest.raises(DatasetError, match="not found"):
        simulate_file(model, tmp_path / "absent.csv", tmp_path / "out.csv")
    data = tmp_path / "data.csv"
    data.write_text(population_text(3))
    from insilico.errors import SpecError

    with pytest.raises(SpecError, match="--out"):
        simulate_file(model, data, tmp_path / "no" / "out.csv")
    with pytest.raises(SpecError, match="chunk_records"):
        simulate_file(model, data, tmp_path / "out.csv", chunk_records=0)
    with pytest.raises(SpecError, match="replicates"):
        simulate_file(model, data, tmp_path / "out.csv", replicates=0)
    assert not (tmp_path / "out.csv").exists()


def test_residual_draws_continue_across_calls():
    subject = np.repeat(np.arange(PATIENT_BLOCK + 5), 3)
    whole = ResidualNormals(9, 2).draw(subject)
    pieces = ResidualNormals(9, 2)
    cuts = [0, 7, 100, 3 * PATIENT_BLOCK - 2, 3 * PATIENT_BLOCK + 4, subject.size]
    parts = [pieces.draw(subject[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    # block b draws from its own stream, in record order
    first = 3 * PATIENT_BLOCK
    expected = stream(9, "residual:rep2", 1).standard_normal(subject.size - first)
    np.testing.assert_array_equal(whole[first:], expected)
    with pytest.raises(ValueError, match="block"):
        pieces.draw(np.array([0]))


def test_command_line_chunk_records(tmp_path, capsys):
    data = tmp_path / "data.csv"
    data.write_text(population_text(40))
    args = ["simulate", str(ALLOMETRIC), "--data", str(data), "--replicates", "2"]
    assert main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.csv"), "--chunk-records", "9"]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert "of 40 subjects x 2 replicates" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "c.csv"), "--chunk-records", "0"]) == 2
    assert "--chunk-records" in capsys.readouterr().err
    assert not (tmp_path / "c.csv").exists()


def test_blocks_end_outside_quoted_cells():
    cut = stream_module._last_record_end
    assert cut(b'1,"a\nb"\n2,x\n') == 12
    assert cut(b'1,x\n2,"a\nb') == 4
    assert cut(b'# say "hi\n1,x\n2,y') == 14
    assert cut(b'1,"a\nb') == -1
    assert cut(b"no line break") == -1
