"""signals: churn risk and purchase signals (きざし) from CRM touchpoint histories.

Every command reads the settings from --config (a YAML file; keys it does not set take the
defaults documented in configs/default.yaml) and --set key.path=value overrides.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.core import TyperGroup

from signals.errors import ConfigError, DataError, SignalsError
from signals.settings import Settings, load_settings

#: Exit codes: 0 success, 1 a data / ingest / output problem, 2 a configuration or usage mistake,
#: 130 interrupted (Ctrl-C). Any other exception is a bug and keeps its traceback.
EXIT_DATA, EXIT_CONFIG, EXIT_INTERRUPTED = 1, 2, 130


class _Interrupted:
    """Whether SIGINT arrived during the command, even if something inside swallowed the exception."""

    def __init__(self) -> None:
        self.seen = False

    def handler(self, signum, frame) -> None:
        self.seen = True
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def watch(self):
        self.seen = False
        try:
            previous = signal.signal(signal.SIGINT, self.handler)
        except ValueError:  # not the main thread (embedded use): keep Python's default
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _kept_message(command: str | None) -> str:
    """One line saying what an interrupted command kept (outputs are written whole or not at all)."""
    from signals.io.atomic import committed_outputs

    kept = [str(p) for p in dict.fromkeys(committed_outputs())]
    where = f" during `signals {command}`" if command else ""
    if not kept:
        return f"interrupted (Ctrl-C){where}: no output was changed (outputs are written whole or not at all)"
    shown = ", ".join(kept[:6]) + (f" and {len(kept) - 6} more" if len(kept) > 6 else "")
    note = "; later steps did not run, so older outputs (e.g. models/) may not match these" if command == "demo" else ""
    return (f"interrupted (Ctrl-C){where}: kept {len(kept)} finished output(s): {shown}; "
            f"everything else is as it was before the run{note}")


class SignalsGroup(TyperGroup):
    """Runs a command so that user mistakes are one line, bugs keep their traceback, Ctrl-C exits 130."""

    def invoke(self, ctx):
        from signals.io.atomic import forget_committed_outputs

        forget_committed_outputs()
        interrupted = _Interrupted()
        pending = getattr(ctx, "protected_args", None) or getattr(ctx, "_protected_args", None) or ctx.args
        command = pending[0] if pending else None
        try:
            with interrupted.watch():
                result = super().invoke(ctx)
        except SignalsError as exc:
            code = EXIT_CONFIG if isinstance(exc, ConfigError) else EXIT_DATA
            _error(str(exc), config=isinstance(exc, ConfigError))
            raise typer.Exit(code) from None
        except KeyboardInterrupt:
            err_console.print(_kept_message(command), style="yellow", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        if interrupted.seen:  # an interrupt swallowed on the way (by a library): never exit 0 after Ctrl-C
            err_console.print(_kept_message(command), style="yellow", soft_wrap=True)
            raise typer.Exit(EXIT_INTERRUPTED)
        return result


app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, rich_markup_mode="rich",
                  cls=SignalsGroup, pretty_exceptions_show_locals=False)
console = Console()
if not console.is_terminal:  # logs and pipes: wide enough for the tables (a terminal keeps its own width)
    console = Console(width=120)
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (e.g. configs/demo.yaml); unset keys take the defaults."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a setting, e.g. --set simulate.n_customers=1000 or "
                                     "--set ingest.sources.sfa.path=x.csv (list items by index or name; repeatable)."),
]


def _error(message: str, *, config: bool = False) -> None:
    from rich.text import Text

    label = "configuration error: " if config else "error: "
    err_console.print(Text.assemble((label, "red"), message), soft_wrap=True)


def load_cli_settings(config: Path | None, overrides: list[str] | None) -> Settings:
    """Load settings for a command; a :class:`ConfigError` exits with its message (code 2)."""
    return load_settings(config, overrides or ())


@app.command("simulate")
def simulate_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    messy: Annotated[
        bool | None,
        typer.Option(
            "--messy/--no-messy",
            help="Also write the world as the raw exports of ingest.sources (CSV / Parquet / SQL, with "
                 "duplicates and bad rows) plus paths.raw_dir/manifest.json. Default: on when the config "
                 "defines ingest.sources (configs/demo.yaml does).",
            show_default=False,
        ),
    ] = None,
    progress: Annotated[
        bool,
        typer.Option("--progress/--no-progress", help="Show a progress bar over the simulated days (on a terminal)."),
    ] = True,
) -> None:
    """Simulate a synthetic B2B CRM with known true point weights and a behaviour shift.

    Writes paths.events, paths.customers and paths.truth (the generating weights, rates and realised counts); the size, span, shift date and seed come from the simulate section. Prints customers, events per type, purchases, churns, the files written and the seconds taken.
    """
    from rich.markup import escape
    from rich.table import Table

    from signals.jobs.simulate import run_simulate

    settings = load_cli_settings(config, overrides)
    use_messy = bool(settings.ingest.sources) if messy is None else messy
    summary = run_simulate(settings, messy=use_messy, progress=progress)
    sim = settings.simulate
    table = Table(title="simulated CRM", caption=f"{sim.start} .. {sim.end}, shift {sim.shift_date or 'none'}, seed {sim.seed}")
    table.add_column("touchpoint")
    table.add_column("events", justify="right")
    for name, n in summary["events_per_type"].items():
        table.add_row(escape(name), f"{n:,}")
    table.add_row("all", f"{summary['events']:,}", style="bold", end_section=True)
    console.print(table)
    console.print(
        f"customers {summary['customers']:,}; purchases {summary['purchases']:,} "
        f"(new {summary['new_purchases']:,}, upsell {summary['upsells']:,}, win-back {summary['winbacks']:,}); "
        f"churns {summary['churns']:,}; renewals {summary['renewals']:,}"
    )
    if summary["manifest"] is not None:
        m = summary["manifest"]
        console.print(f"raw sources: {m['cross_source_duplicates']:,} cross-source duplicates, "
                      f"{m['expected']['rejects']:,} bad rows")
    for name, where in summary["files"].items():
        console.print(f"  {escape(name)} -> {escape(where)}")
    console.print(f"done in {summary['seconds']:.1f} s")


def _ingest_table(result) -> None:
    """Per-source counts of an ingestion (read, accepted, rejected, duplicates, events, top reasons) and totals."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"ingest (as_of {result.as_of:%Y-%m-%d %H:%M:%S} UTC)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("source", no_wrap=True)
    for name in ("read", "accepted", "rejected", "duplicates", "events"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("top reasons", no_wrap=True)
    report = result.report
    for i, name in enumerate(report.index):
        row = report.loc[name]
        reasons = result.rejected_by_reason(name)
        top = "\n".join(f"{reason} {n:,}" for reason, n in list(reasons.items())[:3])
        if len(reasons) > 3:
            top += f"\n+{len(reasons) - 3} more"
        table.add_row(
            escape(str(name)), *(f"{int(row[c]):,}" for c in ("read", "accepted", "rejected", "duplicates", "events")),
            top, style="bold" if i == len(report) - 1 else None, end_section=i == len(report) - 2,
        )
    console.print(table)


@app.command("ingest")
def ingest_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail (exit 1, events not written) if any row is rejected; the rejects file is still written."),
    ] = False,
    events: Annotated[
        Path | None,
        typer.Option("--events", help="Where to write the events (.parquet or .csv); default: paths.events."),
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Where to write the rejected rows with their reasons (.csv or .parquet); default: paths.rejects."),
    ] = None,
    duplicates: Annotated[
        Path | None,
        typer.Option("--duplicates", help="Where to write the dropped duplicates, each with the row it repeats "
                                          "(.csv or .parquet); default: paths.duplicates."),
    ] = None,
) -> None:
    """Unify the configured sources (ingest.sources) into one canonical event table.

    Maps each source's columns and activity names, validates every row (rejected rows go to the rejects file with a reason code, a detail, the line and the mapped cells), drops rows that say the same thing twice (listed in the duplicates file with the row they repeat), and prints read / accepted / rejected / duplicates per source. Fails (exit 1, events not written, an old events file removed) when more than ingest.max_reject_fraction of a source's rows are rejected, or with --strict on any reject. Exits 1 on a source problem (missing file, column or variable, failing query) and 2 on a configuration mistake.
    """
    from rich.markup import escape

    from signals.errors import IngestError
    from signals.jobs.ingest import run_ingest

    settings = load_cli_settings(config, overrides)
    if not settings.ingest.sources:
        raise ConfigError("no sources configured: add ingest.sources to the config (see configs/demo.yaml)")
    try:
        result = run_ingest(settings, strict=strict, events_path=events, rejects_path=rejects,
                            duplicates_path=duplicates)
    except IngestError as exc:
        if exc.result is not None:
            _ingest_table(exc.result)
        raise
    _ingest_table(result)
    console.print(f"events:     {len(result.events):,} rows -> {escape(str(events or settings.paths.events))}")
    console.print(f"rejects:    {len(result.rejects):,} rows -> {escape(str(rejects or settings.paths.rejects))}")
    console.print(f"duplicates: {len(result.duplicates):,} rows -> "
                  f"{escape(str(duplicates or settings.paths.duplicates))}")


