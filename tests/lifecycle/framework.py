"""The vendored one-apps framework, installed into a sandbox root the way the image build
installs it (packer/scripts/10-one-apps.sh): ``appliances/service.sh`` as
``etc/one-appliance/service``, ``lib/common.sh`` and ``lib/functions.sh`` under
``etc/one-appliance/lib``, our script as ``service.d/appliance.sh``, and the ``net-90`` /
``net-99`` one-context hooks under ``etc/one-context.d``.

The framework's files are run unchanged except for their absolute paths (``/etc/one-appliance``,
``/var/log/one-appliance``, ``/etc/motd``, ``/var/run/...``), which get the sandbox root as a
prefix so a test never touches the host. ``install`` checks that the rewrite changed exactly
the path lines it expects, so a framework update that adds a path fails loudly instead of
writing outside the sandbox.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
APPLIANCE = REPO / "packer" / "appliance" / "slm-appliance.sh"
# The path the lead's brief and issue 11 name (one level above the checkout), or ONE_APPS_DIR.
CANDIDATES = ("../shared/vendor/one-apps", "../../shared/vendor/one-apps")
PATHS = re.compile(r"/etc/one-appliance|/var/log/one-appliance|/etc/motd|/var/run/")

# file in the framework -> (where the image puts it, how many lines carry an absolute path)
FILES = {
    "appliances/service.sh": ("etc/one-appliance/service", 4),
    "appliances/lib/common.sh": ("etc/one-appliance/lib/common.sh", 0),
    "appliances/lib/functions.sh": ("etc/one-appliance/lib/functions.sh", 0),
    "appliances/scripts/net-90-service-appliance":
        ("etc/one-context.d/net-90-service-appliance", 2),
    "appliances/scripts/net-99-report-ready": ("etc/one-context.d/net-99-report-ready", 3),
}


def one_apps_dir() -> Path | None:
    """The vendored one-apps checkout: $ONE_APPS_DIR, else beside the checkout."""
    if os.environ.get("ONE_APPS_DIR"):
        return Path(os.environ["ONE_APPS_DIR"])
    for rel in CANDIDATES:
        here = (REPO / rel).resolve()
        if (here / "appliances/service.sh").is_file():
            return here
    return None


def rooted(text: str, root: Path) -> tuple[str, int]:
    """Prefix every absolute framework path with root; returns the text and lines changed."""
    out, changed = [], 0
    for line in text.splitlines(keepends=True):
        new = PATHS.sub(lambda m: f"{root}{m.group(0)}", line)
        changed += new != line
        out.append(new)
    return "".join(out), changed


@dataclass
class Framework:
    """One VM's one-apps installation under root; stages run as one-context runs them."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def service(self) -> Path:
        return self.root / "etc/one-appliance/service"

    def install(self, source: Path, appliance: Path = APPLIANCE) -> None:
        for rel, (dest, expected) in FILES.items():
            text, changed = rooted((source / rel).read_text(), self.root)
            assert changed == expected, f"{rel}: {changed} path lines, expected {expected}"
            target = self.root / dest
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            target.chmod(0o644 if dest.endswith(".sh") else 0o755)
        appliance_dest = self.root / "etc/one-appliance/service.d/appliance.sh"
        appliance_dest.parent.mkdir(parents=True, exist_ok=True)
        appliance_dest.write_text(appliance.read_text())
        for d in ("var/log", "var/run/one-context"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    def run(self, *args: str, context: Mapping[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """`service ARGS` with the context exported, as one-contextd exports it."""
        return subprocess.run([str(self.service), *args], env={**self.env, **(context or {})},
                              capture_output=True, text=True, timeout=timeout)

    def hook(self, name: str, context: Mapping[str, str] | None = None,
             timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """A one-context hook (net-90: configure && bootstrap; net-99: READY via OneGate)."""
        return subprocess.run([str(self.root / "etc/one-context.d" / name)],
                              env={**self.env, **(context or {})}, capture_output=True,
                              text=True, timeout=timeout)

    def status(self) -> str:
        path = self.root / "etc/one-appliance/status"
        return path.read_text().strip() if path.exists() else ""

    def log(self, stage: str) -> str:
        return (self.root / f"var/log/one-appliance/{stage}.log").read_text()
