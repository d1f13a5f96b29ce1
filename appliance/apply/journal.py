"""The apply's safety net: one lock, a journal of old file versions, recovery, the log.

An apply killed half-way leaves a journal that the next apply rolls back first.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from appliance.apply.changes import Change
from appliance.apply.runtime import Context, Event
from appliance.errors import LockedError
from appliance.host.files import atomic_write, current_mode, remove
from appliance.host.paths import Layout


def _journal(layout: Layout) -> Path:
    return layout.map(layout.journal_dir)


def journal_begin(changes: list[Change], layout: Layout) -> None:
    jdir = _journal(layout)
    shutil.rmtree(jdir, ignore_errors=True)
    jdir.mkdir(parents=True, mode=0o700)
    entries = []
    for n, c in enumerate(changes):
        backup = None
        if c.old is not None:
            backup = f"{n:04d}"
            atomic_write(jdir / backup, c.old, 0o600)
        entries.append({"path": c.spec.path, "backup": backup,
                        "mode": current_mode(layout.map(c.spec.path))})
    atomic_write(jdir / "journal.json", json.dumps({"entries": entries}).encode(), 0o600)


def journal_restore(layout: Layout) -> bool:
    """Put back every file the journal names; True if there was a journal."""
    jdir = _journal(layout)
    try:
        entries = json.loads((jdir / "journal.json").read_text())["entries"]
    except FileNotFoundError:
        shutil.rmtree(jdir, ignore_errors=True)  # died before the journal was complete
        return False
    for e in reversed(entries):
        target = layout.map(e["path"])
        if e["backup"] is None:
            remove(target)
        else:
            atomic_write(target, (jdir / e["backup"]).read_bytes(), e["mode"] or 0o644)
    shutil.rmtree(jdir, ignore_errors=True)
    return True


def journal_clear(layout: Layout) -> None:
    shutil.rmtree(_journal(layout), ignore_errors=True)


@contextlib.contextmanager
def apply_lock(layout: Layout) -> Iterator[None]:
    """One apply at a time. The holder writes its pid into the lock file, so a second apply
    can say who holds it; the kernel drops the lock when the holder exits, however it exits."""
    path = layout.map(layout.lock_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip()
            raise LockedError(int(holder) if holder.isdigit() else None) from None
        f.truncate(0)
        f.write(f"{os.getpid()}\n")
        f.flush()
        yield


def log_line(layout: Layout, text: str) -> None:
    path = layout.map(layout.apply_log)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(f"{dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ} {text}\n")


def recover(ctx: Context) -> bool:
    """Roll back the files of an apply that was killed half-way (call under the lock)."""
    if not journal_restore(ctx.layout):
        return False
    log_line(ctx.layout, "recovered: rolled back files of an interrupted apply")
    ctx.emit(Event("recover", "done", "rolled back an interrupted apply"))
    return True