@app.command("features")
def features_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Build for every customer at this date/time (a date means its first moment in "
                                     "the config's timezone) instead of the training grid."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write the matrix (.parquet or .csv); default: paths.features."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option("--engine", help="pandas (one machine) or spark: the same builders per group of customers on "
                                      "Spark, reading Parquet paths (local or s3a://, abfss://, dbfs:/ ...) and writing "
                                      "a Parquet folder; inside spark-submit or Databricks it uses their session, "
                                      "otherwise local[*]. Needs the spark extra and Java 17+."),
    ] = "pandas",
) -> None:
    """Build the point-in-time feature matrix from paths.events.

    Without --as-of: the training grid (cutoffs.n_training monthly/weekly cutoffs that leave a full label horizon). Every row uses only events strictly before its cutoff. Feature names are family__touchpoint__window (freq__webinar__30d, recency__purchase__days, temp__all__hl30d, ...).
    """
    from signals.jobs.features import run_features

    if engine not in ("pandas", "spark"):
        raise ConfigError(f"--engine must be pandas or spark, got {engine!r}")
    settings = load_cli_settings(config, overrides)
    run = run_features(settings, as_of=as_of, out=out, engine=engine)
    first, last = run.cutoffs[0], run.cutoffs[-1]
    console.print(f"{run.n_rows:,} rows x {run.n_features} features, {len(run.cutoffs)} cutoff(s) "
                  f"{first:%Y-%m-%d %H:%M}..{last:%Y-%m-%d %H:%M} UTC -> {run.path} ({run.seconds:.1f} s)")


