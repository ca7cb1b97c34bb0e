"""SQL sources against a real PostgreSQL server: read-only, and the password never shown (issue 12: 5, 6).

A throw-away server (initdb + pg_ctl, TCP on 127.0.0.1, scram-sha-256 passwords) runs for the
module. Skipped with the reason when PostgreSQL or psycopg is missing (``make system-deps``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from pathlib import Path

import pytest

from signals.errors import IngestError
from signals.io.sources import read_source
from signals.settings import SourceSettings

pytestmark = pytest.mark.slow

PASSWORD = "p@ss/w0rd#1"  # what a real admin password looks like: '@', '/' and '#' inside


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'signals[postgres]')")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (make system-deps)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="signals-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            shutil.chown(folder, "postgres", "postgres")
        except (LookupError, PermissionError):
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root without a 'postgres' user to start the server")
        as_user = ["runuser", "-u", "postgres", "--"]
    pwfile = folder / "pw"
    pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")
    data, port = folder / "data", _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    run(initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}")
    run(pg_ctl, "-D", str(data), "-w", "-l", str(folder / "log"), "-o",
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")
    url = f"postgresql+psycopg://postgres:{urllib.parse.quote(PASSWORD, safe='')}@127.0.0.1:{port}/postgres"
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE tickets (customer text, opened_at timestamptz, category text)")
        connection.exec_driver_sql("INSERT INTO tickets VALUES ('00042', '2025-03-01 09:00+09', 'Inquiry')")
        connection.exec_driver_sql(
            "CREATE FUNCTION wipe() RETURNS int LANGUAGE sql AS 'DELETE FROM tickets; SELECT 1'")
    engine.dispose()
    yield {"url": url, "port": port}
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def source(url: str, query: str = "SELECT customer, opened_at, category FROM tickets") -> SourceSettings:
    return SourceSettings(name="support", kind="sql", url=url, query=query,
                          columns={"customer_id": "customer", "ts": "opened_at", "touchpoint": "category"})


def rows(url: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        n = connection.exec_driver_sql("SELECT count(*) FROM tickets").scalar()
    engine.dispose()
    return int(n)


def test_reads_with_a_percent_encoded_password(server):
    raw = read_source(source(server["url"]))
    assert raw["customer"].tolist() == ["00042"] and str(raw["opened_at"].dt.tz) == "UTC"


@pytest.mark.parametrize("query", ["DROP TABLE tickets", "DELETE FROM tickets",
                                   "SELECT 1; DROP TABLE tickets", "SELECT * INTO stolen FROM tickets"])
def test_writing_statements_never_reach_the_server(server, query):
    with pytest.raises(IngestError, match="must be one read-only SELECT statement"):
        read_source(source(server["url"], query))
    assert rows(server["url"]) == 1


def test_a_select_that_writes_is_stopped_by_the_read_only_transaction(server):
    with pytest.raises(IngestError, match="read-only transaction"):
        read_source(source(server["url"], "SELECT wipe() AS customer, now() AS opened_at, 'x' AS category"))
    assert rows(server["url"]) == 1


def test_the_password_never_shows(server, monkeypatch):
    raw_url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{server['port']}/postgres"  # not encoded
    monkeypatch.setenv("SIGNALS_TEST_PG", raw_url)
    env_source = SourceSettings(name="support", kind="sql", url_env="SIGNALS_TEST_PG", query="SELECT 1 AS a",
                                columns={"customer_id": "a", "ts": "a", "touchpoint": "a"})
    with pytest.raises(IngestError) as err:
        read_source(env_source)
    message = str(err.value)
    assert "percent-encode it" in message and "ingest.sources[name=support].url_env" in message
    wrong = server["url"].replace(urllib.parse.quote(PASSWORD, safe=""), urllib.parse.quote("wr@ng/s3cret", safe=""))
    with pytest.raises(IngestError) as err:
        read_source(source(wrong))
    message = str(err.value) + " " + str(err.value.__cause__ or "")
    assert "password authentication failed" in message
    for secret in (PASSWORD, "w0rd", "wr@ng/s3cret", "s3cret", "wr%40ng"):
        assert secret not in message, secret
    for secret in ("w0rd", "p@ss"):
        assert secret not in str(err.value)
