"""The sandbox supervisor: the ExecStart of the same unit files systemd would use, run as
daemonized processes with pidfiles and logs under the root (nginx in the foreground with
``-c``/``-p``). Pidfiles record the process start time so a reused PID is not taken for ours.
A unit with ``Restart=on-failure`` runs under ``keeper.py``, which restarts it after a crash as
systemd would, so a crashed engine is visible and recovered the same way in tests.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ServiceError
from appliance.host.paths import Layout
from appliance.host.services import keeper
from appliance.host.services.base import NGINX, nginx_argv
from appliance.host.site import Site

_children: dict[int, subprocess.Popen[bytes]] = {}


@atexit.register
def _reap_ended_children() -> None:
    """Collect the exit status of every service this process started that has ended since,
    e.g. stopped by a later ``wizard stop`` in another process: otherwise each stays a zombie
    until we exit and Python reports it as "still running". Services still running are
    daemons meant to outlive us, as systemd's do."""
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            _children.pop(pid, None)


@dataclass
class Sandbox:
    """A tiny supervisor: daemonized processes, pidfiles and logs under the root."""

    site: Site
    layout: Layout

    def _pidfile(self, unit: str) -> Path:
        return self.layout.map(f"{self.layout.run_dir}/{unit}.pid")

    def logfile(self, unit: str) -> Path:
        return self.layout.map(f"/var/log/slm-appliance/{unit}.log")

    def _unit_exec(self, unit: str) -> tuple[list[str], dict[str, str], Path]:
        if unit == NGINX:
            return [*nginx_argv(self.site, self.layout), "-g", "daemon off;"], {}, self.layout.root
        path = self.layout.map(f"{self.layout.systemd_dir}/{unit}")
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ServiceError(f"{unit}: no unit file {path}") from None
        argv: list[str] = []
        env: dict[str, str] = {}
        cwd = self.layout.root
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key == "ExecStart":
                argv = shlex.split(value)
            elif key == "EnvironmentFile":
                env.update(_read_env(Path(value)))
            elif key == "WorkingDirectory":
                cwd = Path(value)
        if not argv:
            raise ServiceError(f"{unit}: no ExecStart in {path}")
        return argv, env, cwd

    def pid(self, unit: str) -> int | None:
        try:
            pid_s, start_s = self._pidfile(unit).read_text().split()
            pid, start = int(pid_s), int(start_s)
        except (OSError, ValueError):
            return None
        st = keeper.proc_state(pid)
        return pid if st and st[1] == start else None

    def is_active(self, unit: str) -> bool:
        return self.pid(unit) is not None

    def _keeper_pidfile(self, unit: str) -> Path:
        return self.layout.map(f"{self.layout.run_dir}/{unit}.keeper.pid")

    def _restart_policy(self, unit: str) -> tuple[str, float]:
        """(``Restart=``, ``RestartSec=``) of the unit file; nginx and missing files: no."""
        if unit == NGINX:
            return "no", 0.0
        try:
            text = self.layout.map(f"{self.layout.systemd_dir}/{unit}").read_text()
        except OSError:
            return "no", 0.0
        restart = re.search(r"^Restart=(\S+)$", text, re.M)
        sec = re.search(r"^RestartSec=(\d+(?:\.\d+)?)s?$", text, re.M)
        return (restart.group(1) if restart else "no"), float(sec.group(1)) if sec else 0.1

    def _keeper_pid(self, unit: str) -> int | None:
        try:
            pid_s, start_s = self._keeper_pidfile(unit).read_text().split()
        except (OSError, ValueError):
            return None
        st = keeper.proc_state(int(pid_s))
        return int(pid_s) if st and st[1] == int(start_s) else None

    def start(self, unit: str) -> None:
        if self.is_active(unit):
            return
        if self._keeper_pid(unit):
            self.stop(unit)  # waiting to restart it: start now instead, as systemctl would
        argv, env, cwd = self._unit_exec(unit)
        log = self.logfile(unit)
        log.parent.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        restart, restart_sec = self._restart_policy(unit)
        if restart in ("on-failure", "always"):
            self._start_kept(unit, argv, env, cwd, restart, restart_sec)
            return
        with open(log, "ab") as out:
            out.write(f"--- start {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            out.flush()
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    cwd=cwd, env={**os.environ, **env}, start_new_session=True)
        _children[proc.pid] = proc
        st = keeper.proc_state(proc.pid)
        pidfile = self._pidfile(unit)
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.write_text(f"{proc.pid} {st[1] if st else 0}\n")
        time.sleep(0.15)  # catch immediate failures (bad config, port in use, missing library)
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            pidfile.unlink(missing_ok=True)
            raise ServiceError(f"{unit} exited at start (code {proc.returncode}):\n"
                               + self.log_tail(unit, 15))

    def _start_kept(self, unit: str, argv: list[str], env: dict[str, str], cwd: Path,
                    restart: str, restart_sec: float) -> None:
        pidfile = self._pidfile(unit)
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        pidfile.unlink(missing_ok=True)
        spec = {"argv": argv, "env": env, "cwd": str(cwd), "pidfile": str(pidfile),
                "restart": restart, "restart_sec": restart_sec}
        with open(self.logfile(unit), "ab") as out:
            out.write(f"--- start {time.strftime('%Y-%m-%d %H:%M:%S')} (Restart={restart}) "
                      "---\n".encode())
            out.flush()
            proc = subprocess.Popen([sys.executable, keeper.__file__], stdin=subprocess.PIPE,
                                    stdout=out, stderr=out, cwd=cwd, start_new_session=True)
        _children[proc.pid] = proc
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(spec).encode())  # not on a command line
        proc.stdin.close()
        keeper.write_pidfile(self._keeper_pidfile(unit), proc.pid)
        deadline = time.monotonic() + 10
        while not pidfile.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.15)  # catch immediate failures (bad config, port in use, missing library)
        if self.pid(unit) is None:
            self.stop(unit)
            raise ServiceError(f"{unit} exited at start:\n" + self.log_tail(unit, 15))

    def stop(self, unit: str) -> None:
        kept = self._keeper_pid(unit)
        if kept is not None:  # the keeper stops the service and does not restart it
            self._terminate(kept, keeper.STOP_TIMEOUT_S + 5)
            self._keeper_pidfile(unit).unlink(missing_ok=True)
        pid = self.pid(unit)
        if pid is not None:
            self._terminate(pid, keeper.STOP_TIMEOUT_S)
        self._pidfile(unit).unlink(missing_ok=True)

    def _terminate(self, pid: int, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s; reaped when it is our child."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while keeper.proc_state(pid) and time.monotonic() < deadline:
            self._reap(pid)
            time.sleep(0.02)
        if keeper.proc_state(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap(pid, block=True)

    @staticmethod
    def _reap(pid: int, block: bool = False) -> None:
        proc = _children.get(pid)
        if proc is None:
            return
        try:
            proc.wait(timeout=5 if block else 0.001)
            _children.pop(pid, None)
        except subprocess.TimeoutExpired:
            pass

    def restart(self, unit: str) -> None:
        self.stop(unit)
        self.start(unit)

    def reload(self, unit: str) -> None:
        pid = self.pid(unit)
        sig = signal.SIGHUP if unit == NGINX else self._reload_signal(unit)
        if pid and sig:
            os.kill(pid, sig)
        else:
            self.restart(unit)

    def _reload_signal(self, unit: str) -> signal.Signals | None:
        """``ExecReload=/bin/kill -USR2 $MAINPID`` (HAProxy's seamless reload) -> SIGUSR2."""
        try:
            text = self.layout.map(f"{self.layout.systemd_dir}/{unit}").read_text()
        except OSError:
            return None
        m = re.search(r"^ExecReload=\S*kill -(?:s )?(?:SIG)?([A-Z0-9]+) \$MAINPID$", text, re.M)
        return getattr(signal, f"SIG{m.group(1)}", None) if m else None

    def daemon_reload(self) -> None:
        """Unit files are read at each start."""

    def log_tail(self, unit: str, lines: int = 30) -> str:
        try:
            text = self.logfile(unit).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _read_env(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        env[key.strip()] = parts[0] if parts else ""
    return env
