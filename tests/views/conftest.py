"""Hand-made histories for the views: a few customers whose right answers are worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from signals.settings import load_settings

DAY = pd.Timedelta(days=1)
SECOND = pd.Timedelta(seconds=1)


def history_table(rows: list[tuple[str, pd.Timestamp, str]]) -> pd.DataFrame:
    """Canonical events from ``(customer_id, ts, touchpoint)`` triples (purchases and renewals worth 1000)."""
    frame = pd.DataFrame(rows, columns=["customer_id", "ts", "touchpoint"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["value"] = frame["touchpoint"].isin(["purchase", "renewal"]) * 1000.0
    return frame


@pytest.fixture(scope="session")
def settings():
    return load_settings()
