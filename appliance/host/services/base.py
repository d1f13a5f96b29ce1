"""The service seam's interface: what every service manager offers, and nginx's argv.

Two implementations: systemd on the appliance (``systemd.py``) and a pidfile supervisor that
runs the same unit files in a sandbox folder (``supervisor.py``). Tests may add an in-memory one.
"""

from __future__ import annotations

from typing import Protocol

from appliance.host.paths import Layout
from appliance.host.site import Site

NGINX = "nginx.service"
HAPROXY = "haproxy.service"


class ServiceManager(Protocol):
    def is_active(self, unit: str) -> bool: ...
    def start(self, unit: str) -> None: ...
    def stop(self, unit: str) -> None: ...
    def restart(self, unit: str) -> None: ...
    def reload(self, unit: str) -> None: ...
    def daemon_reload(self) -> None: ...
    def pid(self, unit: str) -> int | None: ...
    def log_tail(self, unit: str, lines: int = 30) -> str: ...


def nginx_argv(site: Site, layout: Layout) -> list[str]:
    return [site.nginx_bin, "-c", str(layout.map(layout.nginx_conf)),
            "-p", str(layout.map(layout.nginx_prefix)) + "/"]
