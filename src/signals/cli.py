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
