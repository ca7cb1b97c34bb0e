"""Training on custom cutoffs: the split divides calendar periods and no label window reaches the
test period; a cutoffs table holding the calendar grid trains on exactly the grid's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signals.dataset import LABEL
from signals.errors import DataError
from signals.ingest import ingest
from signals.modeling.training import PERIOD, backtest_splits, plan_training_split, training_set
from signals.settings import load_settings
from tests.foreign_crm import generate

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "saas_example.yaml"


@pytest.fixture(scope="module")
def saas(tmp_path_factory):
    """The foreign SaaS export (400 accounts), ingested with configs/saas_example.yaml's sources."""
    folder = tmp_path_factory.mktemp("saas")
    crm = generate(folder, n_accounts=400, seed=5)
    settings = load_settings(CONFIG, [f"ingest.sources.activities.path={crm.activities}",
                                      f"ingest.sources.billing.path={crm.subscriptions}"])
    result = ingest(settings.ingest.sources, touchpoints=settings.catalog, as_of=settings.ingest.as_of,
                    timezone=settings.timezone)
    return settings, result.events


def _assert_no_label_window_reaches_a_later_part(ts, splits, full: bool) -> None:
    horizon = pd.Timedelta(days=ts.horizon_days)
    for split in splits:
        train, val, test = split.masks(ts.data)
        assert train.any() and val.any() and test.any()
        cut = ts.data["cutoff"]
        first_test = cut[test].min()
        assert (cut[train | val] + horizon).max() <= first_test
        if full:
            assert (cut[train] + horizon).max() <= cut[val].min()


@pytest.mark.parametrize("overrides", [
    [],                                                                     # anniversary, monthly periods
    ["cutoffs.frequency=weekly"],                                           # weekly periods
    ["cutoffs.days_before=0", "labels.churn.horizon_days=45", "model.embargo=test"],
])
def test_no_label_window_of_a_fitting_row_reaches_the_test_period(saas, overrides):
    settings, events = saas
    settings = load_settings(CONFIG, overrides) if overrides else settings
    plan = plan_training_split(events, settings, task="churn", auto_split=True)
    assert plan.margin_days in (8.0, 32.0)
    ts = training_set(events, settings, task="churn", plan=plan)
    assert PERIOD in ts.data.columns and PERIOD not in ts.features
    # rows are the accounts' own dates (5 days before a monthly anniversary), not the grid's
    assert ts.data["cutoff"].nunique() > 3 * ts.data[PERIOD].nunique()
    periods = ts.data[PERIOD].to_numpy()
    starts = np.sort(pd.unique(periods))
    assert (ts.data["cutoff"].to_numpy() >= periods).all()
    splits = backtest_splits(ts)
    _assert_no_label_window_reaches_a_later_part(ts, splits, full=plan.embargo == "full")
    assert set(splits[-1].test) <= set(starts)


def test_a_table_of_the_calendar_grid_trains_on_the_grids_rows(saas, tmp_path):
    settings, events = saas
    calendar = load_settings(CONFIG, ["cutoffs.kind=calendar"])
    plan = plan_training_split(events, calendar, task="purchase", auto_split=True)
    grid_ts = training_set(events, calendar, task="purchase", plan=plan)
    table = grid_ts.data[["customer_id", "cutoff"]].drop_duplicates()
    local = table.assign(観測日=table["cutoff"].dt.tz_convert("Asia/Tokyo").dt.strftime("%Y-%m-%d"),
                         顧客=table["customer_id"].astype(str))[["顧客", "観測日"]]
    path = tmp_path / "cutoffs.csv"
    local.to_csv(path, index=False)
    custom = load_settings(CONFIG, ["cutoffs.kind=table", f"cutoffs.table={path}", "cutoffs.tasks=[purchase]",
                                    "cutoffs.table_columns={customer_id: 顧客, cutoff: 観測日}"])
    read = pd.read_csv(path, dtype=str)
    custom_plan = plan_training_split(events, custom, task="purchase", auto_split=True)
    ts = training_set(events, custom, task="purchase", plan=custom_plan, custom_table=read)
    key = ["customer_id", "cutoff"]
    shared = ts.data[key].merge(grid_ts.data[key])
    assert len(shared) > 0.5 * len(ts.data)  # the periods need one more period of embargo: a few fewer rows
    left = shared.merge(ts.data.drop(columns=PERIOD), on=key)
    right = shared.merge(grid_ts.data, on=key)
    columns = [*grid_ts.features, LABEL]
    pd.testing.assert_frame_equal(left[key + columns], right[key + columns], check_exact=False, rtol=1e-12, atol=1e-12)
    # the period of a grid cutoff is the cutoff itself
    assert (ts.data["cutoff"] == ts.data[PERIOD]).all()


