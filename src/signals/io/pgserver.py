"""A throwaway PostgreSQL server from Debian's packages, for the tests and the write benchmark.

:func:`temporary_postgres` runs ``initdb`` and ``postgres`` in a temporary folder on 127.0.0.1 on
a free port, with password authentication, and yields the SQLAlchemy URL (password included: it
is for the caller's environment, never for a config file). ``initdb`` and ``postgres`` refuse to
run as root, so as root they run as the ``postgres`` user (``runuser``). The server is stopped and
its folder removed on exit. :class:`PostgresUnavailable` says why one cannot be started.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresUnavailable", "temporary_postgres"]


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server can be started here (the message says why)."""


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def temporary_postgres(*, password: str = "signals-test", database: str = "crm",
                       user: str = "signals") -> Iterator[str]:
    """Start a server, create ``database``, yield ``postgresql+psycopg://user:password@127.0.0.1:port/database``."""
    try:
        import psycopg
    except ImportError:
        raise PostgresUnavailable("psycopg is not installed (pip install 'signals[postgres]')") from None
    from sqlalchemy.engine import URL

    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PostgresUnavailable("PostgreSQL is not installed (make system-deps installs Debian's postgresql)")
    as_root = os.geteuid() == 0
    prefix: list[str] = []
    owner = None
    if as_root:
        import pwd

        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable("running as root and there is no postgres user to run the server as") from None
        if runuser is None:
            raise PostgresUnavailable("running as root without runuser to start PostgreSQL as the postgres user")
        prefix = [runuser, "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="signals-pg-"))
    data, sockets, pwfile = root / "data", root / "sockets", root / "pw"
    sockets.mkdir()
    pwfile.write_text(password + "\n")
    if owner is not None:
        for path in (root, sockets, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    server = log = None
    try:
        init = subprocess.run(
            [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", user, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C"], capture_output=True, text=True)
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-300:]}")
        port = _free_port()
        log = open(root / "server.log", "w")  # noqa: SIM115 - open while the server runs
        server = subprocess.Popen(
            [*prefix, str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
             "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="postgres",
                                     autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{database}" ENCODING \'UTF8\'')
                break
            except psycopg.OperationalError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise PostgresUnavailable(
                        f"PostgreSQL did not start: {(root / 'server.log').read_text()[-500:]}") from None
                time.sleep(0.3)
        yield URL.create("postgresql+psycopg", username=user, password=password, host="127.0.0.1", port=port,
                         database=database).render_as_string(hide_password=False)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
        if log is not None:
            log.close()
        shutil.rmtree(root, ignore_errors=True)
