"""The one-page report a sales manager reads: every view of the seeds, as self-contained HTML.

:func:`build_report` computes the views on a :class:`~signals.views._history.History` and returns a
:class:`Report`: the HTML text (figures inlined as base64 PNG, styles inline, no script, no link
to anything outside the page, so it opens offline and can be mailed or logged as one artifact),
the figures and tables it shows, and the key figures as a dict. It reads and writes no files:
:mod:`signals.jobs.report` loads the inputs (events, trained bundles, scores) and writes the page.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import yaml

from signals.modeling.plots import plot_points
from signals.schemas import CUSTOMER_ID
from signals.views._contact import contact_rate_table, dose_response
from signals.views._history import History, Rows, evidence_horizon_days, evidence_split
from signals.views._journey import (
    STAGES,
    journey_map,
    stage_conversion,
    stage_rows,
    stage_transitions,
)
from signals.views._retention import MODES, cohort_retention, retention_months
from signals.views._segments import (
    SEGMENTS,
    choose_segment_thresholds,
    segment_evidence,
    segment_rows,
)
from signals.views._timeline import (
    Curve,
    alarm_lines,
    current_alarms,
    default_curves,
    population,
    timeline,
)
from signals.views.plots import (
    plot_cohorts,
    plot_contact_rate,
    plot_conversion,
    plot_dose_response,
    plot_retention_by_month,
    plot_segments,
    plot_timeline,
    png_bytes,
)

__all__ = ["LearnedModel", "Report", "build_report", "pick_timeline_customers"]


@dataclass(frozen=True)
class LearnedModel:
    """A trained model's learned points table (``models/<task>/points.csv``) and temperature half-life."""

    task: str
    points: pd.DataFrame
    half_life_days: float
    source: str = ""

    @property
    def curve(self) -> Curve:
        points = dict(zip(self.points["touchpoint"], self.points["learned_points"], strict=True))
        return Curve(f"learned ({self.task})", points, float(self.half_life_days), self.task)


@dataclass
class Report:
    """The page and what is on it."""

    html: str
    figures: dict[str, bytes] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


