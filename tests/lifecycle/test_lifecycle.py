"""The one-apps lifecycle under the vendored framework itself (service.sh, lib/, net-90, net-99;
see framework.py), against a sandbox root: install once, configure + bootstrap at every boot
as one-context runs them, READY through the real onegate client."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.answers.context import PARAMS
from appliance.host.paths import Layout
from appliance.host.services import Sandbox
from appliance.host.site import load_site
from tests.conftest import tree_hashes, wizard
from tests.lifecycle import onegate
from tests.lifecycle.framework import Framework, one_apps_dir
from tests.ports import SANDBOX, reserve

pytestmark = pytest.mark.stack
ONE_APPS = one_apps_dir()
STATUS_FILES = ("etc/one-appliance/status", "etc/motd", "var/log/one-appliance/",
                "var/lib/slm-appliance/state.json")


class VM(Framework):
    def boot(self, **context: str) -> None:
        """What one-context runs at boot: net-90 (configure && bootstrap)."""
        p = self.hook("net-90-service-appliance", context)
        assert p.returncode == 0, f"{p.stdout}\n{p.stderr}"
        assert self.status() == "bootstrap_success"

    def reboot(self, **context: str) -> None:
        wizard("--root", str(self.root), "stop", check=True)
        assert self.pids() == (None, None)
        self.boot(**context)

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

    def state(self) -> dict[str, object]:
        out = wizard("--root", str(self.root), "status", "--json", check=True).stdout
        return dict(json.loads(out))


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VM]:
    if ONE_APPS is None:
        pytest.skip("the vendored one-apps framework was not found (set ONE_APPS_DIR)")
    root = tmp_path / "vm"
    bin_dir = tmp_path / "bin"
    ports = reserve(SANDBOX)
    onegate.client_on_path(bin_dir, ONE_APPS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEAPP_", "ONEGATE"))}
    env.update({"PATH": f"{bin_dir}:{env['PATH']}", "SLM_ROOT": str(root),
                "SLM_PORT_BASE": str(ports.base), "SLM_PYTHON": sys.executable,
                "SLM_WIZARD": str(Path(sys.executable).with_name("wizard")),
                "SLM_READY_TIMEOUT": "120", "SLM_ONEGATE_DELAY": "0"})
    machine = VM(root, env)
    machine.install(ONE_APPS)
    p = machine.run("install")
    assert p.returncode == 0, p.stdout + p.stderr
    assert machine.status() == "install_success"
    yield machine
    wizard("--root", str(root), "stop")
    ports.release()


def test_service_help_lists_every_parameter(vm: VM) -> None:
    p = vm.run("help")
    assert p.returncode == 0
    for env in PARAMS:
        assert f" {env}" in p.stdout


def test_boots_reboot_and_context_change(vm: VM) -> None:
    metadata = (vm.root / "etc/one-appliance/metadata").read_text()
    assert 'name: "Service SLM - CPU LLM with OpenAI-compatible API"' in metadata
    assert not (vm.root / "etc/slm-appliance/api_key").exists()  # secrets are per VM, at boot

    vm.boot()
    first, secrets, pids = vm.hashes(), vm.secrets(), vm.pids()
    assert all(pids)
    status = vm.state()
    assert status["ready"] and str(status["endpoint"]).endswith("/v1")
    # umask 0077 in the framework must not leave files nginx or the engine cannot read.
    for rel in ("etc/nginx/nginx.conf", "etc/slm-appliance/tls/selfsigned.crt",
                "etc/systemd/system/llama-server.service"):
        assert (vm.root / rel).stat().st_mode & 0o777 == 0o644, rel
    assert (vm.root / "etc/slm-appliance/api_key").stat().st_mode & 0o777 == 0o600

    vm.boot()  # one-context runs the stages again (context unchanged, services live)
    assert vm.hashes() == first and vm.pids() == pids
    vm.reboot()
    assert vm.hashes() == first and vm.secrets() == secrets

    nginx = vm.pids()[1]
    vm.boot(ONEAPP_SLM_ENGINE_THREADS="1", ONEAPP_SLM_MODEL_CONTEXT="1024")
    unit = (vm.root / "etc/systemd/system/llama-server.service").read_text()
    assert "--threads 1 " in unit and "--ctx-size 1024 " in unit
    assert vm.pids()[1] == nginx and vm.secrets() == secrets


def test_bad_context_fails_configure_with_the_wizards_status(vm: VM) -> None:
    vm.boot()
    before = vm.hashes()
    bad = {"ONEAPP_SLM_ENGINE_THREADS": "lots", "ONEAPP_SLM_TLS_MODE": "acme"}
    p = vm.run("configure", context=bad)
    assert p.returncode == 2 and vm.status() == "configure_failure"  # wizard's EXIT_INVALID
    out = p.stdout + p.stderr
    assert "ONEAPP_SLM_ENGINE_THREADS (threads): 'lots' is not a whole number" in out
    assert "ONEAPP_SLM_TLS_MODE (tls.mode): unknown mode 'acme'" in out
    assert "Traceback" not in out
    assert "'lots'" in vm.log("configure")
    assert vm.hashes() == before and vm.state()["ready"]
    # net-90 runs `configure && bootstrap`: the failure stops it, READY is not reported.
    assert vm.hook("net-90-service-appliance", bad).returncode == 2


def test_onegate_outage_leaves_bootstrap_successful_then_ready(vm: VM) -> None:
    if not (vm.root.parent / "bin/onegate").exists():
        pytest.skip("ruby is not installed: no onegate client (scripts/setup.sh installs it)")
    down = {"ONEGATE_ENDPOINT": "http://127.0.0.1:9", "TOKENTXT": onegate.TOKEN,
            "VMID": onegate.VMID, "REPORT_READY": "YES"}
    vm.boot(**down)
    log = vm.log("bootstrap")
    assert "OneGate update failed (try 1 of 3)" in log
    assert "failed 3 times (last: ERROR: Error connecting to server" in log
    assert "the appliance serves anyway" in log
    with onegate.serve() as gate:
        up = {**gate.env(), "REPORT_READY": "YES"}
        vm.boot(**up)
        p = vm.hook("net-99-report-ready", up)
        assert p.returncode == 0 and "Reported READY" in p.stdout, p.stdout + p.stderr
    assert gate.vm["READY"] == "YES"
    assert gate.vm["ONEAPP_SLM_ENDPOINT"].endswith("/v1")
    assert gate.vm["ONEAPP_SLM_MODEL"] == vm.state()["model"]
    assert not any("api_key" in k.lower() for k in gate.vm)  # never the key
