"""CDNOW, the real-data check: read the purchase log that ships inside the ``lifetimes`` wheel.

CDNOW was an online music retailer. The data set (Fader & Hardie) holds every purchase, from
1997-01-01 to 1998-06-30, of the 23,570 customers who made their first purchase in the first
quarter of 1997. The ``lifetimes`` wheel (``pip install 'signals[cdnow]'``) carries it as
``lifetimes/datasets/``; we only *read its files*: ``lifetimes`` is unmaintained and may not import
on current pandas, so it is never imported. The files are found through the installed
distribution's record (:func:`importlib.metadata.files`).

Files
-----
``CDNOW_master.txt`` (:func:`cdnow_path`, read by :func:`read_cdnow`)
    One line per order line, whitespace separated (an optional header line, CRLF line ends):

    =============  ===========================================================================
    customer_id    zero-padded id, ``00001`` .. ``23570`` (kept as text, zeros included)
    date           purchase date, ``YYYYMMDD`` (no time of day, no time zone)
    number_of_cds  number of CDs bought
    dollar_value   amount paid, US dollars
    =============  ===========================================================================

    A customer can have several lines on one day (69,659 lines; 23,570 customers).
``CDNOW_sample.txt`` (:func:`cdnow_sample_path`, ids read by :func:`read_cdnow_sample_ids`)
    The 1/10 random sample of 2,357 customers used by Fader, Hardie & Lee (2005): the same lines
    as the master file for those customers, with a second column, the sample id ``0001`` ..
    ``2357``.
``cdnow_customers_summary.csv`` (:func:`cdnow_customers_summary_path`)
    The published calibration summary of that sample: ``ID`` (the sample id), ``frequency``
    (repeat purchase days in weeks 1-39), ``recency`` (weeks from the first to the last purchase
    day), ``T`` (weeks from the first purchase day to 1997-09-30).

The canonical events returned by :func:`read_cdnow` (see :mod:`signals.schemas`) have one row per
line of the master file: ``customer_id`` (category of the zero-padded text ids), ``ts`` (midnight
at the start of the purchase date, taken as UTC: the file has dates only), ``touchpoint``
``"purchase"``, ``value`` = ``dollar_value`` (float) and ``source`` ``"cdnow"``.
``number_of_cds`` has no canonical column: it is dropped, or kept as an extra column
``number_of_cds`` with ``read_cdnow(quantities=True)`` (``check_events`` drops extra columns, so
a caller that validates the events re-attaches it by row: the rows keep their order).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pandas as pd

from signals.errors import DataError
from signals.schemas import CUSTOMER_ID, SOURCE, TOUCHPOINT, TS, VALUE

__all__ = [
    "cdnow_available",
    "CDNOW_SOURCE",
    "cdnow_customers_summary_path",
    "cdnow_path",
    "cdnow_sample_path",
    "read_cdnow",
    "read_cdnow_sample_ids",
]

CDNOW_SOURCE = "cdnow"
_DISTRIBUTION = "lifetimes"
_DATASETS = "lifetimes/datasets"
_INSTALL_HINT = "install the optional extra: pip install 'signals[cdnow]' (it brings the lifetimes wheel)"
_MASTER_COLUMNS = ("customer_id", "date", "number_of_cds", "dollar_value")
_SAMPLE_COLUMNS = ("customer_id", "sample_id", "date", "number_of_cds", "dollar_value")


def _dataset_file(name: str) -> Path:
    """Absolute path of ``lifetimes/datasets/<name>`` in the installed wheel, without importing it."""
    try:
        files = importlib.metadata.files(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"CDNOW data: the {_DISTRIBUTION!r} distribution is not installed; {_INSTALL_HINT}") from None
    wanted = f"{_DATASETS}/{name}"
    for entry in files or ():
        if entry.as_posix() == wanted:
            path = Path(entry.locate()).resolve()
            if path.is_file():
                return path
            raise FileNotFoundError(
                f"CDNOW data: {path} is listed by the {_DISTRIBUTION!r} distribution but missing on disk; "
                f"reinstall it: pip install --force-reinstall 'signals[cdnow]'"
            )
    raise FileNotFoundError(
        f"CDNOW data: the installed {_DISTRIBUTION!r} distribution has no {wanted}; {_INSTALL_HINT}"
    )


def cdnow_available() -> bool:
    """Whether the optional ``cdnow`` extra (the ``lifetimes`` wheel with the data files) is installed."""
    try:
        importlib.metadata.distribution(_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def cdnow_path() -> Path:
    """Path of ``CDNOW_master.txt`` (all 23,570 customers) inside the installed ``lifetimes`` wheel.

    Raises
    ------
    FileNotFoundError
        ``lifetimes`` is not installed or lacks the file; the message says to
        ``pip install 'signals[cdnow]'``.
    """
    return _dataset_file("CDNOW_master.txt")


def cdnow_sample_path() -> Path:
    """Path of ``CDNOW_sample.txt`` (the 2,357-customer sample of Fader, Hardie & Lee 2005)."""
    return _dataset_file("CDNOW_sample.txt")


def cdnow_customers_summary_path() -> Path:
    """Path of ``cdnow_customers_summary.csv``: columns ``ID, frequency, recency, T`` (weeks).

    The published calibration summary (weeks 1-39, to 1997-09-30) of the 2,357-customer sample,
    the data on which the BG/NBD paper reports r=0.243, alpha=4.414, a=0.793, b=2.426.
    """
    return _dataset_file("cdnow_customers_summary.csv")


def _read_whitespace_table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    """Read a whitespace-separated text table as strings; a first line that is not data is a header.

    Blank lines are skipped; a line with another number of fields is an error naming its number.
    """
    try:
        text = path.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a plain ASCII text table ({exc})") from None
    rows: list[list[str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if not rows and number == 1 and not fields[0].isdigit():
            if len(fields) != len(columns):
                raise DataError(f"{path}: header {fields} does not have the {len(columns)} columns {list(columns)}")
            continue
        if len(fields) != len(columns):
            raise DataError(
                f"{path}: line {number} has {len(fields)} field(s), expected {len(columns)} "
                f"({' '.join(columns)}): {line.strip()!r}"
            )
        rows.append(fields)
    if not rows:
        raise DataError(f"{path}: no data lines")
    return pd.DataFrame(rows, columns=list(columns), dtype="str")


def read_cdnow(path: str | Path | None = None, *, quantities: bool = False) -> pd.DataFrame:
    """Read ``CDNOW_master.txt`` as canonical purchase events, one row per line of the file.

    Parameters
    ----------
    path
        A file in the master format (``customer_id date number_of_cds dollar_value``);
        ``None`` reads the copy in the installed ``lifetimes`` wheel (:func:`cdnow_path`).
    quantities
        Also return ``number_of_cds`` (int64), the line's number of CDs.

    Returns
    -------
    pandas.DataFrame
        ``customer_id`` (category of str, zero-padded as in the file), ``ts``
        (``datetime64[ns, UTC]``, midnight at the start of the purchase date, the date taken as
        UTC), ``touchpoint`` (category, ``"purchase"``), ``value`` (float64, ``dollar_value``),
        ``source`` (category, ``"cdnow"``); in file order. Several lines of one customer on
        one day stay several rows. With ``quantities``, a sixth column ``number_of_cds``.

    Raises
    ------
    FileNotFoundError
        No path given and the data is not installed (``pip install 'signals[cdnow]'``), or
        ``path`` does not exist.
    DataError
        A line has the wrong number of fields, a date is not ``YYYYMMDD``, or an amount is not
        a non-negative number (with ``quantities``: a number of CDs is not a non-negative
        integer); the message names the file and the first bad line.
    """
    path = cdnow_path() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CDNOW data: no such file {path}")
    raw = _read_whitespace_table(path, _MASTER_COLUMNS)

    dates = pd.to_datetime(raw["date"], format="%Y%m%d", errors="coerce")
    bad = dates.isna()
    if bad.any():
        first = raw.loc[bad].iloc[0]
        raise DataError(f"{path}: {int(bad.sum())} line(s) have a date that is not YYYYMMDD, e.g. {first['date']!r}")
    value = pd.to_numeric(raw["dollar_value"], errors="coerce")
    bad = ~np.isfinite(value.to_numpy(dtype="float64", na_value=np.nan)) | (value < 0).to_numpy()
    if bad.any():
        first = raw.loc[bad].iloc[0]
        raise DataError(
            f"{path}: {int(bad.sum())} line(s) have a dollar_value that is not a non-negative number, "
            f"e.g. {first['dollar_value']!r}"
        )
    n = len(raw)
    out = pd.DataFrame(
        {
            CUSTOMER_ID: raw["customer_id"].astype("category"),
            TS: dates.dt.tz_localize("UTC").astype("datetime64[ns, UTC]"),
            TOUCHPOINT: pd.Categorical(["purchase"] * n),
            VALUE: value.astype("float64"),
            SOURCE: pd.Categorical([CDNOW_SOURCE] * n),
        }
    )
    if quantities:
        cds = pd.to_numeric(raw["number_of_cds"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        bad = ~np.isfinite(cds) | (cds < 0) | (cds != np.round(cds))
        if bad.any():
            first = raw.loc[bad].iloc[0]
            raise DataError(f"{path}: {int(bad.sum())} line(s) have a number_of_cds that is not a non-negative "
                            f"integer, e.g. {first['number_of_cds']!r}")
        out["number_of_cds"] = cds.astype("int64")
    return out


def read_cdnow_sample_ids(path: str | Path | None = None) -> pd.DataFrame:
    """The 2,357 customers of the published sample: ``customer_id`` (master id) and ``sample_id``.

    ``sample_id`` (int) is the ``ID`` of ``cdnow_customers_summary.csv``; ``customer_id`` (str,
    zero-padded) is the id in ``CDNOW_master.txt`` and in :func:`read_cdnow`. Sample ids are not
    in master-id order, so join on this table. One row per customer, sorted by ``sample_id``.
    """
    path = cdnow_sample_path() if path is None else Path(path)
    raw = _read_whitespace_table(path, _SAMPLE_COLUMNS)
    ids = raw[["customer_id", "sample_id"]].drop_duplicates()
    ids["sample_id"] = ids["sample_id"].astype("int64")
    if ids["customer_id"].duplicated().any() or ids["sample_id"].duplicated().any():
        raise DataError(f"{path}: the customer_id <-> sample_id pairing is not one to one")
    return ids.sort_values("sample_id", ignore_index=True)
