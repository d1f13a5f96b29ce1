"""Services: ``status`` (what runs now, ``--json`` for scripts) and ``stop``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from appliance.host.paths import Layout
from appliance.host.services import HAPROXY, NGINX, manager_for
from appliance.host.site import Site
from appliance.plan.engines import ENGINE_UNITS
from appliance.plan.render.cluster import AGENT_UNIT
from appliance.status import status

from .common import EXIT_FAIL, EXIT_OK


def add(sub: Any) -> None:
    st = sub.add_parser("status", help="what runs now")
    st.add_argument("--json", action="store_true")
    st.set_defaults(handler=cmd_status)
    sub.add_parser("stop", help="stop the engine and nginx").set_defaults(handler=cmd_stop)


def cmd_status(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    info = status(layout, manager_for(site, layout))
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for k, v in info.items():
            print(f"{k:14} {v}")
    return EXIT_OK if info["ready"] else EXIT_FAIL


def cmd_stop(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    services = manager_for(site, layout)
    for unit in (AGENT_UNIT, *ENGINE_UNITS, NGINX, HAPROXY):
        if services.is_active(unit):
            services.stop(unit)
            print(f"stopped {unit}")
    return EXIT_OK
