"""The CDNOW reader (signals.io.cdnow): the purchase log inside the lifetimes wheel, never imported."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from signals.io import cdnow
from signals.io.cdnow import cdnow_available, cdnow_path, read_cdnow, read_cdnow_sample_ids
from signals.schemas import check_events

needs_cdnow = pytest.mark.skipif(not cdnow_available(), reason="CDNOW needs the optional extra: pip install 'signals[cdnow]'")

UTC = "UTC"


def _ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=UTC)


@pytest.fixture(scope="module")
def events() -> pd.DataFrame:
    return read_cdnow()


@pytest.fixture(scope="module")
def sample_ids() -> pd.DataFrame:
    return read_cdnow_sample_ids()


@pytest.fixture(scope="module")
def sample_events(events: pd.DataFrame, sample_ids: pd.DataFrame) -> pd.DataFrame:
    return events[events["customer_id"].astype(str).isin(set(sample_ids["customer_id"]))]


@needs_cdnow
def test_read_cdnow_rows_customers_dtypes_and_dates(events: pd.DataFrame) -> None:
    assert len(events) == 69_659  # the file has 69,660 lines: a header and one line per order line
    assert events["customer_id"].nunique() == 23_570
    assert list(events.columns) == ["customer_id", "ts", "touchpoint", "value", "source"]
    # already canonical: check_events changes nothing (DataFrame.equals also compares dtypes;
    # assert_frame_equal takes ~0.5 s per categorical column of this size)
    normalised = check_events(events)
    assert normalised.equals(events) and normalised.dtypes.equals(events.dtypes)
    checked = check_events(events, touchpoints=["purchase", "renewal"])
    assert checked["touchpoint"].eq("purchase").all()
    assert str(events["ts"].dtype) == "datetime64[ns, UTC]"
    assert isinstance(events["customer_id"].dtype, pd.CategoricalDtype)
    assert events["ts"].min() == _ts("1997-01-01") and events["ts"].max() == _ts("1998-06-30")
    assert (events["ts"] == events["ts"].dt.floor("D")).all()  # dates only: local midnight as UTC
    ids = events["customer_id"].astype(str)
    assert ids.str.fullmatch(r"\d{5}").all()
    assert {"00001", "23570"} <= set(ids)
    assert set(events["source"].astype(str)) == {"cdnow"}
    assert (events["value"] >= 0).all() and events["value"].dtype == "float64"
    # first line of the file: " 00001 19970101  1   11.77"
    first = events.iloc[0]
    assert (first["customer_id"], first["ts"], first["value"]) == ("00001", _ts("1997-01-01"), 11.77)
    # every customer's first purchase is in the first quarter of 1997 (the cohort's definition)
    assert events.groupby("customer_id", observed=True)["ts"].min().max() < _ts("1997-04-01")


@needs_cdnow
def test_sample_is_the_master_lines_of_2357_customers(sample_ids: pd.DataFrame, sample_events: pd.DataFrame) -> None:
    assert len(sample_ids) == 2_357
    assert sample_ids["sample_id"].tolist() == list(range(1, 2_358))
    assert sample_ids.loc[0, "customer_id"] == "00004"  # first line of CDNOW_sample.txt
    lines = [ln for ln in cdnow.cdnow_sample_path().read_text().splitlines() if ln.strip()]
    assert len(sample_events) == len(lines) == 6_919


def test_read_cdnow_small_file_keeps_zero_padding(tmp_path: Path) -> None:
    path = tmp_path / "cdnow.txt"
    path.write_bytes(
        b"customer_id  date number_of_cds  dollar_value\r\n"
        b" 00007 19971231  1   11.77\r\n"
        b"\r\n"
        b" 00007 19971231  5   77.00\r\n"
        b" 00100 19980630  2    0.00\r\n"
    )
    ev = read_cdnow(path)
    assert ev["customer_id"].astype(str).tolist() == ["00007", "00007", "00100"]
    assert ev["ts"].tolist() == [_ts("1997-12-31"), _ts("1997-12-31"), _ts("1998-06-30")]
    assert ev["value"].tolist() == [11.77, 77.0, 0.0]
    pd.testing.assert_frame_equal(check_events(ev), ev)
    with_cds = read_cdnow(path, quantities=True)
    pd.testing.assert_frame_equal(with_cds.drop(columns="number_of_cds"), ev)
    assert with_cds["number_of_cds"].tolist() == [1, 5, 2]
    path.write_text(" 00001 19970101 1.5 11.77\n")
    with pytest.raises(ValueError, match="number_of_cds"):
        read_cdnow(path, quantities=True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (" 00001 19970101 1 11.77\n 00002 19970112 1\n", "line 2 has 3 field"),
        (" 00001 19970101 1 11.77 9\n", "line 1 has 5 field"),
        (" 00001 19971301 1 11.77\n", "not YYYYMMDD"),
        (" 00001 19970101 1 -3\n", "non-negative"),
        (" 00001 19970101 1 abc\n", "non-negative"),
        ("customer_id date\n", "header"),
    ],
)
def test_read_cdnow_rejects_bad_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_cdnow(path)


def test_cdnow_path_says_how_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "files", not_installed)
    with pytest.raises(FileNotFoundError, match=r"pip install 'signals\[cdnow\]'"):
        cdnow_path()
    with pytest.raises(FileNotFoundError, match=r"pip install 'signals\[cdnow\]'"):
        read_cdnow()

    class Entry:  # a RECORD entry whose file was deleted
        def as_posix(self) -> str:
            return "lifetimes/datasets/CDNOW_master.txt"

        def locate(self) -> Path:
            return tmp_path / "gone.txt"

    monkeypatch.setattr(importlib.metadata, "files", lambda name: [Entry()])
    with pytest.raises(FileNotFoundError, match="missing on disk"):
        cdnow_path()
    monkeypatch.setattr(importlib.metadata, "files", lambda name: [])
    with pytest.raises(FileNotFoundError, match=r"no lifetimes/datasets/CDNOW_master.txt.*signals\[cdnow\]"):
        cdnow_path()
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_cdnow(tmp_path / "nope.txt")


@needs_cdnow
def test_reader_never_imports_lifetimes() -> None:
    code = (
        "import sys; from signals.io.cdnow import read_cdnow, cdnow_customers_summary_path, read_cdnow_sample_ids\n"
        "read_cdnow(); read_cdnow_sample_ids(); cdnow_customers_summary_path()\n"
        "import signals.modeling.bgnbd\n"
        "assert 'lifetimes' not in sys.modules, sorted(m for m in sys.modules if 'lifetimes' in m)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


