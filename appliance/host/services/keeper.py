"""``Restart=on-failure`` for the sandbox, as systemd does it (systemd cannot run here).

The supervisor runs this file (plain stdlib, no package import) in place of a unit whose file
says ``Restart=on-failure`` or ``always``. It reads a JSON spec on stdin (argv, env, cwd,
pidfile, restart, restart_sec), runs the service, and writes the service's PID and start time
to the unit's pidfile (systemd's MainPID: what ``pid()`` and the tests see). When the service
ends:

- exit 0, or killed by SIGHUP/SIGINT/SIGTERM/SIGPIPE: a clean stop, as systemd counts it; no
  restart unless ``Restart=always``;
- anything else (a non-zero exit, SIGKILL, SIGSEGV, SIGABRT, the OOM killer): start again after
  ``RestartSec``, unless it was started 5 times within 10 s (systemd's default
  ``StartLimitBurst``/``StartLimitIntervalSec``): then give up, as a failed unit.

Every end and restart is written to the unit's log, so a crash is visible in ``log_tail``.
SIGTERM to the keeper stops the service (SIGTERM, SIGKILL after 15 s) without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CLEAN_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE)
START_LIMIT_BURST, START_LIMIT_INTERVAL_S = 5, 10.0
STOP_TIMEOUT_S = 15.0


def proc_state(pid: int) -> tuple[str, int] | None:
    """(state letter, start time in ticks) or None when gone; zombies count as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[0], int(fields[19])


def write_pidfile(path: Path, pid: int) -> None:
    """``PID START_TICKS``, atomically, so a reused PID is never taken for ours."""
    st = proc_state(pid)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{pid} {st[1] if st else 0}\n")
    os.replace(tmp, path)


def clean_exit(returncode: int) -> bool:
    return returncode == 0 or -returncode in CLEAN_SIGNALS


def _note(text: str) -> None:
    print(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} keeper: {text} ---", flush=True)


def keep(spec: dict[str, Any]) -> int:
    pidfile = Path(spec["pidfile"])
    stopping = False

    def on_term(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    starts: list[float] = []
    while not stopping:
        starts = [t for t in starts if time.monotonic() - t < START_LIMIT_INTERVAL_S]
        if len(starts) >= START_LIMIT_BURST:
            _note(f"started {START_LIMIT_BURST} times in {START_LIMIT_INTERVAL_S:.0f} s: "
                  "giving up (start-limit-hit)")
            return 1
        starts.append(time.monotonic())
        # Its own process group, as under systemd and as without a keeper: whoever signals
        # the service's group (a test killing a "VM") reaches the service, not the keeper.
        child = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, cwd=spec["cwd"],
                                 env={**os.environ, **spec["env"]}, start_new_session=True)
        write_pidfile(pidfile, child.pid)
        deadline: float | None = None
        while child.poll() is None:
            if stopping and deadline is None:
                deadline = time.monotonic() + STOP_TIMEOUT_S
                child.send_signal(signal.SIGTERM)
            if deadline is not None and time.monotonic() > deadline:
                child.kill()
            time.sleep(0.05)
        pidfile.unlink(missing_ok=True)
        rc = child.returncode
        how = f"killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        if stopping:
            _note(f"stopped ({how})")
            return 0
        if clean_exit(rc) and spec["restart"] != "always":
            _note(f"{how}: a clean stop, no restart")
            return 0
        _note(f"{how}: restarting in {spec['restart_sec']:g} s (Restart={spec['restart']})")
        end = time.monotonic() + float(spec["restart_sec"])
        while not stopping and time.monotonic() < end:
            time.sleep(0.05)
    return 0


if __name__ == "__main__":
    sys.exit(keep(json.loads(sys.stdin.read())))
