"""A real PostgreSQL server for the sink tests, from Debian's packages, started by the test session.

The server runs on 127.0.0.1 on a free port in a temporary folder, with password authentication
(the URL with the password reaches the code only through the environment, as in production), and
is stopped at the end of the session. Without PostgreSQL installed (``make system-deps``), the
tests that need it are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

PASSWORD = "s3cret-pw;'\"x"  # odd characters on purpose: the URL must carry them escaped


def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the ``postgres`` user then."""
    if os.geteuid() != 0:
        return cmd
    runuser = shutil.which("runuser")
    if runuser is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL as the postgres user")
    return [runuser, "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg://signals:<password>@127.0.0.1:<port>/crm`` of a fresh server."""
    pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'signals[postgres]')")
    bin_dir = _pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (make system-deps installs Debian's postgresql)")
    if os.geteuid() == 0:
        try:
            import pwd

            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
    root = Path(tempfile.mkdtemp(prefix="signals-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        for path in (root, sockets, pwfile):
            os.chown(path, user.pw_uid, user.pw_gid)
    init = subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "signals", f"--pwfile={pwfile}",
                         "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"]),
        capture_output=True, text=True)
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    port = _free_port()
    log = open(root / "server.log", "w")  # noqa: SIM115 - open while the server runs
    server = subprocess.Popen(
        _as_server_user([str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                         "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
                         "-c", "full_page_writes=off"]),
        stdout=log, stderr=subprocess.STDOUT)
    import psycopg

    url_admin = dict(host="127.0.0.1", port=port, user="signals", password=PASSWORD, dbname="postgres")
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(**url_admin, autocommit=True) as conn:
                conn.execute("CREATE DATABASE crm ENCODING 'UTF8'")
            break
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.terminate()
                log.close()
                text = (root / "server.log").read_text()[-500:]
                shutil.rmtree(root, ignore_errors=True)
                pytest.skip(f"PostgreSQL did not start: {text}")
            time.sleep(0.3)
    from sqlalchemy.engine import URL

    url = URL.create("postgresql+psycopg", username="signals", password=PASSWORD, host="127.0.0.1",
                     port=port, database="crm")
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
