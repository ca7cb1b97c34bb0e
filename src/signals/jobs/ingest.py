"""The ingest job: configured sources -> events + rejects + duplicates files.

The only place where ingestion meets files: :func:`signals.ingest.ingest` does the work with the
settings' values (the same call a notebook makes), this job writes the three tables together
(:func:`signals.io.atomic.atomic_files`) while holding a lock on the events file, so two runs
never interleave and a crash or Ctrl-C leaves the previous tables or the new ones, never a mix.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from signals.errors import ConfigError, IngestError
from signals.ingest import IngestResult, ingest
from signals.io.atomic import atomic_files, folder_lock
from signals.io.tables import dump_table
from signals.settings import Settings

__all__ = ["run_ingest"]


def run_ingest(
    settings: Settings,
    *,
    strict: bool = False,
    events_path: str | Path | None = None,
    rejects_path: str | Path | None = None,
    duplicates_path: str | Path | None = None,
) -> IngestResult:
    """Ingest ``settings.ingest.sources`` and write the events, the rejects and the duplicates.

    ``settings.ingest.as_of`` may be naive (a wall-clock time in ``settings.timezone``), aware, or
    null (now). The rejects and duplicates files are always written (header only when empty, so an
    old file never lingers). When ingestion fails on its rows (``strict`` and a reject, or a source
    above its ``max_reject_fraction``), the rejects and duplicates are still written so users can
    look at them, the events are not, and an events file left by an earlier run is removed, so
    the next step fails clearly instead of using stale events.

    Parameters
    ----------
    settings : Settings
    strict : bool
        Fail with :class:`~signals.errors.IngestError` if any row was rejected.
    events_path, rejects_path, duplicates_path : path, optional
        Override ``settings.paths.events`` / ``.rejects`` / ``.duplicates`` (format by suffix).

    Raises
    ------
    ConfigError
        An output name is neither .parquet nor .csv.
    IngestError
        See :func:`signals.ingest.ingest`; with ``.result`` set when rows were the problem.
    OutputError
        Another run holds the events file, or an output cannot be written.
    """
    paths = settings.paths
    events_path = Path(events_path if events_path is not None else paths.events)
    rejects_path = Path(rejects_path if rejects_path is not None else paths.rejects)
    duplicates_path = Path(duplicates_path if duplicates_path is not None else paths.duplicates)
    for what, path in (("events", events_path), ("rejects", rejects_path), ("duplicates", duplicates_path)):
        if path.suffix.lower() not in (".parquet", ".csv"):  # fail before the slow part
            raise ConfigError(f"{what} file {path}: use a .parquet or .csv name")
    cfg = settings.ingest
    with folder_lock(events_path, what="signals ingest"):
        try:
            result = ingest(
                cfg.sources,
                touchpoints=settings.catalog,
                as_of=cfg.as_of,
                timezone=settings.timezone,
                dedupe_tolerance_seconds=cfg.dedupe_tolerance_seconds,
                max_reject_fraction=cfg.max_reject_fraction,
                placeholder_ids=cfg.placeholder_ids,
                placeholder_dates=cfg.placeholder_dates,
                rejects_raw_columns=cfg.rejects_raw_columns,
                strict=strict,
            )
        except IngestError as exc:
            if exc.result is None:
                raise
            with atomic_files(rejects_path, duplicates_path) as (rejects_tmp, duplicates_tmp):
                dump_table(exc.result.rejects, rejects_tmp, like=rejects_path)
                dump_table(exc.result.duplicates, duplicates_tmp, like=duplicates_path)
            removed = ""
            if events_path.exists():
                with contextlib.suppress(FileNotFoundError):
                    events_path.unlink()
                removed = f"; the events file of an earlier run ({events_path}) was removed, so no later step uses it"
            raise IngestError(f"{exc}\nevents not written{removed}; rejects in {rejects_path}, "
                              f"duplicates in {duplicates_path}", result=exc.result) from None
        with atomic_files(events_path, rejects_path, duplicates_path) as (events_tmp, rejects_tmp, duplicates_tmp):
            dump_table(result.events, events_tmp, like=events_path)
            dump_table(result.rejects, rejects_tmp, like=rejects_path)
            dump_table(result.duplicates, duplicates_tmp, like=duplicates_path)
    return result