def test_a_table_without_rows_in_the_training_periods_is_an_error(saas, tmp_path):
    settings, events = saas
    path = tmp_path / "cutoffs.csv"
    pd.DataFrame({"customer_id": ["0000001"], "cutoff": ["2019-01-01"]}).to_csv(path, index=False)
    custom = load_settings(CONFIG, ["cutoffs.kind=table", f"cutoffs.table={path}"])
    with pytest.raises(DataError, match="no custom cutoff falls in the training periods"):
        training_set(events, custom, task="churn", plan=plan_training_split(events, custom, task="churn",
                                                                             auto_split=True),
                     custom_table=pd.read_csv(path, dtype=str))


def test_the_grid_starts_when_every_source_has_begun(saas):
    settings, events = saas
    log_start = events.loc[events["source"] == "activities", "ts"].min()
    assert events["ts"].min() < log_start - pd.Timedelta(days=300)  # subscriptions reach back two years
    both = load_settings(CONFIG, ["cutoffs.kind=calendar"])
    ts = training_set(events, both, task="purchase", plan=plan_training_split(events, both, task="purchase",
                                                                              auto_split=True))
    assert ts.data["cutoff"].min() > log_start
    first = load_settings(CONFIG, ["cutoffs.kind=calendar", "cutoffs.start=first_event"])
    early = training_set(events, first, task="purchase", plan=plan_training_split(events, first, task="purchase",
                                                                                  auto_split=True))
    assert early.data["cutoff"].min() < log_start - pd.Timedelta(days=300)
    dated = load_settings(CONFIG, ["cutoffs.kind=calendar", "cutoffs.start=2025-06-01"])
    late = training_set(events, dated, task="purchase", plan=plan_training_split(events, dated, task="purchase",
                                                                                 auto_split=True))
    assert late.data["cutoff"].min() == pd.Timestamp("2025-06-01", tz="Asia/Tokyo")


def test_scoring_takes_the_accounts_due_at_the_as_of_date(saas, tmp_path):
    from signals.cutoffs import anniversary_cutoffs, custom_cutoffs

    settings, events = saas
    due = custom_cutoffs(events, settings.cutoffs, catalog=settings.catalog, timezone=settings.timezone,
                         start="2025-11-01", end="2025-11-01")
    assert len(due) > 0 and (due["cutoff"] == pd.Timestamp("2025-11-01", tz="Asia/Tokyo")).all()
    every = anniversary_cutoffs(events, anchor_types=["purchase"], days_before=5, timezone="Asia/Tokyo",
                                end="2025-12-01")
    assert set(due["customer_id"]) == set(every.loc[every["cutoff"] == pd.Timestamp("2025-11-01", tz="Asia/Tokyo"),
                                                    "customer_id"])
    # a table: its rows at the date
    path = tmp_path / "c.csv"
    pd.DataFrame({"customer_id": ["0000007", "0000008"], "cutoff": ["2025-11-01", "2025-10-01"]}).to_csv(path, index=False)
    table = load_settings(CONFIG, ["cutoffs.kind=table", f"cutoffs.table={path}"])
    rows = custom_cutoffs(events, table.cutoffs, catalog=table.catalog, timezone=table.timezone,
                          table=pd.read_csv(path, dtype=str), start="2025-11-01", end="2025-11-01")
    assert rows["customer_id"].tolist() == ["0000007"]
