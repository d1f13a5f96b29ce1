"""The one-apps lifecycle against a sandbox root, under the framework's shell semantics:
install once, configure + bootstrap at every boot, reconfigure on a context change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.host.paths import Layout
from appliance.host.sandbox import free_port_base
from appliance.host.services import Sandbox
from appliance.host.site import load_site
from tests.conftest import tree_hashes, wizard

pytestmark = pytest.mark.stack
HERE = Path(__file__).parent
APPLIANCE = HERE.parent.parent / "packer" / "appliance" / "slm-appliance.sh"
STATUS_FILES = ("etc/one-appliance/status", "etc/one-appliance/log/",
                "var/lib/slm-appliance/state.json")


class Lifecycle:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port_base = free_port_base()
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("ONEAPP_")},
                    "SLM_ROOT": str(root), "SLM_PORT_BASE": str(self.port_base),
                    "SLM_WIZARD": str(Path(sys.executable).with_name("wizard")),
                    "SLM_READY_TIMEOUT": "120",
                    "ONE_SERVICE_DIR": str(root / "etc/one-appliance"),
                    "ONE_SERVICE_APPLIANCE": str(APPLIANCE)}
        (root / "etc/one-appliance").mkdir(parents=True)

    def stage(self, name: str, **context: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", str(HERE / "one-apps-service.sh"), name],
                              env={**self.env, **context}, capture_output=True, text=True,
                              timeout=300)

    def boot(self, **context: str) -> None:
        for name in ("configure", "bootstrap"):
            p = self.stage(name, **context)
            assert p.returncode == 0, f"{name}: {p.stdout}\n{p.stderr}"
        assert self.status() == "bootstrap_success"

    def status(self) -> str:
        return (self.root / "etc/one-appliance/status").read_text().strip()

    def services(self) -> Sandbox:
        layout = Layout(self.root)
        return Sandbox(load_site(layout), layout)

    def pids(self) -> tuple[int | None, int | None]:
        s = self.services()
        return s.pid("llama-server.service"), s.pid("nginx.service")

    def hashes(self) -> dict[str, str]:
        return tree_hashes(self.root, ignore=STATUS_FILES)

    def secrets(self) -> tuple[bytes, bytes]:
        return ((self.root / "etc/slm-appliance/api_key").read_bytes(),
                (self.root / "etc/slm-appliance/tls/selfsigned.crt").read_bytes())


@pytest.fixture
def lc(tmp_path: Path) -> Iterator[Lifecycle]:
    life = Lifecycle(tmp_path / "vm")
    yield life
    wizard("--root", str(life.root), "stop")


def test_install_then_boots_reboot_and_context_change(lc: Lifecycle) -> None:
    p = lc.stage("install")
    assert p.returncode == 0, p.stdout + p.stderr
    assert lc.status() == "install_success"
    assert not (lc.root / "etc/slm-appliance/api_key").exists()  # secrets are per VM, at boot

    lc.boot()
    first, secrets = lc.hashes(), lc.secrets()
    pids = lc.pids()
    assert all(pids)
    status = json.loads(wizard("--root", str(lc.root), "status", "--json", check=True).stdout)
    assert status["ready"] and status["endpoint"].endswith("/v1")
    # umask 0077 in the framework must not leave files nginx or the engine cannot read.
    for rel in ("etc/nginx/nginx.conf", "etc/slm-appliance/tls/selfsigned.crt",
                "etc/systemd/system/llama-server.service"):
        assert (lc.root / rel).stat().st_mode & 0o777 == 0o644, rel
    webroot = lc.root / "var/lib/slm-appliance/acme-webroot/.well-known/acme-challenge"
    for d in [webroot, *webroot.parents][:5]:
        assert d.stat().st_mode & 0o005 == 0o005, d  # others may traverse
    assert (lc.root / "etc/slm-appliance/api_key").stat().st_mode & 0o777 == 0o600

    lc.boot()  # one-context runs the stages again (context unchanged, services live)
    assert lc.hashes() == first and lc.pids() == pids

    wizard("--root", str(lc.root), "stop", check=True)  # a reboot
    assert lc.pids() == (None, None)
    lc.boot()
    assert lc.hashes() == first and lc.secrets() == secrets and all(lc.pids())

    nginx = lc.pids()[1]
    lc.boot(ONEAPP_SLM_ENGINE_THREADS="1", ONEAPP_SLM_MODEL_CONTEXT="1024")
    unit = (lc.root / "etc/systemd/system/llama-server.service").read_text()
    assert "--threads 1 " in unit and "--ctx-size 1024 " in unit
    assert lc.pids()[1] == nginx and lc.secrets() == secrets

    # Unset variables keep what was applied: the next boot without them changes nothing.
    changed = lc.hashes()
    lc.boot()
    assert lc.hashes() == changed


def test_bad_context_fails_configure_and_keeps_serving(lc: Lifecycle) -> None:
    assert lc.stage("install").returncode == 0
    lc.boot()
    before = lc.hashes()
    p = lc.stage("configure", ONEAPP_SLM_ENGINE_THREADS="lots", ONEAPP_SLM_TLS_MODE="acme")
    assert p.returncode != 0 and lc.status() == "configure_failure"
    out = p.stdout + p.stderr  # the framework tees the stage's output into its log
    assert "ONEAPP_SLM_ENGINE_THREADS (threads): 'lots' is not a whole number" in out
    assert "ONEAPP_SLM_TLS_MODE (tls.mode): unknown mode 'acme'" in out
    assert "Traceback" not in out
    assert "'lots'" in (lc.root / "etc/one-appliance/log/configure.log").read_text()
    assert lc.hashes() == before
    assert json.loads(wizard("--root", str(lc.root), "status", "--json").stdout)["ready"]
    assert lc.stage("bootstrap").returncode == 1  # the framework refuses after a failure
