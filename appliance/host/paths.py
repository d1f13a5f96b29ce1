"""Where every file lives, resolved under a root so the whole stack runs in a folder.

Appliance paths are written as on the VM (``/etc/nginx/nginx.conf``); ``Layout`` maps them
under ``root``. Rendered configs contain mapped paths, because nginx and the engine read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

ETC = "/etc/slm-appliance"
LIB = "/var/lib/slm-appliance"
LOG = "/var/log/slm-appliance"
OPT = "/opt/slm-appliance"


@dataclass(frozen=True)
class Layout:
    """All paths of one installation, under ``root`` (``/`` on the appliance)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root).resolve())

    def map(self, path: str) -> Path:
        """Map an absolute appliance path under the root."""
        if not path.startswith("/"):
            raise ValueError(f"appliance paths are absolute: {path!r}")
        return self.root / path.lstrip("/") if str(self.root) != "/" else Path(path)

    @property
    def is_system(self) -> bool:
        return str(self.root) == "/"

    # -- configuration owned by the appliance --------------------------------------------
    site_file = f"{ETC}/site.yaml"
    api_key_file = f"{ETC}/api_key"
    keys_file = f"{ETC}/keys.json"
    tls_dir = f"{ETC}/tls"
    selfsigned_cert = f"{ETC}/tls/selfsigned.crt"
    selfsigned_key = f"{ETC}/tls/selfsigned.key"
    localai_env = "/etc/localai.env"
    nginx_conf = "/etc/nginx/nginx.conf"
    nginx_key_map = "/etc/nginx/slm-api-key.conf"
    nginx_key_policy = "/etc/nginx/slm-keys.conf"
    nginx_key_limits = "/etc/nginx/slm-key-limits.conf"
    nginx_usage_js = "/etc/nginx/slm-usage.js"
    systemd_dir = "/etc/systemd/system"
    report_file = "/etc/one-appliance/config"
    banner_file = "/etc/profile.d/slm-appliance.sh"

    # -- state ------------------------------------------------------------------------
    state_file = f"{LIB}/state.json"
    applied_answers = f"{LIB}/answers.applied.yaml"
    context_record = f"{LIB}/context.applied.json"  # sha256 of each ONEAPP_* value applied
    lock_file = f"{LIB}/apply.lock"
    journal_dir = f"{LIB}/journal"
    apply_log = f"{LOG}/apply.log"
    webroot = f"{LIB}/acme-webroot"
    models_dir = f"{OPT}/models"
    run_dir = "/run/slm-appliance"

    # -- nginx runtime paths (rendered explicitly so nginx never writes elsewhere) ---------
    nginx_pid = "/run/nginx.pid"
    nginx_log_dir = "/var/log/nginx"
    nginx_temp_dir = "/var/lib/nginx"
    nginx_prefix = "/etc/nginx"
