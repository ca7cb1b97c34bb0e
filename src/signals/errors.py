"""The package's own error types: user mistakes, said in one line; everything else is a bug.

The CLI prints a :class:`SignalsError` as one line (no traceback) and exits non-zero; any other
exception keeps its traceback, because it means the package itself is wrong. So raise one of
these, with a message that names the file, key, row or value to fix, whenever the *input* is wrong:

=================  =======================================================================
``ConfigError``    a configuration file, key or ``--set`` override is wrong
``IngestError``    a source cannot be read or mapped (file, column, variable, query)
``DataError``      a table breaks a data contract (events, cutoffs, customers), or the data
                   cannot support what was asked (no positives in the test period, a history
                   too short for the split)
``OutputError``    an output cannot be written (disk full, read-only, locked by another run)
``TrackingError``  the MLflow tracking server or registry cannot be reached, dies mid-run,
                   or lacks what was asked for (no champion alias, unknown model)
=================  =======================================================================

They subclass ``ValueError`` (``OutputError``: ``OSError``) so existing ``except ValueError``
code keeps working.

>>> try:
...     raise DataError("cutoffs: 3 row(s) have no cutoff")
... except ValueError as exc:
...     print(type(exc).__name__, "-", exc)
DataError - cutoffs: 3 row(s) have no cutoff
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError", "DataError", "IngestError", "OutputError", "SignalsError", "TrackingError"]


class SignalsError(Exception):
    """Base of every error the user can fix; the CLI shows its message without a traceback."""


class ConfigError(SignalsError, ValueError):
    """A configuration file or override is wrong; the message says where and what to fix."""


class DataError(SignalsError, ValueError):
    """Input data break a contract, or cannot support the requested computation."""


class IngestError(SignalsError, ValueError):
    """Sources cannot be ingested: a missing file or variable, a failing query, a column or mapping to fix.

    The message says what is wrong and which configuration key to change. With ``strict=True``,
    also raised when rows were rejected; ``result`` then holds the
    :class:`~signals.ingest.IngestResult` (so the rejects can still be written and shown),
    otherwise it is ``None``.
    """

    def __init__(self, message: str, *, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class OutputError(SignalsError, OSError):
    """An output cannot be written: no space, no permission, or another run holds the folder."""


class TrackingError(SignalsError, RuntimeError):
    """MLflow cannot do what was asked: the store is unreachable or died, or a model or alias is missing.

    The message names the tracking URI (without credentials), the step that failed and what
    state the registry was left in (a champion alias is never left half-moved).
    """
