"""The service seam: systemd on the appliance, a pidfile supervisor in a sandbox folder.

The supervisor runs the ExecStart line of the same unit files systemd would use (nginx is run
in the foreground with ``-c``/``-p`` under the root), logs to ``/var/log/slm-appliance`` and keeps
pidfiles in ``/run/slm-appliance``, all under the root.
"""

from __future__ import annotations

from appliance.host.paths import Layout
from appliance.host.runner import Runner, run
from appliance.host.services.base import HAPROXY, NGINX, ServiceManager, nginx_argv
from appliance.host.services.supervisor import Sandbox
from appliance.host.services.systemd import Systemd
from appliance.host.site import Site

__all__ = ["HAPROXY", "NGINX", "Sandbox", "ServiceManager", "Systemd", "manager_for", "nginx_argv"]


def manager_for(site: Site, layout: Layout, runner: Runner = run) -> ServiceManager:
    if site.service_manager == "sandbox":
        return Sandbox(site, layout)
    return Systemd(runner)
