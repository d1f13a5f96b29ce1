"""What the last successful apply recorded (state.json) and the wizard's done-marker."""

from __future__ import annotations

import json
from typing import Any

from appliance.host.files import read_bytes
from appliance.host.paths import Layout

DONE_MARKER = "/var/lib/slm-appliance/wizard.done"
DRAIN_MARKER = "/run/slm-appliance/draining"
"""Present while ``wizard drain`` runs (and after, until the next apply removes it)."""


def load_state(layout: Layout) -> dict[str, Any]:
    raw = read_bytes(layout.map(layout.state_file))
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}
