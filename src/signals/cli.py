"""signals: churn risk and purchase signals (きざし) from CRM touchpoint histories.

Every command reads the settings from --config (a YAML file; keys it does not set take the
defaults documented in configs/default.yaml) and --set key.path=value overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from signals.settings import ConfigError, Settings, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__, rich_markup_mode="rich")
console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML config file (e.g. configs/demo.yaml); unset keys take the defaults."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a setting, e.g. --set simulate.n_customers=1000 (repeatable)."),
]


def load_cli_settings(config: Path | None, overrides: list[str] | None) -> Settings:
    """Load settings for a command; a configuration error exits with its message (code 2)."""
    try:
        return load_settings(config, overrides or ())
    except ConfigError as exc:
        err_console.print(f"[red]configuration error[/red]\n{exc}")
        raise typer.Exit(code=2) from None


def fail(message: str, code: int = 1) -> None:
    """Print an error message (no traceback) and exit."""
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=code)


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
    try:
        summary = run_simulate(settings, messy=use_messy, progress=progress)
    except ValueError as exc:
        fail(escape(str(exc)))
        return
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
    """Per-source counts of an ingestion (read, accepted, rejected, duplicates, top reasons) and totals."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"ingest (as_of {result.as_of:%Y-%m-%d %H:%M:%S} UTC)", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("source", no_wrap=True)
    for name in ("read", "accepted", "rejected", "duplicates"):
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
            escape(str(name)), *(f"{int(row[c]):,}" for c in ("read", "accepted", "rejected", "duplicates")),
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
) -> None:
    """Unify the configured sources (ingest.sources) into one canonical event table.

    Maps each source's columns and activity names, validates every row (rejected rows go to the rejects file with a reason code, a detail and the raw row), deduplicates across sources, and prints read / accepted / rejected / duplicates per source. Exits 1 on a source problem (missing file, column or variable, failing query) and 2 when no sources are configured.
    """
    from rich.markup import escape

    from signals.ingest import IngestError
    from signals.jobs.ingest import run_ingest

    settings = load_cli_settings(config, overrides)
    if not settings.ingest.sources:
        fail("no sources configured: add ingest.sources to the config (see configs/demo.yaml)", code=2)
    try:
        result = run_ingest(settings, strict=strict, events_path=events, rejects_path=rejects)
    except IngestError as exc:
        if exc.result is not None:
            _ingest_table(exc.result)
            console.print(f"rejected rows written to {escape(str(rejects or settings.paths.rejects))}")
        fail(escape(str(exc)))
        return
    except OSError as exc:  # an output folder that cannot be written
        fail(escape(f"cannot write the output: {exc}"))
        return
    _ingest_table(result)
    console.print(f"events:  {len(result.events):,} rows -> {escape(str(events or settings.paths.events))}")
    console.print(f"rejects: {len(result.rejects):,} rows -> {escape(str(rejects or settings.paths.rejects))}")
