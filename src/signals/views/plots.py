"""Figures of the views, as matplotlib ``Figure`` objects (no pyplot state, no GUI backend).

Every figure has a title, axis labels and units. :func:`png_bytes` renders one for embedding
(the report inlines them as base64 PNG); :func:`signals.modeling.plots.save_figure` writes a file.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from signals.views._journey import STAGES
from signals.views._segments import SEGMENTS
from signals.views._timeline import Timeline

__all__ = [
    "plot_cohorts",
    "plot_contact_rate",
    "plot_conversion",
    "plot_dose_response",
    "plot_retention_by_month",
    "plot_segments",
    "plot_timeline",
    "png_bytes",
]

_SEGMENT_COLORS = {"nurture": "#2ca02c", "follow_up": "#ff7f0e", "stop_spending": "#d62728", "new": "#9467bd",
                   "steady": "#7f7f7f"}
_INITIATOR_COLORS = {"customer": "#1f77b4", "company": "#ff7f0e"}


def _figure(width: float = 8.0, height: float = 4.5) -> Figure:
    # fixed margins (set by each plot with _margins), no layout engine: a constrained layout
    # doubles the rendering time of a report, and these figures have known, fixed contents
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _margins(fig: Figure, *, left: float = 0.9, right: float = 0.25, top: float = 0.6, bottom: float = 0.6,
             wspace: float = 0.2, hspace: float = 0.2) -> None:
    """Margins in inches (the same on figures of any size); ``wspace`` / ``hspace`` as matplotlib's fractions."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=wspace, hspace=hspace)


