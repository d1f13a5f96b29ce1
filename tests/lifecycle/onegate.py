"""OneGate for the lifecycle tests: the real client, a stand-in server.

The client is one-context's own ``onegate.rb`` (vendored one-apps, run by Debian's ruby); the
``onegate`` command on PATH only runs it, as the packaged wrapper does without its env file.
The server is a stand-in (no OpenNebula here), built from the wire protocol in the OneGate
reference: ``PUT /vm`` with ``X-ONEGATE-TOKEN`` / ``X-ONEGATE-VMID`` and a form body
``data=K=V\\nK2=V2&type=1`` merges attributes into the VM's user template; anything without a
token is 401 ``Not authorized``.
"""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from tests.http_stub import serve_http

TOKEN = "token-of-vm-7"
VMID = "7"


def client_on_path(bin_dir: Path, one_apps: Path) -> Path | None:
    """Put an ``onegate`` command running the vendored client into bin_dir (None: no ruby)."""
    ruby = shutil.which("ruby")
    client = one_apps / "context-linux/src/usr/bin/onegate.rb"
    if not ruby or not client.is_file():
        return None
    bin_dir.mkdir(parents=True, exist_ok=True)
    cmd = bin_dir / "onegate"
    cmd.write_text(f'#!/bin/sh\nexport HOME="${{HOME:-/root}}"\nexec {ruby} {client} "$@"\n')
    cmd.chmod(0o755)
    return cmd


@dataclass
class OneGate:
    port: int = 0
    vm: dict[str, str] = field(default_factory=dict)  # the VM's user template

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"ONEGATE_ENDPOINT": self.endpoint, "TOKENTXT": TOKEN, "VMID": VMID}


def _handler(gate: OneGate) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.headers.get("X-ONEGATE-TOKEN") != TOKEN or \
                    self.headers.get("X-ONEGATE-VMID") != VMID:
                return self._send(401, "Not authorized")
            if self.path.split("?")[0] != "/vm":
                return self._send(400, "OneGate server doesn't support this feature")
            form = urllib.parse.parse_qs(body)
            data = form.get("data", [body])[0].replace("\\n", "\n")
            if form.get("type", ["1"])[0] == "1":
                for line in data.splitlines():
                    key, _, value = line.partition("=")
                    gate.vm[key.strip()] = value.strip()
            return self._send(200, "")

        def _send(self, code: int, text: str) -> None:
            body = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve() -> Iterator[OneGate]:
    gate = OneGate()
    with serve_http(_handler(gate)) as port:
        gate.port = port
        yield gate