def _interval(estimate: float, low: float, high: float, digits: int = 3) -> str:
    return f"{estimate:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def print_training(run) -> None:
    """The evaluation table, the points table and the truth check of a training run."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    trained = run.trained
    split = trained.split.describe()
    console.print(f"[bold]{trained.task}[/bold]: {trained.rows['origins']} backtest origin(s); the kept model: train "
                  f"{split['train']}, validation {split['validation']}, test {split['test']}, embargo {split['embargo']}; "
                  f"rows {trained.rows['train']:,} / {trained.rows['validation']:,} / {trained.rows['test']:,} "
                  f"(positives {trained.rows['train_positives']:,} / {trained.rows['validation_positives']:,} / "
                  f"{trained.rows['test_positives']:,}); {trained.model.best_iteration_} trees")
    metrics = trained.metrics
    order = metrics[metrics["metric"] == "roc_auc"].sort_values("estimate", ascending=False)["model"].tolist()
    table = Table(title=f"{trained.task}: test cutoffs of {trained.rows['origins']} origin(s), "
                        f"{trained.rows['test_all_origins']:,} rows (mean over origins; 95% interval over origins x customers)",
                  box=box.SIMPLE_HEAD)
    for column in ("model", "ROC AUC [95%]", "PR AUC", "lift@10%", "Brier", "ECE"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    wide = metrics.pivot(index="model", columns="metric", values="estimate")
    for model in order:
        auc = metrics[(metrics["model"] == model) & (metrics["metric"] == "roc_auc")].iloc[0]
        row = wide.loc[model]
        table.add_row(model, _interval(auc["estimate"], auc["low"], auc["high"]), f"{row['pr_auc']:.3f}",
                      f"{row['top_decile_lift']:.2f}", f"{row['brier']:.4f}", f"{row['ece']:.4f}")
    console.print(table)
    versus = ", ".join(f"{r.baseline} {r.estimate:+.3f} [{r.low:+.3f}, {r.high:+.3f}]"
                       for r in trained.versus.sort_values("estimate").itertuples())
    console.print(f"ROC AUC of lightgbm minus each baseline (paired bootstrap): {versus}")
    interval = str(trained.points["interval"].iloc[0])
    points = Table(title=f"{trained.task}: learned points (配点), the own effect of one more touch now "
                         f"(interval: {interval}); temperature half-life {trained.half_life_days:g} days",
                   box=box.SIMPLE_HEAD)
    for column in ("touchpoint", "prior", "points (own) [95%]", "shared", "total", "per month", "log-odds (own)"):
        points.add_column(column, justify="left" if column == "touchpoint" else "right")
    table_rows = trained.points.assign(_o=trained.points["own_points"].fillna(-1e9)).sort_values("_o", ascending=False)
    for r in table_rows.itertuples():
        if r.status != "defined":
            points.add_row(r.touchpoint, f"{r.prior_points:g}", escape(r.status), "", "", "", "")
            continue
        own = (_interval(r.own_points, r.own_points_refit_low, r.own_points_refit_high, 1)
               if r.refits else f"{r.own_points:.1f}")
        points.add_row(r.touchpoint, f"{r.prior_points:g}", own, f"{r.shared_points:+.1f}", f"{r.total_points:.1f}",
                       f"{r.own_points_per_month:.1f}", f"{r.own_logodds:+.3f}")
    console.print(points)
    for r in trained.points.itertuples():
        if r.status != "defined":
            console.print(f"  {r.touchpoint}: {escape(r.status)}: {escape(r.reason)}")
    top = trained.top_reasons.head(5)
    console.print(f"highest {trained.task} probabilities at {max(trained.split.test):%Y-%m-%d} and why:")
    for r in top.itertuples():
        why = "; ".join(x for x in (r.reason_1, r.reason_2, r.reason_3) if x)
        console.print(f"  {r.customer_id}  p={r.probability:.2f}  (actual {int(r.label)})  {why}")
    if run.truth is not None:
        from signals.modeling.training import truth_agreement

        agreement = truth_agreement(trained, run.truth)
        console.print(f"simulator truth ({agreement['regime']} the shift): Spearman(learned points, true weights) = "
                      f"{agreement['spearman']:.3f} over {len(agreement['types'])} engagement types; half-life "
                      f"learned {agreement['half_life_days']:g} vs true {agreement['true_half_life_days']:g} days")
    console.print(f"bundle: {run.bundle} (figures in {run.bundle / 'figures'}) — {run.seconds:.0f} s")


@app.command("train")
def train_command(
    task: Annotated[str, typer.Option("--task", "-t", help="churn or purchase (きざし).")],
    config: ConfigOption = None,
    overrides: SetOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Bundle folder; default: paths.models_dir/<task>.")
    ] = None,
    auto_split: Annotated[
        bool,
        typer.Option("--auto-split", help="Fit the split to the history there is: use every cutoff the data allows "
                                          "and the largest honest split that fits (fewer origins, then fewer "
                                          "validation / test cutoffs, then the embargo before test only). The horizon "
                                          "and the embargo before test are never changed."),
    ] = False,
    track: Annotated[
        bool | None,
        typer.Option("--track/--no-track", help="Log the run to MLflow (mlflow.tracking_uri: params, metrics with "
                                                "intervals, the bundle and the pyfunc model). Default: "
                                                "mlflow.track_training (on).", show_default=False),
    ] = None,
) -> None:
    """Train LightGBM for a task on paths.events and evaluate it out of time.

    A rolling-origin backtest: model.backtest_origins test origins, each with its own train / validation / test cutoffs and an embargo of one label horizon; each origin fits with early stopping and calibrates on validation. The latest origin's model is kept: its points table (the own effect of one more touch of each type now, with intervals from refitting on customer samples; shared and total parts; "n/a" where a touch is outside the task's population or the training data) and the temperature half-life are learned. The model and the baselines (logistic regression, prior-points temperature, RFM, falling frequency, learned-points temperature) are scored per origin and pooled. Writes the model bundle (whole or not at all; one run per bundle) and figures. Fails with the reason and no bundle when the split does not fit the history or a validation / test period has too few positives. Logs one MLflow run named "<task> <as-of date>" (role candidate: params, metrics with intervals, the bundle and the pyfunc model) unless --no-track.
    """
    from signals.jobs.train import run_train
    from signals.labels import TASKS

    if task not in TASKS:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {task!r}")
    settings = load_cli_settings(config, overrides)
    _check_training_inputs(settings)
    tracked = settings.mlflow.track_training if track is None else track
    run = run_train(settings, task=task, out_dir=out, auto_split=auto_split,
                    progress=lambda m: err_console.print(f"  {m}", style="dim"), track=tracked)
    print_training(run)
    if run.run_id is not None:
        from signals.io.tracking import redact, tracking_uri

        console.print(f"MLflow run {run.run_id} in {redact(tracking_uri(settings))} "
                      f"(experiment {settings.mlflow.experiment!r}; `signals ui` to browse)")


def print_retrain(result) -> None:
    """One block per task of a retrain: challenger vs champion, the decision, drift and moved points."""
    from rich.markup import escape

    for task, r in result.tasks.items():
        ch = r.comparison[(r.comparison["model"] == "challenger") & (r.comparison["metric"] == "roc_auc")].iloc[0]
        line = (f"[bold]{task} {r.label}[/bold]: challenger ROC AUC {_interval(ch.estimate, ch.low, ch.high)}"
                f", ECE {r.challenger_metrics['ece']:.4f}")
        if r.champion_metrics is not None:
            line += (f"; champion v{r.champion_before} {r.champion_metrics['roc_auc']:.3f} "
                     f"(difference {r.paired_auc['estimate']:+.3f} [{r.paired_auc['low']:+.3f}, {r.paired_auc['high']:+.3f}])")
        console.print(line + f" on {len(r.test_rows):,} test rows")
        verdict = "[green]promoted[/green]" if r.decision.promote else "[yellow]not promoted[/yellow]"
        where = f" -> version {r.version}, champion = v{r.champion_after}" if r.version else ""
        console.print(f"  {verdict}: {escape(r.decision.reason)}{where}")
        top = r.drift.head(3)
        console.print("  drift (PSI, training window vs as-of population): "
                      + ", ".join(f"{d.feature} {d.psi:.2f} ({d.level})" for d in top.itertuples())
                      + f"; base rate {r.base_rate['reference_rate']:.3%} -> {r.base_rate['current_rate']:.3%}")
        moved = r.points_diff.dropna(subset=["change"]).head(4)
        if len(moved):
            console.print("  points vs champion: " + ", ".join(
                f"{m.touchpoint} {m.previous_points:.1f} -> {m.points:.1f}" for m in moved.itertuples()))
        console.print(f"  {r.seconds:.0f} s" + (f", run {r.run_id}" if r.run_id else ""), style="dim")


@app.command("retrain")
def retrain_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Retrain as of this date (its first moment in the config's timezone): only "
                                     "events before it are used. Default: today."),
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="Backfill: first as-of date (with --to and --every).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="Backfill: last as-of date (inclusive).")] = None,
    every: Annotated[str, typer.Option("--every", help="Backfill step: 1M (monthly), 2W, 14D.")] = "1M",
    tasks: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="churn or purchase (repeatable); default: both.")
    ] = None,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Log and register in MLflow (off: compare nothing, "
                                                       "promote nothing, just report).")
    ] = True,
    out: Annotated[
        Path | None, typer.Option("--out", help="Backfill: folder for points_over_time.png/.csv; default: paths.reports_dir.")
    ] = None,
) -> None:
    """Retrain a challenger and promote it to champion only if it holds up (champion / challenger).

    For each task: trains on the rolling window (cutoffs.n_training cutoffs) ending at --as-of, scores the challenger and the registered champion (<prefix>-<task>@champion) on the same latest out-of-time cutoffs, and moves the champion alias only when the challenger's ROC AUC is at most mlflow.promotion.auc_margin below the champion's and its ECE is at most mlflow.promotion.max_ece (no champion yet: the first challenger becomes champion). Logs the run with the decision and its reason as tags, a drift report (PSI per feature, label base rate) and the points diff against the champion. The challenger's backtest has mlflow.retrain_backtest_origins origins (default 1: the decision reads only the latest; `signals train` runs model.backtest_origins), and its fits run side by side on the cores (model.parallel_fits).

    With --from/--to/--every it replays retraining over history (one parent run) and writes points_over_time.png: each touchpoint's learned points per retrain, with the simulator's true weights before and after the shift when paths.truth exists.
    """
    import datetime as dt
    from zoneinfo import ZoneInfo

    from signals.jobs.retrain import as_of_dates, run_backfill, run_retrain
    from signals.labels import TASKS

    chosen = tuple(tasks or TASKS)
    bad = [t for t in chosen if t not in TASKS]
    if bad:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {', '.join(map(repr, bad))}")
    if (start is None) != (end is None):
        raise ConfigError("a backfill needs both --from and --to")
    if start is not None and as_of is not None:
        raise ConfigError("give either --as-of or --from/--to, not both")
    settings = load_cli_settings(config, overrides)
    _check_training_inputs(settings)
    note = lambda m: err_console.print(f"  {m}", style="dim")  # noqa: E731
    if start is not None:
        try:
            dates = as_of_dates(start, end, every)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        result = run_backfill(settings, start=dates[0], end=dates[-1], every=every, tasks=chosen, track=track,
                              progress=note, out_dir=out, on_retrain=print_retrain)
        console.print(f"{len(result.retrains)} retrains in {result.seconds:.0f} s; points over time -> "
                      f"{result.figure}" + (f" (also logged to run {result.parent_run_id})" if result.parent_run_id else ""))
    else:
        day = as_of or dt.datetime.now(ZoneInfo(settings.timezone)).date().isoformat()
        print_retrain(run_retrain(settings, as_of=day, tasks=chosen, track=track, progress=note))


@app.command("ui")
def ui_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Port on 127.0.0.1.")] = 5000,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (keep 127.0.0.1 unless you mean it).")]
        = "127.0.0.1",
) -> None:
    """Open the MLflow UI for the configured store (mlflow.tracking_uri) on http://127.0.0.1:5000.

    Runs `mlflow ui` in the foreground until Ctrl-C. Runs are named "<task> <as-of date>" and tagged task, as_of, role (candidate / challenger / champion / backfill) and data_source: filter with e.g. tags.task = 'purchase', tick two runs and press Compare. A tracking server (http://...) has its own UI: open its URL instead.
    """
    import subprocess

    from signals.io.tracking import redact, tracking_uri
    from signals.io.tracking import ui_command as build

    settings = load_cli_settings(config, overrides)
    command = build(settings, host=host, port=port)
    console.print(f"MLflow UI for {redact(tracking_uri(settings))} on http://{host}:{port} (Ctrl-C to stop)")
    try:
        code = subprocess.run(command, check=False).returncode
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code=code)


def _check_training_inputs(settings: Settings) -> None:
    """The input files training needs, checked before the slow part (one line each when missing)."""
    paths = settings.paths
    if not Path(paths.events).is_file():
        raise DataError(f"no events at {paths.events}: run `signals simulate` or `signals ingest` first")
    if settings.features.static_columns and not Path(paths.customers).is_file():
        raise DataError(f"features.static_columns needs a customers table at {paths.customers}")


def print_scoring(run, *, top: int = 5) -> None:
    """Per task: rows, alarms, bands and the top customers with their reasons; where the rows went."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"scored as of {run.as_of:%Y-%m-%d %H:%M} UTC", box=box.SIMPLE_HEAD)
    for column in ("task", "model", "customers", "alarm", "alarms", "high / medium / low", "p50 / p90 / p99"):
        table.add_column(column, justify="left" if column in ("task", "model", "alarm") else "right", no_wrap=True)
    for task, info in run.summary.items():
        bands = info["bands"]
        table.add_row(task, escape(info["model"]), f"{info['rows']:,}", info["alarm"] or "", f"{info['alarms']:,}",
                      f"{bands['high']:,} / {bands['medium']:,} / {bands['low']:,}",
                      f"{info['score_p50']:.3f} / {info['score_p90']:.3f} / {info['score_p99']:.3f}")
    console.print(table)
    for loaded in run.models:
        policy = loaded.policy
        test = policy.test or {}
        if test.get("precision") is not None:
            console.print(f"  {escape(policy.describe())}; on the test cutoffs: precision {test['precision']:.2f}, "
                          f"recall {test['recall']:.2f} ({test['alarms']:,} alarms, base rate {test['base_rate']:.3f})")
    signals = getattr(run, "top_signals", None)  # a Spark run keeps only its top rows on the driver
    signals = run.signals if signals is None else signals
    for task in run.summary:
        part = signals[signals["task"] == task].nsmallest(top, "rank")
        console.print(f"[bold]{task}[/bold]: highest scores and why")
        for r in part.itertuples():
            why = "; ".join(x for x in (r.reason_1, r.reason_2, r.reason_3) if isinstance(x, str))
            alarm = f" [red]{r.alarm}[/red]" if isinstance(r.alarm, str) else ""
            console.print(f"  {escape(str(r.customer_id))}  p={r.score:.3f} {r.band}{alarm}  "
                          f"temperature {r.temperature:.0f}  {escape(why)}")
    if run.written is not None:
        console.print(f"{run.written.rows:,} rows -> {escape(run.written.destination)} ({run.written.seconds:.1f} s)")
    if run.mlflow_run_id:
        console.print(f"MLflow run {run.mlflow_run_id}")


@app.command("score")
def score_command(
    as_of: Annotated[str, typer.Option("--as-of", help="Score as of this date/time (a date means its first moment "
                                                       "in the config's timezone); features use events before it.")],
    config: ConfigOption = None,
    overrides: SetOption = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="champion or challenger: the registry version with that alias "
                                                "(mlflow.tracking_uri); or a bundle folder, or a folder of bundles "
                                                "per task; 'models' = paths.models_dir.")
    ] = "models",
    task: Annotated[
        list[str] | None, typer.Option("--task", "-t", help="churn and/or purchase (repeatable); default both.")
    ] = None,
    write: Annotated[bool, typer.Option("--write/--no-write", help="Write the rows to the sink (the sink section).")] = True,
    track: Annotated[bool, typer.Option("--track/--no-track", help="Log the run to MLflow (mlflow.tracking_uri).")] = True,
    engine: Annotated[
        str,
        typer.Option("--engine", help="pandas (one machine) or spark: the same scoring per group of customers on "
                                      "Spark, reading Parquet paths (local or s3a://, abfss://, dbfs:/ ...), ranks "
                                      "computed over all customers, rows written as Parquet folders (sink.kind files) "
                                      "or through JDBC (sqlite, postgresql). Inside spark-submit or Databricks it "
                                      "uses their session, otherwise local[*]. Needs the spark extra and Java 17+."),
    ] = "pandas",
) -> None:
    """Score every customer as of a date: probability, rank, band, temperature, alarm and 3 reasons per task.

    Loads each task's model, refuses events that do not fit its saved feature spec, builds the features as of the date for every customer seen before it (a task on custom cutoffs, cutoffs.kind table or anniversary for the tasks in cutoffs.tasks: only the customers due that day), and writes one customer_signals row per customer and task to the sink (SQLite by default; sink.url_env names the variable with a PostgreSQL URL). Re-running the same date with the same model replaces its rows; other dates stay as history. Alarms: kizashi (purchase: temperature surge above the customer's usual, with a high purchase probability) and cooling (churn: high risk, or cooled down after being warm).
    """
    from signals.jobs.score import run_score
    from signals.labels import TASKS

    tasks = task or list(TASKS)
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"--task must be one of {', '.join(TASKS)}, got {unknown}")
    if engine not in ("pandas", "spark"):
        raise ConfigError(f"--engine must be pandas or spark, got {engine!r}")
    settings = load_cli_settings(config, overrides)

    def progress(message: str) -> None:
        err_console.print(f"  {message}", style="dim")

    if engine == "spark":
        from signals.jobs.spark import run_score_spark

        run = run_score_spark(settings, as_of=as_of, model=model, tasks=tasks, write=write, track=track,
                              progress=progress)
    else:
        if not Path(settings.paths.events).is_file():
            raise DataError(f"no events at {settings.paths.events}: run `signals simulate` or `signals ingest` first")
        run = run_score(settings, as_of=as_of, model=model, tasks=tasks, write=write, track=track, progress=progress)
    print_scoring(run)


