"""OneGate for the lifecycle and VM tests: the real client, the one stand-in server.

The client is one-context's own ``onegate.rb`` (vendored one-apps, run by Debian's ruby); the
``onegate`` command on PATH only runs it, as the packaged wrapper does without its env file.
The server is the project's one OneGate stand-in (``tests/onegate_standin.py``: no OpenNebula
here), holding one VM that is in no service, as a standalone appliance is.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.onegate_standin import VM, OneGateStandIn

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
    standin: OneGateStandIn
    port: int

    @property
    def vm(self) -> dict[str, str]:
        """The VM's user template, as the appliance publishes into it."""
        return self.standin.vms[VMID].user_template

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"ONEGATE_ENDPOINT": self.endpoint, "TOKENTXT": TOKEN, "VMID": VMID}


@contextmanager
def serve() -> Iterator[OneGate]:
    standin = OneGateStandIn()
    standin.vms[VMID] = VM(VMID, "slm-appliance", TOKEN)
    url = standin.start()
    try:
        yield OneGate(standin, int(url.rsplit(":", 1)[1]))
    finally:
        standin.stop()
