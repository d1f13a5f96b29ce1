"""systemd units of the cluster roles: the agent (publish / discover) and the drain on stop."""

from __future__ import annotations

import shlex

from appliance.host.paths import Layout
from appliance.host.site import Site

AGENT_UNIT = "slm-cluster.service"
DRAIN_UNIT = "slm-drain.service"
DRAIN_TIMEOUT_S = 150
"""Inside the 180 s KVM waits after the ACPI shutdown before it destroys the VM."""
MANAGED = "# Managed by slm-appliance: the next apply overwrites changes made here."


def _wizard(site: Site, layout: Layout, *args: str) -> str:
    return shlex.join([site.wizard_bin, "--root", str(layout.root), *args])


def render_agent_unit(site: Site, layout: Layout, role: str) -> str:
    what = ("publish this backend through OneGate once it is ready, and its busy ratio"
            if role == "backend" else "follow the backends published through OneGate")
    return f"""{MANAGED}
[Unit]
Description=SLM appliance cluster agent: {what}
After=network-online.target nginx.service
Wants=network-online.target

[Service]
Type=simple
ExecStart={_wizard(site, layout, "cluster", "agent")}
Restart=always
RestartSec=5

[Install]
WantedBy=multi-user.target
"""


def render_drain_unit(site: Site, layout: Layout, engine_units: tuple[str, ...]) -> str:
    """Stopped first at shutdown (it starts after them): the drain runs while the engine and
    nginx still serve, inside the hypervisor's 180 s ACPI window."""
    stop = _wizard(site, layout, "drain", "--timeout", str(DRAIN_TIMEOUT_S), "--leave-running")
    return f"""{MANAGED}
[Unit]
Description=SLM appliance: drain this backend before the engine stops (scale-in, shutdown)
After=network-online.target {" ".join(engine_units)} nginx.service {AGENT_UNIT}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
ExecStop={stop}
TimeoutStopSec={DRAIN_TIMEOUT_S + 20}

[Install]
WantedBy=multi-user.target
"""