# ---- formatting ---------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK JP",sans-serif;
margin:0 auto;max-width:1180px;padding:0 24px 48px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin:24px 0 4px}h2{border-bottom:2px solid #1f77b4;padding-bottom:4px;margin-top:40px}
h3{margin-top:24px}.meta{color:#555}.note{background:#f6f8fa;border-left:4px solid #1f77b4;padding:8px 12px}
.warn{background:#fff8e6;border-left:4px solid #e6a700;padding:8px 12px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}th,td{padding:3px 8px;border-bottom:1px solid #ddd;
text-align:right;white-space:nowrap}th{background:#f0f3f7}.l{text-align:left}
figure{margin:12px 0 24px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:13px}nav ol{columns:2}code{background:#f3f3f3;padding:0 3px}\npre{font-size:12px;background:#f6f8fa;padding:8px}.scroll{overflow-x:auto}
"""


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value, kind: str = "") -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pts":
        return f"{value:+.1f}" if value < 0 else f"{value:.1f}"
    if isinstance(value, float | np.floating):
        return f"{value:.3g}"
    return str(value)


def _interval(rate, low, high) -> str:
    return f"{_fmt(rate, 'pct')} [{_fmt(low, 'pct')}, {_fmt(high, 'pct')}]"


_NUMBER = re.compile(r"^[-+–\d.,%\[\] ]*$")


def _html_table(frame: pd.DataFrame) -> str:
    """A plain table; text columns align left, number columns right."""
    left = [not all(_NUMBER.match(str(v)) for v in frame[c]) for c in frame.columns]
    def cell(tag: str, value, is_left: bool) -> str:
        return f'<{tag} class="l">{_esc(value)}</{tag}>' if is_left else f"<{tag}>{_esc(value)}</{tag}>"
    head = "".join(cell("th", c, is_left) for c, is_left in zip(frame.columns, left, strict=True))
    body = "".join("<tr>" + "".join(cell("td", v, is_left) for v, is_left in zip(row, left, strict=True)) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _rate_columns(table: pd.DataFrame, tasks: Mapping[str, str]) -> dict[str, list[str]]:
    return {label: [_interval(r, lo, hi) if n else "–" for r, lo, hi, n in
                    zip(table[f"{t}_rate"], table[f"{t}_low"], table[f"{t}_high"], table[f"{t}_rows"], strict=True)]
            for t, label in tasks.items()}


class _Page:
    def __init__(self) -> None:
        self.parts: list[str] = []
        self.figures: dict[str, bytes] = {}
        self.toc: list[tuple[str, str]] = []

    def section(self, anchor: str, title: str) -> None:
        self.toc.append((anchor, title))
        self.parts.append(f'<h2 id="{_esc(anchor)}">{_esc(title)}</h2>')

    def add(self, text: str) -> None:
        self.parts.append(text)

    def para(self, text: str, cls: str = "") -> None:
        self.parts.append(f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>")

    def figure(self, name: str, fig, caption: str) -> None:
        data = png_bytes(fig)
        self.figures[name] = data
        alt = fig.texts[0].get_text() if fig.texts else (fig.axes[0].get_title() if fig.axes else name)
        self.parts.append(
            f'<figure id="fig-{_esc(name)}"><img alt="{_esc(alt)}" data-figure="{_esc(name)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}">'
            f"<figcaption>{caption}</figcaption></figure>")


# ---- the report ---------------------------------------------------------------------------------


def pick_timeline_customers(table: pd.DataFrame, segments_today: pd.DataFrame, n: int, *,
                            cooling_column: str) -> list[str]:
    """Up to ``n`` telling customers: the sharpest current rise (kizashi), the coldest active customer
    (cooling, on ``cooling_column`` of ``table``), the busiest nurture customer, then the next
    sharpest rises. ``table`` is :func:`signals.views._timeline.population`."""
    picks: list[str] = []

    def take(ids) -> None:
        for cid in ids:
            if len(picks) < n and cid not in picks:
                picks.append(cid)
                return

    by_rise = table.sort_values(["rise", CUSTOMER_ID], ascending=[False, True])[CUSTOMER_ID].tolist()
    take(by_rise)
    active = table[table["active"]]
    if len(active):
        take(active.sort_values([cooling_column, CUSTOMER_ID])[CUSTOMER_ID])
    nurture = segments_today[segments_today["segment"] == "nurture"]
    take(nurture.sort_values(["contacts_recent", CUSTOMER_ID], ascending=[False, True])[CUSTOMER_ID])
    for cid in by_rise:
        take([cid])
    return picks


def build_report(
    history: History,
    *,
    learned: Mapping[str, LearnedModel] | None = None,
    learned_missing: Mapping[str, str] | None = None,
    scores: pd.DataFrame | None = None,
    scores_note: str = "",
    timeline_ids: list[str] | None = None,
    config_name: str = "",
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Compute every view on ``history`` and lay them out as one self-contained HTML page.

    Parameters
    ----------
    learned : trained models by task (learned points next to the priors, learned temperatures)
    learned_missing : for tasks without a model, why (shown instead of the points)
    scores : the scoring job's rows (``customer_id, task, alarm`` and optionally ``as_of, score,
        probability, reason_1..3``); the top alarms are listed when given
    scores_note : where scores were looked for (shown when there are none)
    timeline_ids : customers to draw (default: :func:`pick_timeline_customers`)
    """
    s, v = history.settings, history.settings.views
    learned = dict(learned or {})
    note = progress or (lambda message: None)
    page = _Page()
    tables: dict[str, pd.DataFrame] = {}
    summary: dict = {"as_of": history.as_of.isoformat(), "timezone": s.timezone}
    horizons = {"purchase": s.labels.purchase.horizon_days, "churn": s.labels.churn.horizon_days}
    local_as_of = history.as_of.tz_convert(s.timezone)
    as_of_text = f"{local_as_of:%Y-%m-%d %H:%M} {s.timezone}"

    note("cutoff grid and outcomes")
    fit_rows, evidence_rows = evidence_split(history)
    evidence_outcomes = history.outcomes(evidence_rows)
    known = history.known
    idx = history.index

    def span(rows: Rows) -> str:
        if len(rows) == 0:
            return "none"
        stamps = pd.DatetimeIndex(np.unique(rows.cutoff)).tz_localize("UTC").tz_convert(s.timezone)
        return f"{stamps[0]:%Y-%m-%d} .. {stamps[-1]:%Y-%m-%d} ({len(stamps)} cutoffs, {len(rows):,} rows)"

    summary.update(customers=int(len(known)), events=int(idx.n_events), fit_cutoffs=span(fit_rows),
                   evidence_cutoffs=span(evidence_rows))

    # ---- 1. segments ----------------------------------------------------------------------------
    note("segments (seed 003)")
    rule = v.segments
    today_rows = history.rows_at()
    today = segment_rows(history, today_rows, rule)
    tables["segments_today"] = today
    page.section("segments", "1. Contact-frequency segments (seed 003)")
    page.para(
        f"A <b>contact</b> is any touch except {', '.join(map(_esc, v.ignore_touchpoints)) or 'none'} (mass "
        f"mailings are not an exchange). Frequency = contacts in the last {rule.window_days} days. Rules, first "
        f"match wins: <b>new</b> first seen under {rule.new_days} days ago; <b>nurture</b> at least "
        f"{rule.nurture_min_contacts} contacts (a good-customer candidate); <b>stop_spending</b> never more than "
        f"{rule.stop_max_peak_contacts} contacts in any {rule.window_days} days since the first one (frequency "
        f"never rose: stop spending effort); <b>follow_up</b> (contacts last {rule.window_days} days + 1) / "
        f"(the {rule.window_days} days before + 1) at most {rule.follow_up_max_ratio:g} (thinning: follow up); "
        f"<b>steady</b> the rest.")
    counts = today["segment"].value_counts().reindex(list(SEGMENTS)).fillna(0)
    seg_table = pd.DataFrame({
        "segment": list(SEGMENTS),
        "customers": [_fmt(c, "int") for c in counts],
        "share": [_fmt(c / max(counts.sum(), 1), "pct") for c in counts],
        f"mean contacts, last {rule.window_days} d": [
            _fmt(today.loc[today["segment"] == g, "contacts_recent"].mean()) for g in SEGMENTS],
    })
    page.add(f"<h3>Segments at {as_of_text}</h3>" + _html_table(seg_table))

    page.add("<h3>Thresholds: configured vs chosen on training cutoffs</h3>")
    if len(fit_rows):
        chosen, candidates = choose_segment_thresholds(history, fit_rows)
        tables["threshold_candidates"] = candidates
        keys = ("nurture_min_contacts", "stop_max_peak_contacts", "follow_up_max_ratio")
        picked = candidates[candidates["chosen"]].set_index("rule")
        page.add(_html_table(pd.DataFrame({
            "threshold (views.segments.*)": keys,
            "configured (used here)": [f"{getattr(rule, k):g}" for k in keys],
            "chosen on this data's training cutoffs": [f"{getattr(chosen, k):g}" for k in keys],
            "segment share there": [_fmt(picked.loc[k, "share"], "pct") if k in picked.index else "–" for k in keys],
            "z (segment vs rest)": [_fmt(picked.loc[k, "z"]) if k in picked.index else "–" for k in keys],
        })))
        page.para(f"Training cutoffs {span(fit_rows)}: each threshold is the one whose segment (kept between "
                  f"{_fmt(rule.min_share, 'pct')} and {_fmt(rule.max_share, 'pct')} of the customers old enough to "
                  "judge) differs most from the rest in later purchases (nurture up, stop_spending down) or churn "
                  "(follow_up up). To use them, set them in the config; the evidence below is measured on later "
                  "cutoffs the choice never saw.", "meta")
        summary["thresholds_chosen"] = {k: getattr(chosen, k) for k in keys}
    else:
        page.para("The history is too short for training cutoffs before the evidence cutoffs: no threshold "
                  "search.", "warn")
    summary["thresholds_used"] = {k: getattr(rule, k) for k in ("nurture_min_contacts", "stop_max_peak_contacts",
                                                                 "follow_up_max_ratio")}

    evidence = segment_evidence(history, evidence_rows, rule, evidence_outcomes)
    tables["segment_evidence"] = evidence
    page.add("<h3>Evidence: what each segment did next (out-of-time cutoffs)</h3>")
    shown = pd.DataFrame({"segment": evidence["segment"], "rows": [_fmt(x, "int") for x in evidence["rows"]],
                          "customers": [_fmt(x, "int") for x in evidence["customers"]]})
    for label, values in _rate_columns(evidence, {
            "purchase": f"purchase within {horizons['purchase']} d [95%]",
            "churn": f"churn within {horizons['churn']} d [95%]"}).items():
        shown[label] = values
    page.add(_html_table(shown))
    verdict = _segment_verdict(evidence)
    summary["segment_verdict"] = verdict
    page.para(f"Cutoffs {span(evidence_rows)}. Purchase: among customers with no purchase in the previous "
              f"{s.labels.purchase.quiet_days} days; churn: among active customers ({s.labels.churn.mode.replace('_', '-')}). "
              "Intervals: 95% Wilson at the effective sample size of customers seen at several cutoffs. "
              f"<b>{_esc(verdict['text'])}</b>", "note")
    page.figure("segments", plot_segments(evidence, counts, as_of=f"{local_as_of:%Y-%m-%d}", horizons=horizons),
                "Left: customers per segment today. Middle and right: later purchase and churn rates per segment on "
                "the out-of-time cutoffs, with 95% intervals.")

    # ---- 2. contact rate and dose-response --------------------------------------------------------
    note("contact rate and dose-response (seed 000)")
    rate = contact_rate_table(history)
    tables["contact_rate"] = rate
    page.section("contact", "2. Contact rate and dose-response (seed 000)")
    page.para("Contact rate: of the customers first seen before a month started, the share touched at least once "
              "in that month (every touch counts, newsletters included), overall, by channel and by who initiated it.")
    if len(rate):
        page.figure("contact_rate", plot_contact_rate(rate), "Share of customers touched per complete month "
                    "(local calendar), by channel (left) and by initiator (right); black = any touch.")
        recent = rate[rate["by"].isin(["all", "initiator"])].pivot(index="month", columns="group", values="share")
        recent = recent.tail(6)
        page.add("<h3>Last six months</h3>" + _html_table(pd.DataFrame(
            {"month": recent.index, **{g: [_fmt(x, "pct") for x in recent[g]] for g in recent.columns}})))
    dose = dose_response(history, evidence_rows, evidence_outcomes)
    tables["dose_response"] = dose
    window = v.contact.dose_window_days
    page.add(f"<h3>Dose-response: company-initiated contacts in the previous {window} days</h3>")
    shown = pd.DataFrame({"contacts": dose["contacts"], "rows": [_fmt(x, "int") for x in dose["rows"]],
                          "customers": [_fmt(x, "int") for x in dose["customers"]]})
    for label, values in _rate_columns(dose, {
            "purchase": f"purchase within {horizons['purchase']} d [95%]",
            "churn": f"churn within {horizons['churn']} d [95%]"}).items():
        shown[label] = values
    page.add(_html_table(shown))
    dose_text = _dose_verdict(dose)
    summary["dose_verdict"] = dose_text
    page.para(f"Same out-of-time cutoffs and populations as the segment evidence; mass mailings "
              f"({', '.join(map(_esc, v.ignore_touchpoints)) or 'none'}) excluded. This is an association, not an "
              f"experiment: sales calls and visits go to the accounts sales already expects to buy. "
              f"<b>{_esc(dose_text)}</b>", "note")
    page.figure("dose_response", plot_dose_response(dose, window_days=window, horizons=horizons),
                "Later purchase (left) and churn (right) rate by company-initiated contacts in the previous "
                f"{window} days, with 95% intervals; n = eligible rows per bin.")

    # ---- 3. retention ------------------------------------------------------------------------------
    note("cohort retention (seed 004)")
    page.section("retention", "3. Retention and stickiness by cohort (seed 004)")
    cohort_by = v.retention.cohort
    page.para("A cohort is the month customers " + ("made their first purchase or renewal" if cohort_by ==
              "first_purchase" else "were first seen") + ". <b>Contractual</b> retention counts active subscribers "
              "(last contract event a purchase or renewal); <b>non-contractual</b> counts customers with a purchase or "
              f"renewal in the previous {v.retention.lookback_days or s.labels.churn.lookback_days} days. "
              f"The churn label of this configuration is {s.labels.churn.mode.replace('_', '-')}.")
    months = []
    for mode in (s.labels.churn.mode, *[m for m in MODES if m != s.labels.churn.mode]):
        cohorts = cohort_retention(history, mode)
        tables[f"cohorts_{mode}"] = cohorts
        if len(cohorts):
            page.figure(f"cohorts_{mode}", plot_cohorts(cohorts, mode=mode, cohort_by=cohort_by),
                        f"{mode.replace('_', '-').capitalize()} retention: % of each cohort active at the end of each "
                        "month since it joined.")
            pooled = cohorts.dropna(subset=["retained"]).groupby("months_since")[["retained", "cohort_size"]].sum()
            summary[f"retention_{mode}_12m"] = (float(pooled.loc[12, "retained"] / pooled.loc[12, "cohort_size"])
                                                if 12 in pooled.index else None)
        months.append(retention_months(history, mode))
        tables[f"retention_by_month_{mode}"] = months[-1]
    if any(len(m) for m in months):
        page.figure("retention_by_month", plot_retention_by_month(months),
                    "Of the customers active at the start of each month, the share still active at its end.")
        pooled_rows = []
        for mode in MODES:
            cohorts = tables.get(f"cohorts_{mode}")
            if cohorts is None or not len(cohorts):
                continue
            pooled = cohorts.dropna(subset=["retained"]).groupby("months_since")[["retained", "cohort_size"]].sum()
            for k in (1, 3, 6, 12, 24):
                if k in pooled.index:
                    pooled_rows.append({"variant": mode.replace("_", "-"), "months since": k,
                                        "cohorts observed": _fmt(pooled.loc[k, "cohort_size"], "int"),
                                        "retained": _fmt(pooled.loc[k, "retained"] / pooled.loc[k, "cohort_size"], "pct")})
        if pooled_rows:
            page.add("<h3>Retention after k months, all cohorts pooled</h3>" + _html_table(pd.DataFrame(pooled_rows)))

    # ---- 4. temperature timelines ------------------------------------------------------------------
    note("temperature timelines (seed 002)")
    page.section("temperature", "4. Temperature timelines (seed 002)")
    curves = default_curves(history, {t: m.curve for t, m in learned.items()})
    everyone = population(history, curves)
    lines = alarm_lines(history, curves, everyone)
    flagged = current_alarms(everyone, lines)
    summary["alarm_lines"] = {"kizashi_curve": lines.kizashi_curve, "surge": lines.surge,
                              "cooling_curve": lines.cooling_curve, "cold": lines.cold,
                              "kizashi_now": int(flagged["kizashi"].sum()), "cooling_now": int(flagged["cooling"].sum())}
    t = v.timeline
    page.para(
        "Each touch earns points that halve every half-life; the temperature is their sum. Curves: "
        + "; ".join(f"<b>{_esc(c.name)}</b> (half-life {c.half_life_days:g} days)" for c in curves)
        + f". <b>Kizashi line</b> ({lines.surge:.1f} points on '{_esc(lines.kizashi_curve)}'): a rise over "
        f"{t.surge_days} days that only {_fmt(1 - t.surge_quantile, 'pct')} of customers reach today. <b>Cold line</b> "
        f"({lines.cold:.1f} points on '{_esc(lines.cooling_curve)}'): the coldest {_fmt(t.cold_quantile, 'pct')} "
        f"of active customers today. Today {int(flagged['kizashi'].sum()):,} customers are at or above the kizashi "
        f"line and {int(flagged['cooling'].sum()):,} active customers below the cold line ({_esc(lines.source)}).")
    if not learned:
        page.para("No trained model found, so only the prior points are drawn (see section 6).", "warn")
    ids = timeline_ids if timeline_ids is not None else pick_timeline_customers(
        everyone, today, v.report.timeline_customers, cooling_column=lines.cooling_curve)
    if ids:
        drawn = timeline(history, ids, curves, lines)
        tables["timeline"] = drawn.temperatures
        tables["timeline_alarms"] = drawn.alarms
        seg_of = today.set_index(CUSTOMER_ID)["segment"].astype(str)
        stages_today = stage_rows(history, today_rows)
        stage_of = stages_today.set_index(CUSTOMER_ID)["stage"].astype(str)
        for k, cid in enumerate(ids, start=1):
            page.figure(f"timeline_{k}", plot_timeline(drawn, cid, segment=seg_of.get(cid),
                                                                         stage=stage_of.get(cid)),
                        f"Customer {_esc(cid)}: temperatures (top), every touch by type (middle), the "
                        f"{t.surge_days}-day rise with the kizashi line (bottom); triangles mark alarms.")
    else:
        stages_today = stage_rows(history, today_rows)

    # ---- 5. journey --------------------------------------------------------------------------------
    note("journey stages (seed 001)")
    j = v.journey
    page.section("journey", "5. Customer journey stages (seed 001)")
    page.para(
        f"Active customers: <b>purchase</b> if they bought in the last {j.purchase_days} days, else <b>at_risk</b> with "
        f"no contact in {j.at_risk_quiet_days} days, else <b>retention</b>. Everyone else is in the furthest stage "
        f"touched in the last {j.recent_days} days: <b>consideration</b> ({', '.join(map(_esc, j.consideration))}), "
        f"<b>interest</b> ({', '.join(map(_esc, j.interest))}), otherwise <b>awareness</b>.")
    tables["stages_today"] = stages_today
    stage_counts = stages_today["stage"].value_counts()
    transitions = stage_transitions(history, evidence_rows)
    conversion = stage_conversion(history, evidence_rows)
    tables["stage_transitions"], tables["stage_conversion"] = transitions, conversion
    page.figure("journey", plot_conversion(transitions, days=j.conversion_days, counts=stage_counts),
                f"Left: customers per stage at {local_as_of:%Y-%m-%d}. Right: stage {j.conversion_days} days after "
                "each out-of-time cutoff, % of the row.")
    page.add(f"<h3>Stage-to-stage conversion within {j.conversion_days} days (out-of-time cutoffs)</h3>")
    page.add(_html_table(pd.DataFrame({
        "stage": conversion["stage"], "converted means": conversion["meaning"],
        "rows": [_fmt(x, "int") for x in conversion["rows"]],
        "converted [95%]": [_interval(r, lo, hi) if n else "–" for r, lo, hi, n in
                            zip(conversion["rate"], conversion["low"], conversion["high"], conversion["rows"],
                                strict=True)]})))
    points_by_task = {task: dict(zip(m.points["touchpoint"], m.points["learned_points"], strict=True))
                      for task, m in learned.items()}
    jmap = journey_map(history, evidence_rows, points_by_task)
    tables["journey_map"] = jmap
    shown = pd.DataFrame({"touchpoint": jmap["touchpoint"], "channel": jmap["channel"], "by": jmap["initiated_by"],
                          "stage rule": jmap["journey_stage"],
                          "prior pts": [_fmt(x, "pts") for x in jmap["prior_points"]]})
    for task in points_by_task:
        shown[f"learned pts ({task})"] = [_fmt(x, "pts") for x in jmap[f"learned_{task}"]]
    for stage in STAGES:
        shown[stage] = [_fmt(x, "pct") for x in jmap[f"share__{stage}"]]
    page.add("<h3>Journey map: which touchpoints occur at which stage</h3>")
    page.para(f"Share of each stage's customers (out-of-time cutoffs) with at least one touch of the type in the "
              f"previous {j.recent_days} days, next to the prior and learned points of the type.", "meta")
    page.add(_html_table(shown))

    # ---- 6. learned points -------------------------------------------------------------------------
    page.section("points", "6. Learned points next to the prior points")
    for task in ("purchase", "churn"):
        model = learned.get(task)
        if model is None:
            why = (learned_missing or {}).get(task, "no trained bundle given")
            page.para(f"<b>{task}</b>: no learned points: {_esc(why)}. Train one with "
                      f"<code>signals train --task {task}</code>.", "warn")
            continue
        pts = model.points.sort_values("learned_points", ascending=False)
        frame = pd.DataFrame({"touchpoint": pts["touchpoint"], "prior": [_fmt(x, "pts") for x in pts["prior_points"]],
                              "learned": [_fmt(x, "pts") for x in pts["learned_points"]]})
        if {"low", "high"} <= set(pts.columns):
            frame["learned 95%"] = [f"[{_fmt(lo, 'pts')}, {_fmt(hi, 'pts')}]" for lo, hi in zip(pts["low"], pts["high"],
                                                                                                 strict=True)]
        page.add(f"<h3>{task}: half-life {model.half_life_days:g} days ({_esc(model.source)})</h3>" + _html_table(frame))
        page.figure(f"points_{task}", plot_points(model.points, task=task),
                    f"{task}: learned points per touch (with 95% interval) next to the hand-set prior points.")

    # ---- 7. alarms from scoring --------------------------------------------------------------------
    page.section("alarms", "7. Top alarms from scoring")
    top = _top_alarms(scores, history.as_of, v.report.top_alarms)
    if top is None:
        page.para(f"No scoring output found{': ' + _esc(scores_note) if scores_note else ''}. When "
                  "<code>signals score</code> has written <code>customer_signals</code>, its alarms are listed here.",
                  "warn")
    else:
        tables["top_alarms"] = top
        summary["top_alarms"] = len(top)
        page.para(f"From {_esc(scores_note)}: the {len(top)} highest-scored rows with an alarm, at the latest scoring "
                  "date up to the as-of date.", "meta")
        page.add(_html_table(top.astype(str)))

    if history.notes:
        page.section("notes", "Notes")
        page.add("<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in dict.fromkeys(history.notes)) + "</ul>")
    views_yaml = yaml.safe_dump({"views": json.loads(s.views.model_dump_json())}, sort_keys=False,
                                default_flow_style=None, width=100, allow_unicode=True)
    page.add(f"<details><summary>Settings of the views (<code>views:</code> section)</summary><pre>{_esc(views_yaml)}"
             "</pre></details>")
    head = (f"<h1>signals report: as of {_esc(as_of_text)}</h1><p class=\"meta\">{len(known):,} customers and "
            f"{idx.n_events:,} touches known before the as-of instant{(' (config ' + _esc(config_name) + ')') if config_name else ''}; "
            f"generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC. Evidence cutoffs {_esc(span(evidence_rows))}; "
            f"outcomes use the following {evidence_horizon_days(s)} days at most, all before the as-of instant.</p>")
    toc = "<nav><ol>" + "".join(f'<li><a href="#{_esc(a)}">{_esc(t)}</a></li>' for a, t in page.toc) + "</ol></nav>"
    text = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>signals report {_esc(as_of_text)}"
            f"</title><style>{_CSS}</style></head><body>{head}{toc}{''.join(page.parts)}</body></html>\n")
    summary["figures"] = list(page.figures)
    return Report(text, page.figures, tables, summary)


def _segment_verdict(evidence: pd.DataFrame) -> dict:
    """Does nurture buy more than stop_spending, with non-overlapping intervals?"""
    rows = evidence.set_index("segment")
    a, b = rows.loc["nurture"], rows.loc["stop_spending"]
    if not (a["purchase_rows"] and b["purchase_rows"]):
        return {"separated": None, "text": "nurture or stop_spending has no row in the purchase population: no comparison."}
    higher = a["purchase_rate"] > b["purchase_rate"]
    apart = a["purchase_low"] > b["purchase_high"] if higher else b["purchase_low"] > a["purchase_high"]
    text = (f"nurture customers bought at {_interval(a['purchase_rate'], a['purchase_low'], a['purchase_high'])}, "
            f"stop_spending at {_interval(b['purchase_rate'], b['purchase_low'], b['purchase_high'])}: "
            + ("nurture higher, the intervals do not overlap." if higher and apart else
               "nurture higher, but the intervals overlap." if higher else
               "stop_spending is NOT lower" + (" (intervals apart)." if apart else " (intervals overlap).")))
    return {"separated": bool(higher and apart), "nurture": float(a["purchase_rate"]),
            "stop_spending": float(b["purchase_rate"]), "text": text}


def _dose_verdict(dose: pd.DataFrame) -> str:
    usable = dose[dose["purchase_rows"] >= 100]
    if len(usable) < 2:
        return "Too few rows per bin to read a dose-response."
    if not (usable["purchase_rate"] > 0).any():
        return "No purchase followed any evidence cutoff: nothing to read."
    best = usable.loc[usable["purchase_rate"].idxmax()]
    first = usable.iloc[0]
    after = usable[usable.index > best.name]
    tail = ("; beyond it the rate falls" if len(after) and after["purchase_high"].max() < best["purchase_low"]
            else "; no bin with 100+ rows beyond it is clearly lower" if len(after) else
            " (the last bin with 100+ rows): no saturation visible in these data")
    return (f"Purchase rate peaks at {best['contacts']} contacts ({_fmt(best['purchase_rate'], 'pct')}, vs "
            f"{_fmt(first['purchase_rate'], 'pct')} at {first['contacts']}){tail}.")


def _top_alarms(scores: pd.DataFrame | None, as_of: pd.Timestamp, n: int) -> pd.DataFrame | None:
    if scores is None or not len(scores) or not {CUSTOMER_ID, "alarm"} <= set(scores.columns):
        return None
    frame = scores.copy()
    text = frame["alarm"].astype(str).str.strip().str.lower()
    frame = frame[frame["alarm"].notna() & ~text.isin(["", "none", "nan", "null"])]
    if "as_of" in frame.columns:
        stamps = pd.to_datetime(frame["as_of"], utc=True, errors="coerce")
        frame = frame[stamps <= as_of]
        stamps = stamps[frame.index]
        if len(frame):
            frame = frame[stamps == stamps.max()]
    if not len(frame):
        return None
    order = next((c for c in ("score", "probability") if c in frame.columns), None)
    if order is not None:
        frame = frame.sort_values(order, ascending=False, kind="stable")
    keep = [c for c in (CUSTOMER_ID, "as_of", "task", "alarm", "score", "probability", "band", "temperature",
                        "reason_1", "reason_2", "reason_3", "reasons") if c in frame.columns]
    return frame[keep].head(n).reset_index(drop=True)
