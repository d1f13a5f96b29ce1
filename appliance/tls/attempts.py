"""The record of ACME attempts (``acme.json``): backoff, last error, last renewal.

Kept apart from the apply state so a failed attempt never touches what is served."""

from __future__ import annotations

import json
from typing import Any

from appliance.host.files import atomic_write
from appliance.host.paths import LIB, Layout

STATUS_FILE = f"{LIB}/acme.json"


def load_status(layout: Layout) -> dict[str, Any]:
    try:
        data = json.loads(layout.map(STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_status(layout: Layout, status: dict[str, Any]) -> None:
    atomic_write(layout.map(STATUS_FILE), json.dumps(status, indent=2, default=str).encode(),
                 0o600)