@app.command("demo")
def demo_command(
    config: Annotated[Path, typer.Option("--config", "-c", help="Demo config.")] = Path("configs/demo.yaml"),
    overrides: SetOption = None,
) -> None:
    """The whole pipeline on a simulated CRM: simulate -> messy exports -> ingest -> monthly retrains of churn and purchase (MLflow champion / challenger) -> score every customer with the champions -> CRM table.

    The retrains run as of the last three months' first days: the first registers each task's champion (signals-churn, signals-purchase), the next ones are challengers promoted only by the mlflow.promotion rule; a second demo run on the same registry retrains only dates later than the champions. Everything runs locally on the embedded defaults (files under data/, reports/points_over_time.png, the CRM table in crm.db, runs and models in mlflow.db and mlartifacts/) and ends with a summary: alarm counts, the top customers with their reasons, the learned points next to the priors, and where everything is (`signals ui` opens the runs).
    """
    from signals.jobs.demo import run_demo

    settings = load_cli_settings(config, overrides)
    run_demo(settings, console=console, show_ingest=_ingest_table, show_scoring=print_scoring,
             show_retrain=print_retrain)


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="Date (its first moment in the config's timezone) or time; only events before it "
                                 "are used. Default: the day after the last event."),
]


@app.command("report")
def report_command(
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_of: AsOfOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write; default: paths.reports_dir/report_<date>.html.")
    ] = None,
    customer: Annotated[
        list[str] | None,
        typer.Option("--customer", help="Customer whose temperature timeline to draw (repeatable); default: the "
                                        "sharpest current rise, the coldest active customer and the busiest nurture one."),
    ] = None,
    scores: Annotated[
        Path | None,
        typer.Option("--scores", help="Scores of `signals score` (.parquet/.csv) for the top-alarms section; default: "
                                      "the sink table when sink.kind is sqlite and its file exists."),
    ] = None,
    models: Annotated[
        Path | None, typer.Option("--models", help="Folder of trained bundles <task>/; default: paths.models_dir.")
    ] = None,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Also log the page to MLflow (mlflow.tracking_uri): a run "
                                                      "'report <date>' with the page as an artifact and the verdicts as tags.")
    ] = False,
) -> None:
    """Write one self-contained HTML report of the seeds' business views as of a date.

    Sections: contact-frequency segments (nurture / follow_up / stop_spending / new / steady) with their later purchase and churn rates on out-of-time cutoffs; contact rate per month by channel and initiator, and the dose-response of company contacts; cohort retention (contractual and non-contractual) with heat maps; temperature timelines with the kizashi and cooling lines; journey stages, the journey map and stage-to-stage conversion; learned points next to the priors (when models/<task>/ exists); the top alarms (when scores exist). Figures are embedded: the page opens offline. The file is written atomically.
    """
    from signals.jobs.report import run_report

    settings = load_cli_settings(config, overrides)
    _check_training_inputs(settings)
    run = run_report(settings, as_of=as_of, out=out, customer_ids=customer, scores=scores, models_dir=models,
                     config_name=str(config or ""), progress=lambda m: err_console.print(f"  {m}", style="dim"))
    summary = run.report.summary
    console.print(f"segments: {summary['segment_verdict']['text']}")
    console.print(f"dose-response: {summary['dose_verdict']}")
    lines = summary["alarm_lines"]
    console.print(f"today: {lines['kizashi_now']:,} customers at or above the kizashi line, {lines['cooling_now']:,} "
                  f"active customers below the cold line")
    console.print(f"report ({len(summary['figures'])} figures) -> {run.path} ({run.seconds:.1f} s)")
    if track:
        from signals.jobs.report import log_report_run

        run_id = log_report_run(run, settings)
        console.print(f"logged to MLflow: run {run_id} (report/{run.path.name})")