def png_bytes(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _percent_errorbar(ax, x, table: pd.DataFrame, prefix: str, color, label=None, horizontal=False) -> None:
    rate = 100 * table[f"{prefix}_rate"].to_numpy(dtype=float)
    low = 100 * table[f"{prefix}_low"].to_numpy(dtype=float)
    high = 100 * table[f"{prefix}_high"].to_numpy(dtype=float)
    err = np.vstack([rate - low, high - rate])
    if horizontal:
        ax.errorbar(rate, x, xerr=err, fmt="o", capsize=3, color=color, label=label)
    else:
        ax.errorbar(x, rate, yerr=err, fmt="o-", capsize=3, color=color, label=label)


def plot_segments(evidence: pd.DataFrame, today: pd.Series, *, as_of: str, horizons: dict[str, int]) -> Figure:
    """Segment sizes today and each segment's later purchase / churn rate on out-of-time cutoffs."""
    fig = _figure(11.0, 4.2)
    axes = fig.subplots(1, 3, sharey=True)
    _margins(fig, left=1.15, top=0.75, bottom=0.6, wspace=0.12)
    y = np.arange(len(SEGMENTS))
    colors = [_SEGMENT_COLORS[s] for s in SEGMENTS]
    counts = today.reindex(list(SEGMENTS)).fillna(0).to_numpy()
    axes[0].barh(y, counts, color=colors)
    for yi, n in zip(y, counts, strict=True):
        axes[0].annotate(f"{int(n):,}", (n, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    axes[0].set_xlim(0, max(counts.max(), 1) * 1.18)
    axes[0].set_yticks(y, list(SEGMENTS))
    axes[0].invert_yaxis()
    axes[0].set_xlabel("customers (count)")
    axes[0].set_title(f"segment sizes at {as_of}")
    table = evidence.set_index("segment").reindex(list(SEGMENTS)).reset_index()
    for ax, task, what in ((axes[1], "purchase", "purchased"), (axes[2], "churn", "churned")):
        for yi, color in zip(y, colors, strict=True):
            _percent_errorbar(ax, [yi], table.iloc[[yi]], task, color, horizontal=True)
        ax.set_xlabel(f"% {what} within {horizons[task]} days (95% interval)")
        ax.set_title(f"later {task} rate (out of time)")
        ax.set_xlim(left=0)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Contact-frequency segments (seed 003): who they are today, what they did next")
    return fig


def plot_contact_rate(table: pd.DataFrame) -> Figure:
    """Share of customers touched per month, by channel and by initiator."""
    fig = _figure(11.0, 4.4)
    axes = fig.subplots(1, 2, sharey=True)
    _margins(fig, left=0.8, top=0.75, bottom=1.0, wspace=0.06)
    for ax, by, title in ((axes[0], "channel", "by channel"), (axes[1], "initiator", "by initiator")):
        part = table[table["by"].isin([by, "all"])]
        for group, one in part.groupby("group", sort=False):
            style = {"color": "black", "lw": 2} if group == "all" else {"color": _INITIATOR_COLORS.get(group)}
            ax.plot(pd.to_datetime(one["month"]), 100 * one["share"], marker=".", label=group, **style)
        ax.set_title(f"customers touched per month, {title}")
        ax.set_xlabel("month (local calendar)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=3, loc="lower left", bbox_to_anchor=(0.0, 0.17))   # the empty band
        ax.tick_params(axis="x", labelrotation=30)
    axes[0].set_ylabel("% of customers touched at least once")
    fig.suptitle("Contact rate (seed 000): share of the customer base touched each month")
    return fig


def plot_dose_response(table: pd.DataFrame, *, window_days: int, horizons: dict[str, int], min_rows: int = 30) -> Figure:
    """Later purchase and churn rates by company-initiated contacts in the last days (bins with
    fewer than ``min_rows`` eligible rows are only labelled)."""
    fig = _figure(11.0, 4.0)
    axes = fig.subplots(1, 2)
    _margins(fig, left=0.75, top=0.75, bottom=0.65, wspace=0.22)
    x = np.arange(len(table))
    for ax, task, color in ((axes[0], "purchase", "#2ca02c"), (axes[1], "churn", "#d62728")):
        enough = (table[f"{task}_rows"] >= min_rows).to_numpy()   # a few rows give an interval as tall as the axis
        _percent_errorbar(ax, x[enough], table[enough], task, color)
        for xi, n, ok in zip(x, table[f"{task}_rows"], enough, strict=True):
            ax.annotate(f"n={int(n):,}" if ok else f"n={int(n):,}\n(too few)", (xi, 0), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=7, color="grey")
        ax.set_xticks(x, table["contacts"])
        ax.set_xlabel(f"company-initiated contacts in the previous {window_days} days (count)")
        ax.set_ylabel(f"% {'purchased' if task == 'purchase' else 'churned'} within {horizons[task]} days")
        ax.set_title(f"later {task} rate (95% interval)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle("Dose-response (seed 000): does more company contact go with more purchases / less churn?")
    return fig


def plot_cohorts(table: pd.DataFrame, *, mode: str, cohort_by: str) -> Figure:
    """Cohort heat map: % of each cohort active, by months since it joined."""
    wide = table.pivot(index="cohort", columns="months_since", values="rate")
    n_rows = max(len(wide), 1)
    fig = _figure(11.0, min(2.0 + 0.22 * n_rows, 11.0))
    ax = fig.add_subplot()
    _margins(fig, left=1.15, right=1.45, top=0.45, bottom=0.65)
    values = np.ma.masked_invalid(100 * wide.to_numpy(dtype=float))
    cmap = ListedColormap(colormaps["YlGnBu"](np.linspace(0.05, 1, 256))).with_extremes(bad="#f2f2f2")
    low = float(np.floor(values.min() / 10) * 10) if values.count() else 0.0   # contrast where the data are
    image = ax.imshow(values, aspect="auto", cmap=cmap, vmin=min(low, 90.0), vmax=100, interpolation="nearest")
    ax.set_xticks(np.arange(wide.shape[1]), [str(c) for c in wide.columns], fontsize=7)
    step = max(1, n_rows // 30)
    ax.set_yticks(np.arange(0, n_rows, step), list(wide.index)[::step], fontsize=7)
    joined = "first purchase" if cohort_by == "first_purchase" else "first touch"
    ax.set_xlabel(f"months since the cohort month ({joined}); 0 = the cohort's own month")
    ax.set_ylabel(f"cohort (month of {joined})")
    box = ax.get_position()
    cax = fig.add_axes((box.x1 + 0.25 / 11.0, box.y0, 0.2 / 11.0, box.height))   # room for its label on the right
    fig.colorbar(image, cax=cax, label="% of the cohort active at the month's end")
    what = "active subscribers" if mode == "contractual" else "active in the lookback"
    ax.set_title(f"Cohort retention, {mode.replace('_', '-')} ({what}); grey = month not over yet")
    return fig


def plot_retention_by_month(tables: list[pd.DataFrame]) -> Figure:
    """Monthly retention rate: of the customers active at a month's start, % still active at its end."""
    fig = _figure(9.0, 3.6)
    ax = fig.add_subplot()
    _margins(fig, left=0.85, top=0.45, bottom=0.6)
    for table in tables:
        ax.plot(pd.to_datetime(table["month"]), 100 * table["rate"], marker=".",
                label=table["mode"].iloc[0].replace("_", "-") if len(table) else "")
    ax.set_xlabel("month (local calendar)")
    ax.set_ylabel("% still active at month end")
    ax.set_title("Retention rate per month (seed 004)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_timeline(timeline: Timeline, customer_id: str, *, segment: str | None = None, stage: str | None = None) -> Figure:
    """One customer's temperatures, touches by type and alarms over time (seed 002)."""
    temps = timeline.temperatures[timeline.temperatures["customer_id"] == customer_id]
    touches = timeline.touches[timeline.touches["customer_id"] == customer_id]
    alarms = timeline.alarms[timeline.alarms["customer_id"] == customer_id]
    lines = timeline.lines
    types = [t for t in dict.fromkeys(touches["touchpoint"])]
    fig = _figure(11.0, 7.5 + 0.12 * len(types))
    top, mid, low = fig.subplots(3, 1, sharex=True, height_ratios=[3, 1.2 + 0.08 * len(types), 1.6])
    _margins(fig, left=1.2, top=0.45, bottom=0.6, hspace=0.16)
    tz = timeline.timezone
    at = temps["at"].dt.tz_convert(tz).dt.tz_localize(None)
    palette = ["#444444", "#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for curve, color in zip(timeline.curves, palette, strict=False):
        top.plot(at, temps[curve.name], color=color, lw=1.4,
                 label=f"{curve.name} (half-life {curve.half_life_days:g} d)")
    cool_color = palette[[c.name for c in timeline.curves].index(lines.cooling_curve)]
    if np.isfinite(lines.cold):
        top.axhline(lines.cold, color=cool_color, ls="--", lw=1,
                    label=f"cold line {lines.cold:.1f} on '{lines.cooling_curve}'")
    by_time = temps.set_index(at)
    for kind, marker, color, curve in (("kizashi", "^", "#2ca02c", lines.kizashi_curve),
                                       ("cooling", "v", "#d62728", lines.cooling_curve)):
        when = alarms.loc[alarms["alarm"] == kind, "at"].dt.tz_convert(tz).dt.tz_localize(None)
        if len(when):
            top.scatter(when, by_time.loc[when, curve], marker=marker, s=70, color=color, zorder=4,
                        edgecolor="black", label=f"{kind} alarm ({len(when)})")
    top.set_ylabel("temperature (points)")
    top.grid(alpha=0.3)
    top.legend(fontsize=7, loc="upper left")
    where = " / ".join(x for x in (segment and f"segment {segment}", stage and f"stage {stage}") if x)
    top.set_title(f"Temperature timeline of customer {customer_id} up to {timeline.as_of.tz_convert(tz):%Y-%m-%d}"
                  + (f" ({where})" if where else ""))
    for i, name in enumerate(types):
        one = touches[touches["touchpoint"] == name]
        mid.scatter(one["ts"].dt.tz_convert(tz).dt.tz_localize(None), np.full(len(one), i), marker="|", s=90,
                    color=_INITIATOR_COLORS.get(one["initiated_by"].iloc[0], "black"))
    mid.set_yticks(np.arange(len(types)), types, fontsize=7)
    mid.set_ylim(-0.7, max(len(types), 1) - 0.3)
    mid.set_ylabel("touch (type)")
    mid.set_title("touches: blue = customer-initiated, orange = company-initiated", fontsize=9)
    mid.grid(axis="x", alpha=0.3)
    low.plot(at, temps["rise"], color="#2ca02c", lw=1)
    low.axhline(lines.surge, color="#2ca02c", ls="--", lw=1, label=f"kizashi line {lines.surge:.1f}")
    low.set_ylabel(f"{lines.surge_days}-day rise (points)")
    low.set_xlabel(f"date ({tz})")
    low.set_title(f"rise of '{lines.kizashi_curve}' over {lines.surge_days} days", fontsize=9)
    low.grid(alpha=0.3)
    low.legend(fontsize=7, loc="upper left")
    return fig


def plot_conversion(transitions: pd.DataFrame, *, days: int, counts: pd.Series) -> Figure:
    """Stage sizes today and the stage-to-stage transition matrix within ``days``."""
    fig = _figure(11.0, 4.6)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.3])
    _margins(fig, left=1.25, right=0.1, top=0.75, bottom=0.95, wspace=0.5)
    y = np.arange(len(STAGES))
    values = counts.reindex(list(STAGES)).fillna(0).to_numpy()
    left.barh(y, values, color="#1f77b4")
    for yi, n in zip(y, values, strict=True):
        left.annotate(f"{int(n):,}", (n, yi), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8)
    left.set_xlim(0, max(values.max(), 1) * 1.15)
    left.set_yticks(y, list(STAGES))
    left.invert_yaxis()
    left.set_xlabel("customers (count)")
    left.set_title("customers per journey stage today")
    wide = transitions.pivot(index="from", columns="to", values="share").reindex(index=list(STAGES),
                                                                               columns=list(STAGES))
    matrix = 100 * wide.to_numpy(dtype=float)
    image = right.imshow(np.ma.masked_invalid(matrix), cmap="Blues", vmin=0, vmax=100)
    for i in range(len(STAGES)):
        for j in range(len(STAGES)):
            if np.isfinite(matrix[i, j]):
                right.text(j, i, f"{matrix[i, j]:.0f}", ha="center", va="center", fontsize=7,
                           color="white" if matrix[i, j] > 60 else "black")
    right.set_xticks(y, list(STAGES), rotation=30, fontsize=8)
    right.set_yticks(y, list(STAGES), fontsize=8)
    right.set_xlabel(f"stage {days} days later")
    right.set_ylabel("stage at the cutoff")
    right.set_title(f"where customers are {days} days later (% of each row)")
    fig.colorbar(image, ax=right, label="% of the row's customers")
    fig.suptitle("Customer journey (seed 001): stages and conversion")
    return fig
