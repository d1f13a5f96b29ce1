"""A OneGate client speaking the documented wire protocol (what the in-guest ``onegate`` does).

Where the credentials come from: one-context writes ``/var/run/one-context/one_env`` (root only)
with ``ONEGATE_ENDPOINT``, ``VMID`` and ``TOKENTXT``; every request carries ``X-ONEGATE-TOKEN``
and ``X-ONEGATE-VMID``. Publishing is ``PUT /vm`` with the form body ``data=K=V\\nK2=V2&type=1``
(type 2 erases one key), exactly as the one-apps client sends it; ``GET /service`` with
``extended`` returns every node's full VM (``USER_TEMPLATE``, ``STATE``, ``LCM_STATE``); values
come back as strings. Error bodies are plain text.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from appliance.errors import ApplianceError

ONE_ENV = "/var/run/one-context/one_env"
VALUE_RE = re.compile(r'^[^,\[\]\\"\n]+$')
"""OneGate's server-side quoting cannot carry ``, [ ] \\ "`` or a newline, nor an empty value."""
KEY_RE = re.compile(r"^[A-Za-z0-9_]+$")


class OneGateError(ApplianceError):
    """OneGate refused or could not be reached; ``status`` is the HTTP code (0: no answer)."""

    def __init__(self, what: str, status: int, body: str) -> None:
        self.status = status
        super().__init__(f"OneGate {what}: {status or 'no answer'} {body.strip()[:200]}")


@dataclass(frozen=True)
class Credentials:
    endpoint: str
    vmid: str
    token: str


def read_one_env(path: Path) -> dict[str, str]:
    """``export KEY="value"`` lines as one-context's loc-16-gen-env writes them."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            line = line[len("export "):]
        key, sep, value = line.partition("=")
        if not sep or not KEY_RE.match(key):
            continue
        parts = shlex.split(value) if value else [""]
        env[key] = parts[0] if parts else ""
    return env


def credentials(env: Mapping[str, str]) -> Credentials | None:
    """None when this VM has no OneGate (no ``TOKEN=YES`` in its template)."""
    endpoint, vmid = env.get("ONEGATE_ENDPOINT", ""), env.get("VMID", "")
    token = env.get("TOKENTXT") or env.get("ONEGATE_TOKEN", "")
    if not (endpoint and vmid and token):
        return None
    return Credentials(endpoint.rstrip("/"), vmid, token.strip())


def check_attributes(attrs: Mapping[str, str]) -> None:
    """Refuse what OneGate would turn into a 500 (bad key, quote-breaking characters)."""
    for k, v in attrs.items():
        if not KEY_RE.match(k) or not VALUE_RE.match(v):
            raise ValueError(f"OneGate cannot carry {k}={v!r}: keys [A-Za-z0-9_], values "
                             "non-empty, without , [ ] \\ \" or a newline")


class OneGate:
    """The calls the appliance needs: show/update/erase its own VM, show its service."""

    def __init__(self, creds: Credentials, client: httpx.Client | None = None) -> None:
        self.creds = creds
        self._client = client or httpx.Client(timeout=10.0)

    def _request(self, method: str, path: str, body: str | None = None) -> httpx.Response:
        headers = {"X-ONEGATE-TOKEN": self.creds.token, "X-ONEGATE-VMID": self.creds.vmid,
                   "User-Agent": "slm-appliance (OneGate client)"}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            r = self._client.request(method, self.creds.endpoint + path, headers=headers,
                                     content=body)
        except httpx.HTTPError as exc:
            raise OneGateError(f"{method} {path}", 0, str(exc) or type(exc).__name__) from None
        if r.status_code >= 300:
            raise OneGateError(f"{method} {path}", r.status_code, r.text)
        return r

    def vm_show(self, vmid: str | None = None) -> dict[str, Any]:
        r = self._request("GET", f"/vms/{vmid}" if vmid else "/vm")
        return dict(r.json()["VM"])

    def vm_update(self, attrs: Mapping[str, str]) -> None:
        """Merge attributes into this VM's USER_TEMPLATE (one request, newline-separated)."""
        check_attributes(attrs)
        data = "\n".join(f"{k}={v}" for k, v in attrs.items())
        self._request("PUT", "/vm", urlencode({"data": data, "type": 1}))

    def vm_erase(self, key: str) -> bool:
        """Erase one attribute; False when it was not there (OneGate answers 500)."""
        try:
            self._request("PUT", "/vm", urlencode({"data": key, "type": 2}))
        except OneGateError as exc:
            if exc.status == 500:
                return False
            raise
        return True

    def service_show(self, extended: bool = True) -> dict[str, Any]:
        body = urlencode({"extended": "true"}) if extended else None
        r = self._request("GET", "/service", body)
        return dict(r.json()["SERVICE"])

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OneGate:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
