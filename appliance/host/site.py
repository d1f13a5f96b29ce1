"""Installation facts that answers do not choose: binaries, service manager, users.

Written once by the image build (``/etc/slm-appliance/site.yaml``) or by ``wizard sandbox``.
Missing file: appliance defaults on ``/``; a folder root without one is not set up yet.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import yaml

from appliance.errors import SetupError
from appliance.host.paths import Layout


@dataclass(frozen=True)
class Site:
    service_manager: str = "systemd"  # or "sandbox"
    llama_server_bin: str = "/usr/local/bin/llama-server"
    localai_bin: str = "/usr/local/bin/local-ai"
    nginx_bin: str = "/usr/sbin/nginx"
    haproxy_bin: str = "/usr/sbin/haproxy"
    nginx_js_module: str = "/usr/lib/nginx/modules/ngx_http_js_module.so"
    """njs (Debian libnginx-mod-http-js); without it nginx serves, minus what njs adds."""
    wizard_bin: str = "/opt/slm-appliance/venv/bin/wizard"
    engine_user: str | None = "slm"
    nginx_user: str = "www-data"
    ready_timeout: float = 600.0
    """Seconds to wait for the engine to load a model before rolling back."""
    defaults: dict[str, Any] | None = None
    """Answers every apply starts from (a sandbox binds loopback high ports)."""
    hosts: dict[str, str] | None = None
    """Static name -> address, consulted before DNS (a sandbox's /etc/hosts for ACME tests)."""
    model_mirror: str | None = None
    """Base URL that serves catalog GGUF files by name, used instead of their catalog URLs
    (an air-gapped site's mirror; tests)."""

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)


def load_site(layout: Layout) -> Site:
    path = layout.map(layout.site_file)
    if not path.exists():
        if layout.is_system:
            return Site()
        raise SetupError(f"{layout.root} is not set up: run 'wizard --root {layout.root} sandbox' "
                         f"first (no {layout.site_file})")
    data = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in fields(Site)}
    unknown = set(data) - known
    if unknown:
        raise SetupError(f"{path}: unknown keys {sorted(unknown)}")
    return Site(**data)
