"""The ingest job: configured sources -> events Parquet + rejects CSV.

The only place where ingestion meets files: :func:`signals.ingest.ingest` does the work, this job
resolves ``as_of`` from the settings and writes the two tables with :mod:`signals.io.tables`.
"""

from __future__ import annotations

from pathlib import Path

from signals.ingest import IngestError, IngestResult, check_strict, ingest, resolve_as_of
from signals.io.tables import write_table
from signals.settings import Settings

__all__ = ["run_ingest"]


def run_ingest(
    settings: Settings,
    *,
    strict: bool = False,
    events_path: str | Path | None = None,
    rejects_path: str | Path | None = None,
) -> IngestResult:
    """Ingest ``settings.ingest.sources`` and write the events and the rejects.

    ``settings.ingest.as_of`` may be naive (a wall-clock time in ``settings.timezone``), aware, or
    null (now). The rejects file is always written, header only when nothing was rejected (so an old
    file never lingers), and also when ``strict`` fails, so users can look at the rows; the events
    file is written only when ingestion succeeds.

    Parameters
    ----------
    settings : Settings
    strict : bool
        Fail with :class:`~signals.ingest.IngestError` if any row was rejected.
    events_path, rejects_path : path, optional
        Override ``settings.paths.events`` / ``settings.paths.rejects`` (format by suffix).

    Raises
    ------
    IngestError
        See :func:`signals.ingest.ingest`; also an output name that is neither .parquet nor .csv.
        With ``strict``, ``.result`` holds the result.
    """
    events_path = Path(events_path if events_path is not None else settings.paths.events)
    rejects_path = Path(rejects_path if rejects_path is not None else settings.paths.rejects)
    for what, path in (("events", events_path), ("rejects", rejects_path)):  # fail before the slow part
        if path.suffix.lower() not in (".parquet", ".csv"):
            raise IngestError(f"{what} file {path}: use a .parquet or .csv name")
    cfg = settings.ingest
    result = ingest(
        cfg.sources,
        touchpoints=list(settings.catalog),
        as_of=resolve_as_of(cfg.as_of, settings.timezone),
        dedupe_tolerance_seconds=cfg.dedupe_tolerance_seconds,
        strict=False,
    )
    write_table(result.rejects, rejects_path)
    if strict:
        check_strict(result)
    write_table(result.events, events_path)
    return result
