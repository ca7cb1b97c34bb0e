"""Outputs written whole or not at all, and one writer per folder.

Every file the package writes goes through :func:`atomic_file`: the content is written to a
temporary name in the same folder, flushed to disk, then renamed over the target
(``os.replace`` is atomic on one file system). A crash, Ctrl-C or full disk leaves the old file
or no file, never a truncated one. Folders (model bundles, reports) go through
:func:`atomic_directory`: built under a temporary name, then swapped in, so a reader never sees
a mix of old and new files.

:func:`folder_lock` stops two runs from writing one output: the second fails at once with an
:class:`~signals.errors.OutputError` that says which process holds the lock. The lock is an OS
advisory lock (``flock``), released by the kernel when the holder exits, so a killed run never
leaves a stale lock behind.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with atomic_file(folder / "a.txt") as tmp:
...     _ = tmp.write_text("whole")
>>> (folder / "a.txt").read_text()
'whole'
>>> try:
...     with atomic_file(folder / "a.txt") as tmp:
...         _ = tmp.write_text("half")
...         raise KeyboardInterrupt
... except KeyboardInterrupt:
...     pass
>>> (folder / "a.txt").read_text(), sorted(p.name for p in folder.iterdir())
('whole', ['a.txt'])
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import json
import os
import shutil
import signal
import socket
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from signals.errors import OutputError

__all__ = [
    "atomic_directory",
    "atomic_file",
    "atomic_files",
    "committed_outputs",
    "folder_lock",
    "forget_committed_outputs",
    "output_error",
]

_TMP_MARK = ".tmp-"
_OLD_MARK = ".old-"
_COMMITTED: list[Path] = []  # outputs replaced in this process, in order (for "what was kept" messages)


def committed_outputs() -> list[Path]:
    """The outputs this process has put in place so far (files and folders), oldest first.

    A file written inside a folder still being built by :func:`atomic_directory` is not one: it
    is kept only if that folder is, and then the folder is listed.
    """
    return list(_COMMITTED)


def _record(path: Path) -> None:
    if not any(part.startswith(".") and _TMP_MARK in part for part in path.parent.parts):
        _COMMITTED.append(path)


def forget_committed_outputs() -> None:
    """Start a new list for :func:`committed_outputs` (the CLI does it at the start of each command)."""
    _COMMITTED.clear()


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs (they are delivered right after it)."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    except (AttributeError, ValueError, OSError):  # not POSIX: the renames are still microseconds apart
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but is not ours
        return True
    return True


def _remove_stale(path: Path) -> None:
    """Remove temporary siblings of ``path`` left by killed runs (their process no longer exists)."""
    with contextlib.suppress(OSError):
        for mark in (_TMP_MARK, _OLD_MARK):
            for leftover in path.parent.glob(f".{_glob_escape(path.name)}{mark}*"):
                pid = leftover.name[len(path.name) + 1 + len(mark):].split("-", 1)[0]
                if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
                    if leftover.is_dir():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _temporary_sibling(path: Path) -> Path:
    _remove_stale(path)
    return path.with_name(f".{path.name}{_TMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def output_error(path: Path | str, exc: OSError) -> OutputError:
    """An :class:`OutputError` that says in plain words why ``path`` could not be written."""
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOENT: "a folder on the way does not exist",
        errno.ENOTDIR: "a part of the path is a file, not a folder",
        errno.EISDIR: "a folder is in the way",
    }
    why = reasons.get(exc.errno or -1, exc.strerror or str(exc))
    return OutputError(f"cannot write {path}: {why}; nothing was replaced")


def _fsync_directory(folder: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` in one rename.

    Parent folders are created. If the block raises (or is interrupted), the temporary file is
    removed and ``path`` keeps its old content. ``OSError`` from the disk (full, read-only,
    no permission) becomes :class:`~signals.errors.OutputError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from exc
    tmp = _temporary_sibling(path)
    try:
        yield tmp
        if tmp.exists():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, path)
            _record(path)
            _fsync_directory(path.parent)
    except OSError as exc:
        raise output_error(path, exc) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_files(*paths: str | Path) -> Iterator[list[Path]]:
    """Like :func:`atomic_file` for several outputs that belong together (events + rejects + ...).

    Yields one temporary path per target. Nothing is replaced until the block succeeds; then
    every file is flushed to disk first and the renames follow one another with Ctrl-C held back,
    so an interrupt leaves all old files or all new ones (only a power cut in the microseconds
    between two renames could leave a prefix of the new ones).
    """
    targets = [Path(p) for p in paths]
    try:
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(target, exc) from exc
    temps = [_temporary_sibling(target) for target in targets]
    try:
        yield temps
        for tmp in temps:
            if tmp.exists():
                with open(tmp, "rb") as handle:
                    os.fsync(handle.fileno())
        with _signals_deferred():  # Ctrl-C between two renames would leave a mix: it waits for the last one
            for tmp, target in zip(temps, targets, strict=True):
                if tmp.exists():
                    os.replace(tmp, target)
                    _record(target)
        for folder in {t.parent for t in targets}:
            _fsync_directory(folder)
    except OSError as exc:
        raise output_error(", ".join(str(t) for t in targets), exc) from exc
    finally:
        for tmp in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def atomic_directory(folder: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``folder``; on success it takes ``folder``'s place.

    The old folder (if any) is moved aside, the new one renamed into place, then the old one
    deleted: a reader sees the old folder, the new folder, or (for an instant, or after a
    crash between the two renames) none, never a mix. A failure removes the temporary folder
    and keeps the old one.
    """
    folder = Path(folder)
    tmp = _temporary_sibling(folder)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise output_error(folder, exc) from exc
    try:
        yield tmp
        old = folder.with_name(f".{folder.name}{_OLD_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")
        if folder.exists():
            os.replace(folder, old)
        os.replace(tmp, folder)
        _record(folder)
        _fsync_directory(folder.parent)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise output_error(folder, exc) from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def folder_lock(target: str | Path, *, what: str | None = None) -> Iterator[Path]:
    """Hold an exclusive lock on ``target`` (a file or folder) while the block runs.

    The lock file is ``.<name>.lock`` next to ``target``; it records the holder (pid, host,
    command, start time) so the second writer's error can say who holds it. Raises
    :class:`~signals.errors.OutputError` at once when another process holds the lock.
    """
    import fcntl

    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(target, exc) from exc
    lock_path = target.with_name(f".{target.name}.lock")
    handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            try:
                info = json.loads(holder)
                who = (f"pid {info['pid']} on {info['host']} ({info['command']}, started {info['started']})")
            except (ValueError, KeyError, TypeError):
                who = "another process"
            raise OutputError(
                f"{target} is being written by {who}; wait for it to finish "
                f"(two runs writing one output would leave a mix of both)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": what or " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:200],
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }))
        handle.flush()
        yield lock_path
    finally:
        handle.close()  # closing releases the flock
