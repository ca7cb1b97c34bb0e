"""Figures of a training run, as matplotlib ``Figure`` objects (no pyplot state, no GUI backend).

Each function takes the tables of :class:`signals.modeling.training.TrainedTask` and returns a
figure; :func:`save_figure` writes it as PNG. ``signals train`` (:mod:`signals.jobs.train`) saves
them in the model bundle's ``figures/`` folder; nothing logs them to MLflow yet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["plot_calibration", "plot_gains", "plot_half_life", "plot_metrics", "plot_metrics_by_origin", "plot_points",
           "plot_points_over_time", "plot_score_distribution", "save_figure"]

_COLORS = {"lightgbm": "#1f77b4", "learned_temperature": "#d62728", "logistic_regression": "#2ca02c",
           "prior_temperature": "#ff7f0e", "rfm": "#7f7f7f", "falling_frequency": "#9467bd"}


def _figure(width: float = 7.5, height: float = 4.5) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path


def plot_points(points: pd.DataFrame, *, task: str, truth: dict[str, float] | None = None) -> Figure:
    """The learned points table as bars: each type's **own** points with their refit interval, next
    to the prior points; the shared part ("a touch happened") and the total as markers. Types
    without points (outside the task's population or the training data) read "n/a"."""
    if "own_points" not in points:  # a table of an older bundle: total effects, intervals with the model fixed
        points = points.assign(own_points=points["learned_points"], own_points_refit_low=points.get("low", np.nan),
                               own_points_refit_high=points.get("high", np.nan), shared_points=np.nan,
                               total_points=np.nan, status="defined", interval="customers resampled, model fixed")
    table = points.assign(_order=points["own_points"].fillna(-np.inf)).sort_values("_order")
    y = np.arange(len(table))
    fig = _figure(8.0, 0.4 * len(table) + 2.6)
    ax = fig.add_subplot()
    ax.barh(y - 0.2, table["prior_points"], height=0.38, color="#bbbbbb", label="prior points (hand-set)")
    own = table["own_points"].to_numpy(dtype=float)
    low, high = table["own_points_refit_low"].to_numpy(dtype=float), table["own_points_refit_high"].to_numpy(dtype=float)
    err = np.vstack([own - low, high - own])
    err = np.where(np.isfinite(err), err, 0.0)
    interval = str(table["interval"].iloc[0]) if "interval" in table and len(table) else "none"
    ax.barh(y + 0.2, np.nan_to_num(own), height=0.38, color=_COLORS["lightgbm"], xerr=err, capsize=2,
            label="learned points, own effect" + (f" ({interval})" if interval != "none" else " (no interval)"))
    ax.scatter(table["shared_points"], y + 0.2, marker="|", color="#444444", s=80, zorder=3,
               label='shared part ("a touch happened")')
    ax.scatter(table["total_points"], y + 0.2, marker="x", color="#444444", s=25, zorder=3, label="total (own + shared)")
    for yi, (value, status) in enumerate(zip(own, table["status"], strict=True)):
        if not np.isfinite(value):
            ax.annotate(status, (0, yi + 0.2), textcoords="offset points", xytext=(4, -3), fontsize=7, color="#aa0000")
    if truth:
        shown = np.nansum(np.abs([v for t, v in zip(table["touchpoint"], own, strict=True) if t in truth]))
        ratio = shown / max(np.nansum(np.abs(list(truth.values()))), 1e-12)
        xs = [truth.get(t, np.nan) * ratio for t in table["touchpoint"]]
        ax.scatter(xs, y + 0.2, marker="D", color="black", zorder=4, s=18, label="true weight (same total scale)")
    ax.set_yticks(y, table["touchpoint"])
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel("points per touch, now: the type's own effect" + (" (positive = lowers churn risk)" if task == "churn" else ""))
    ax.set_title(f"{task}: learned points (haiten), own effect of one more touch, vs prior points")
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, fontsize=7)
    return fig


def plot_metrics(metrics: pd.DataFrame, *, task: str, metric: str = "roc_auc") -> Figure:
    """One metric for every model with its bootstrap interval."""
    table = metrics[metrics["metric"] == metric].sort_values("estimate")
    fig = _figure(7.0, 0.45 * len(table) + 1.4)
    ax = fig.add_subplot()
    y = np.arange(len(table))
    err = np.vstack([table["estimate"] - table["low"], table["high"] - table["estimate"]])
    ax.errorbar(table["estimate"], y, xerr=err, fmt="o", capsize=3, color="black")
    for yi, value in enumerate(table["estimate"]):
        ax.annotate(f"{value:.3f}", (value, yi), textcoords="offset points", xytext=(6, 6), fontsize=8)
    ax.set_yticks(y, table["model"])
    ax.set_xlabel(f"{metric} on the test cutoffs, mean over backtest origins (95% interval over origins x customers)")
    ax.set_title(f"{task}: model vs baselines")
    return fig


