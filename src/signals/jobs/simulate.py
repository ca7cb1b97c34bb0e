"""The simulate job: a synthetic CRM world -> events, customers, truth (and messy raw exports).

The only place where the simulator meets files: :func:`signals.simulate.simulate_crm` and
:func:`signals.messy.messy_sources` compute, :mod:`signals.io.world` writes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from signals.errors import ConfigError
from signals.io.atomic import folder_lock
from signals.io.tables import write_json
from signals.io.world import write_raw_sources, write_world
from signals.messy import messy_sources
from signals.settings import Settings
from signals.simulate import simulate_crm

__all__ = ["run_simulate"]


def run_simulate(settings: Settings, *, messy: bool, progress: bool = False) -> dict[str, Any]:
    """Simulate the world of ``settings.simulate`` and write it.

    Writes ``paths.events``, ``paths.customers`` and ``paths.truth`` together, holding the lock on
    ``paths.events`` (the one ``signals ingest`` takes), each file whole or not at all. With
    ``messy``, also writes the raw exports of ``ingest.sources`` (see :func:`signals.messy.messy_sources`, seeded with
    ``simulate.seed``) where ingestion reads them, and their manifest to
    ``paths.raw_dir / "manifest.json"``.

    Returns
    -------
    dict
        JSON-serialisable summary: ``customers``, ``events``, ``events_per_type``, ``purchases``,
        ``new_purchases``, ``upsells``, ``winbacks``, ``churns``, ``renewals``, ``yearly_rates``,
        ``files`` (name -> path or URL), ``manifest`` (``None`` without ``messy``), ``seconds``.

    Raises
    ------
    ConfigError
        ``messy`` without ``ingest.sources``.
    ValueError
        The catalog does not fit the simulator, or (``messy``) the sources / ``ingest.as_of`` cannot
        hold the events (raised by the simulator).
    OutputError
        Another run holds ``paths.events``, or a file cannot be written.
    """
    started = time.perf_counter()
    if messy and not settings.ingest.sources:
        raise ConfigError("messy raw sources need ingest.sources in the config (see configs/demo.yaml)")
    with folder_lock(settings.paths.events, what="signals simulate"):
        world = simulate_crm(settings, progress=progress)
        manifest = None
        frames = None
        if messy:
            frames, manifest = messy_sources(world, settings, seed=settings.simulate.seed)
        files = {name: str(path) for name, path in write_world(world, settings.paths).items()}
        if frames is not None:
            files.update({f"raw {name}": where for name, where in write_raw_sources(frames, settings).items()})
            files["manifest"] = str(write_json(manifest, Path(settings.paths.raw_dir) / "manifest.json"))
    realised = world.truth["realised"]
    return {
        "customers": realised["customers"],
        "events": realised["events"],
        "events_per_type": realised["events_per_type"],
        "purchases": realised["purchases"],
        "new_purchases": realised["new_purchases"],
        "upsells": realised["upsells"],
        "winbacks": realised["winbacks"],
        "churns": realised["churns"],
        "renewals": realised["renewals"],
        "yearly_rates": realised["yearly_rates"],
        "shift_date": world.truth["shift_date"],
        "files": files,
        "manifest": manifest,
        "seconds": round(time.perf_counter() - started, 3),
    }
