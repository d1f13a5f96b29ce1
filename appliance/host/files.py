"""Files as data (what should be on disk) and atomic, durable writes."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class FileSpec:
    """One file the appliance owns. ``content=None`` means the file must not exist."""

    path: str
    content: bytes | None
    mode: int = 0o644
    owner: str | None = None
    """``user:group`` to chown to on the appliance; ignored in a sandbox."""
    secret: bool = False
    """Never shown in diffs or logs."""
    affects: frozenset[str] = field(default_factory=frozenset)
    """Which services must act when it changes: engine, nginx, units."""


def read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def current_mode(path: Path) -> int | None:
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return None


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _ids(owner: str) -> tuple[int, int]:
    user, _, group = owner.partition(":")
    uid = pwd.getpwnam(user).pw_uid
    gid = grp.getgrnam(group).gr_gid if group else pwd.getpwnam(user).pw_gid
    return uid, gid


def makedirs(path: Path, mode: int = 0o755) -> None:
    """Create missing folders with an explicit mode: the one-apps framework runs with umask
    0077, which would leave folders that nginx's and the engine's users cannot traverse."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
        os.chmod(d, mode)


def atomic_write(path: Path, content: bytes, mode: int, owner: str | None = None) -> None:
    """Write to a hidden temp file in the same folder, fsync, chmod/chown, rename, fsync folder.

    The temp name starts with '.', so LocalAI (which loads every *.yaml* in its models folder)
    never sees a half-written file.
    """
    makedirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fchmod(f.fileno(), mode)
            if owner:
                uid, gid = _ids(owner)
                os.fchown(f.fileno(), uid, gid)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
        _fsync_dir(path.parent)