def plot_metrics_by_origin(by_origin: pd.DataFrame, *, task: str, models: list[str], metric: str = "roc_auc") -> Figure:
    """One metric per backtest origin for each model, with its bootstrap interval over customers."""
    table = by_origin[by_origin["metric"] == metric]
    fig = _figure(7.5, 4.5)
    ax = fig.add_subplot()
    origins = sorted(table["origin"].unique())
    x = np.arange(len(origins))
    for i, model in enumerate(models):
        rows = table[table["model"] == model].set_index("origin").reindex(origins)
        if rows["estimate"].isna().all():
            continue
        shift = (i - len(models) / 2) * 0.04
        err = np.vstack([rows["estimate"] - rows["low"], rows["high"] - rows["estimate"]])
        ax.errorbar(x + shift, rows["estimate"], yerr=np.where(np.isfinite(err), err, 0.0), marker="o", capsize=2,
                    label=model, color=_COLORS.get(model))
    ax.set_xticks(x, [f"{pd.Timestamp(o):%Y-%m-%d}" for o in origins])
    ax.set_xlabel("backtest origin (first test cutoff)")
    ax.set_ylabel(f"{metric} (95% bootstrap interval over customers)")
    ax.set_title(f"{task}: model vs baselines at each origin")
    ax.legend(fontsize=7)
    return fig


def plot_gains(scores: pd.DataFrame, *, task: str, models: list[str]) -> Figure:
    """Cumulative gains: share of positives found when contacting the top x% by each score."""
    fig = _figure()
    ax = fig.add_subplot()
    y = scores["label"].to_numpy()
    grid = np.linspace(0, 1, 101)
    for model in models:
        order = np.argsort(-scores[f"score__{model}"].to_numpy(), kind="stable")
        found = np.concatenate([[0], np.cumsum(y[order])]) / max(y.sum(), 1)
        share = np.linspace(0, 1, len(found))
        ax.plot(grid, np.interp(grid, share, found), label=model, color=_COLORS.get(model))
    ax.plot([0, 1], [0, 1], color="black", lw=0.8, ls="--", label="random")
    ax.axvline(0.1, color="grey", lw=0.6, ls=":")
    ax.set_xlabel("share of customers contacted (highest scores first)")
    ax.set_ylabel(f"share of {task} positives found")
    ax.set_title(f"{task}: cumulative gains on the test cutoffs")
    ax.legend(fontsize=8)
    return fig


def plot_calibration(scores: pd.DataFrame, *, task: str, models: list[str], n_bins: int = 10) -> Figure:
    """Reliability diagram: mean predicted probability vs observed rate, in bins of equal count."""
    fig = _figure(6.0, 5.0)
    ax = fig.add_subplot()
    y = scores["label"].to_numpy()
    top = 0.0
    for model in models:
        prob = scores[f"prob__{model}"].to_numpy()
        order = np.argsort(prob, kind="stable")
        bins = np.array_split(order, n_bins)
        px = [prob[b].mean() for b in bins if len(b)]
        py = [y[b].mean() for b in bins if len(b)]
        top = max(top, max(px), max(py))
        ax.plot(px, py, marker="o", label=model, color=_COLORS.get(model))
    ax.plot([0, top], [0, top], color="black", lw=0.8, ls="--", label="perfect")
    ax.set_xlabel("predicted probability (bin mean)")
    ax.set_ylabel("observed rate")
    ax.set_title(f"{task}: calibration on the test cutoffs")
    ax.legend(fontsize=8)
    return fig


def plot_half_life(table: pd.DataFrame, *, task: str, chosen: float, true_half_life: float | None = None) -> Figure:
    """Validation ROC AUC of the learned-points temperature for each candidate half-life."""
    fig = _figure(6.0, 3.8)
    ax = fig.add_subplot()
    ax.plot(table["half_life_days"], table["roc_auc"], marker="o")
    ax.axvline(chosen, color=_COLORS["learned_temperature"], ls="--", label=f"chosen: {chosen:g} days")
    if true_half_life:
        ax.axvline(true_half_life, color="black", ls=":", label=f"simulator truth: {true_half_life:g} days")
    ax.set_xlabel("temperature half-life (days)")
    ax.set_ylabel("validation ROC AUC")
    ax.set_title(f"{task}: learning the temperature half-life")
    ax.legend(fontsize=8)
    return fig


def plot_score_distribution(signals: pd.DataFrame) -> Figure:
    """Histogram of the scored probabilities per task, alarmed customers highlighted (log count axis)."""
    tasks = sorted(signals["task"].unique())
    fig = _figure(5 * len(tasks), 3.5)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for ax, task in zip(axes, tasks, strict=True):
        part = signals[signals["task"] == task]
        bins = np.linspace(0, max(float(part["score"].max()), 1e-6), 40)
        ax.hist(part["score"], bins=bins, color="#9ab", label="all customers")
        alarmed = part[part["alarm"].notna()]
        if len(alarmed):
            ax.hist(alarmed["score"], bins=bins, color="#c33", label=f"{alarmed['alarm'].iloc[0]} ({len(alarmed):,})")
        ax.set_yscale("log")
        ax.set_title(f"{task}: {len(part):,} customers")
        ax.set_xlabel("calibrated probability")
        ax.legend(fontsize=8)
    return fig


