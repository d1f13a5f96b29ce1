"""systemd units for certificate renewal: a oneshot service and a twice-daily timer."""

from __future__ import annotations

from appliance.host.site import Site
from appliance.plan.render import MANAGED

RENEW_SERVICE = "slm-renew.service"
RENEW_TIMER = "slm-renew.timer"


def render_renew_service(site: Site) -> str:
    return f"""{MANAGED}
[Unit]
Description=SLM appliance: renew the Let's Encrypt certificate when due
After=network-online.target nginx.service
Wants=network-online.target

[Service]
Type=oneshot
ExecStart={site.wizard_bin} renew
"""


def render_renew_timer() -> str:
    """Twice a day with a random delay, as Let's Encrypt asks of clients (and ARI needs)."""
    return f"""{MANAGED}
[Unit]
Description=SLM appliance: check certificate renewal twice a day

[Timer]
OnCalendar=*-*-* 00,12:00:00
RandomizedDelaySec=3h
Persistent=true

[Install]
WantedBy=timers.target
"""
