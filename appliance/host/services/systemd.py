"""systemd on the appliance: every action is a ``systemctl`` call through the runner."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ServiceError
from appliance.host.runner import Runner, run


@dataclass
class Systemd:
    """systemctl for everything; nginx is Debian's unit, reading /etc/nginx/nginx.conf."""

    runner: Runner = run

    def _ctl(self, *args: str) -> None:
        r = self.runner(["systemctl", *args], timeout=120)
        if not r.ok:
            raise ServiceError(f"systemctl {' '.join(args)} failed: {r.stderr.strip()}")

    def is_active(self, unit: str) -> bool:
        return self.runner(["systemctl", "is-active", "--quiet", unit]).ok

    def start(self, unit: str) -> None:
        self._ctl("enable", "--now", unit)

    def stop(self, unit: str) -> None:
        if self.runner(["systemctl", "cat", unit]).ok:
            self._ctl("disable", "--now", unit)

    def restart(self, unit: str) -> None:
        self._ctl("enable", unit)
        self._ctl("restart", unit)

    def reload(self, unit: str) -> None:
        self._ctl("reload", unit)

    def daemon_reload(self) -> None:
        self._ctl("daemon-reload")

    def pid(self, unit: str) -> int | None:
        r = self.runner(["systemctl", "show", "-p", "MainPID", "--value", unit])
        pid = int(r.stdout.strip() or 0) if r.ok else 0
        return pid or None

    def log_tail(self, unit: str, lines: int = 30) -> str:
        return self.runner(["journalctl", "-u", unit, "-n", str(lines), "--no-pager"]).stdout
