"""A real PostgreSQL server for the sink tests, from Debian's packages, started by the test session.

The server (:func:`signals.io.pgserver.temporary_postgres`) runs on 127.0.0.1 on a free port in a
temporary folder with password authentication, and is stopped at the end of the session. Without
PostgreSQL installed (``make system-deps``), the tests that need it are skipped with the reason.
"""

from __future__ import annotations

import pytest

from signals.io.pgserver import PostgresUnavailable, temporary_postgres

PASSWORD = "s3cret-pw;'\"x"  # odd characters on purpose: the URL must carry them escaped


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg://signals:<password>@127.0.0.1:<port>/crm`` of a fresh server."""
    try:
        server = temporary_postgres(password=PASSWORD)
        url = server.__enter__()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