def plot_points_over_time(history: pd.DataFrame, *, truth: dict | None = None,
                          touchpoints: list[str] | None = None) -> Figure:
    """Learned points per touchpoint at each retrain: one small panel per (task, touchpoint).

    ``history`` has ``as_of``, ``task``, ``touchpoint``, ``points`` and optionally an interval
    (``low`` / ``high``) and ``truth_regime`` (``before`` / ``after``: which side of the behaviour
    shift most of the retrain's training cutoffs lie on). With ``truth`` (the simulator's), a dashed
    step shows the true weight of that regime at each retrain, so a learned line should follow it
    once the rolling window has moved past the shift. True weights are log-odds; they are drawn on
    the points scale with one factor per task (the mean over the retrains of
    ``sum |learned| / sum |true|`` over the types the truth defines), churn weights negated like the
    points (a touch that lowers churn risk earns points).
    """
    tasks = list(dict.fromkeys(history["task"]))
    shift = pd.Timestamp(truth["shift_date"], tz="UTC") if truth and truth.get("shift_date") else None
    per_task = {}
    for task in tasks:
        weights = (truth or {}).get("weights", {}).get(task)
        part = history[history["task"] == task]
        per_task[task] = touchpoints or (list(weights.get("before", weights)) if weights
                                         else list(dict.fromkeys(part["touchpoint"])))
    n_cols = 5
    n_rows = sum(-(-len(types) // n_cols) for types in per_task.values())
    fig = _figure(2.6 * n_cols, 2.1 * n_rows + 0.6)
    grid = fig.add_gridspec(n_rows, n_cols)
    row = 0
    low_col, high_col = next(((lo, hi) for lo, hi in (("own_points_refit_low", "own_points_refit_high"),
                                                       ("low", "high")) if lo in history.columns), (None, None))
    for task in tasks:
        part = history[history["task"] == task].copy()
        part["as_of"] = pd.to_datetime(part["as_of"], utc=True)
        types = per_task[task]
        weights = (truth or {}).get("weights", {}).get(task)
        sign = -1.0 if task == "churn" else 1.0
        dates = sorted(part["as_of"].unique())
        regimes = None
        if weights:
            if "truth_regime" in part.columns:
                regimes = part.groupby("as_of")["truth_regime"].first().reindex(dates).fillna("before").tolist()
            else:
                regimes = ["after" if shift is not None and d >= shift else "before" for d in dates]
            wide = part.pivot_table(index="as_of", columns="touchpoint", values="points").reindex(dates)
            learned_abs = wide[[t for t in types if t in wide.columns]].abs().sum(axis=1).to_numpy()
            true_abs = np.array([sum(abs(weights.get(r, weights).get(t, 0.0)) for t in types) for r in regimes])
            factor = float(np.nanmean(learned_abs / np.maximum(true_abs, 1e-12)))
        axes = []
        for k, tp in enumerate(types):
            ax = fig.add_subplot(grid[row + k // n_cols, k % n_cols], sharey=axes[0] if axes else None)
            axes.append(ax)
            line = part[part["touchpoint"] == tp].sort_values("as_of")
            ax.plot(line["as_of"], line["points"], marker="o", ms=2.5, color=_COLORS["lightgbm"], lw=1.2,
                    label="learned points")
            if low_col is not None and line[low_col].notna().any():
                ax.fill_between(line["as_of"], line[low_col], line[high_col], color=_COLORS["lightgbm"], alpha=0.15,
                                lw=0, label="interval")
            if regimes is not None:
                values = [sign * weights.get(r, weights).get(tp, np.nan) * factor for r in regimes]
                ax.plot(dates, values, drawstyle="steps-mid", ls="--", color="black", lw=1,
                        label="true weight (scaled)")
            if shift is not None and dates and dates[0] <= shift <= dates[-1]:
                ax.axvline(shift, color="grey", lw=0.8, ls=":")
            ax.axhline(0, color="black", lw=0.4)
            ax.set_title(f"{task}: {tp}", fontsize=8)
            ax.tick_params(labelsize=6)
            ax.tick_params(axis="x", labelrotation=45)
        if axes:
            axes[0].legend(fontsize=6, loc="best")
        row += -(-len(types) // n_cols)
    caption = "learned points per touch at each retrain (x: as-of date)"
    if truth:
        caption += ("; dashed: the true weight of the regime most of the training window lies in, on the points "
                    "scale; dotted: the behaviour shift")
    fig.suptitle(caption, fontsize=9)
    return fig