@app.command("timeline")
def timeline_command(
    customer_ids: Annotated[list[str], typer.Argument(help="One or a few customer ids (text, e.g. C000042).")],
    config: ConfigOption = None,
    overrides: SetOption = None,
    as_of: AsOfOption = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Folder for the PNG files; default: paths.reports_dir.")
    ] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Only the last N days (default: all history).")] = None,
    models: Annotated[
        Path | None, typer.Option("--models", help="Folder of trained bundles <task>/; default: paths.models_dir.")
    ] = None,
) -> None:
    """Plot a customer's temperature over time (seed 002): prior and learned points, every touch by type, alarms.

    Writes timeline_<id>_<date>.png per customer: the temperature with the prior points and, when models/<task>/ exists, with each model's learned points; every touch marked by type and initiator; the cold line (cooling alarm) and the kizashi line on the 14-day rise, placed on the whole customer base at the as-of date. Prints the alarms that fired.
    """
    from signals.jobs.report import run_timeline

    settings = load_cli_settings(config, overrides)
    _check_training_inputs(settings)
    run = run_timeline(settings, customer_ids, as_of=as_of, out_dir=out, days=days, models_dir=models)
    lines = run.timeline.lines
    console.print(f"kizashi line {lines.surge:.1f} points ({lines.surge_days}-day rise of '{lines.kizashi_curve}'), "
                  f"cold line {lines.cold:.1f} points ('{lines.cooling_curve}')")
    for cid, path in run.files.items():
        temps = run.timeline.temperatures[run.timeline.temperatures["customer_id"] == cid].iloc[-1]
        alarms = run.timeline.alarms[run.timeline.alarms["customer_id"] == cid]
        now = ", ".join(f"{c.name} {temps[c.name]:.1f}" for c in run.timeline.curves)
        last = ", ".join(f"{r.alarm} {r.at.tz_convert(settings.timezone):%Y-%m-%d}" for r in alarms.tail(3).itertuples())
        console.print(f"{cid} (segment {run.segments.get(cid) or '-'}): now {now}; {len(alarms)} alarm(s)"
                      + (f", last: {last}" if last else "") + f" -> {path}")
