"""systemd units: certificate renewal (a oneshot service and a twice-daily timer) and the
engine's containment lines."""

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


MEMORY_HEADROOM = 512 << 20
"""Above the estimate: the model file's page cache is charged to the unit too, and a burst of
long prompts grows compute buffers."""


def engine_containment(memory_estimate: int) -> str:
    """``[Service]`` lines that keep a runaway engine from taking the VM down.

    ``MemoryMax`` = the memory estimate x 1.25 + 512 MiB: past it the kernel's OOM killer
    stops the engine (its own cgroup), not sshd or nginx, and ``Restart=on-failure`` brings it
    back. No swap for the engine (a swapping engine stalls the whole VM for minutes), and a
    positive ``OOMScoreAdjust`` makes it the first choice if the VM itself runs out.
    """
    mib = -(-(memory_estimate * 5 // 4 + MEMORY_HEADROOM) // (1 << 20))
    return f"MemoryMax={mib}M\nMemorySwapMax=0\nOOMScoreAdjust=500\n"

