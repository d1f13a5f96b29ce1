"""The one-apps lifecycle under the vendored framework itself (service.sh, lib/, net-90, net-99;
see framework.py), against a sandbox root: install once, configure + bootstrap at every boot
as one-context runs them, READY through the real onegate client."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
import yaml

from appliance.answers import listing
from appliance.answers.catalog import load_catalog
from appliance.answers.context import PARAMS
from appliance.host.facts import detect
from appliance.host.paths import Layout
from appliance.host.services import Sandbox
from appliance.host.site import load_site
from appliance.plan.state import load_state
from tests.acme_server import start_pebble
from tests.conftest import GEMMA, SMOLLM, tree_hashes, wizard
from tests.http_stub import serve_http
from tests.lifecycle import onegate
from tests.lifecycle.framework import Framework, one_apps_dir
from tests.ports import SANDBOX, Block, reserve

pytestmark = pytest.mark.stack
ONE_APPS = one_apps_dir()
STATUS_FILES = ("etc/one-appliance/status", "etc/motd", "var/log/one-appliance/",
                "var/lib/slm-appliance/state.json")


class VM(Framework):
    ports: Block | None = None

    def shutdown(self) -> None:
        wizard("--root", str(self.root), "stop")
        if self.ports:
            self.ports.release()

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
        unit = load_state(Layout(self.root)).get("engine_unit", "llama-server.service")
        return s.pid(str(unit)), s.pid("nginx.service")

    def hashes(self) -> dict[str, str]:
        return tree_hashes(self.root, ignore=STATUS_FILES)

    def secrets(self) -> tuple[bytes, bytes]:
        return ((self.root / "etc/slm-appliance/api_key").read_bytes(),
                (self.root / "etc/slm-appliance/tls/selfsigned.crt").read_bytes())

    def state(self) -> dict[str, object]:
        out = wizard("--root", str(self.root), "status", "--json", check=True).stdout
        return dict(json.loads(out))


def make_vm(tmp_path: Path) -> VM:
    """A VM as the image build leaves it: the framework installed and `service install` run."""
    if ONE_APPS is None:
        pytest.skip("the vendored one-apps framework was not found (set ONE_APPS_DIR)")
    root = tmp_path / "vm"
    bin_dir = tmp_path / "bin"
    onegate.client_on_path(bin_dir, ONE_APPS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ONEAPP_", "ONEGATE"))}
    ports = reserve(SANDBOX)
    env.update({"PATH": f"{bin_dir}:{env['PATH']}", "SLM_ROOT": str(root),
                "SLM_PORT_BASE": str(ports.base), "SLM_PYTHON": sys.executable,
                "SLM_WIZARD": str(Path(sys.executable).with_name("wizard")),
                "SLM_READY_TIMEOUT": "120", "SLM_ONEGATE_DELAY": "0"})
    machine = VM(root, env)
    machine.ports = ports
    machine.install(ONE_APPS)
    p = machine.run("install")
    assert p.returncode == 0, p.stdout + p.stderr
    assert machine.status() == "install_success"
    return machine


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VM]:
    machine = make_vm(tmp_path)
    yield machine
    machine.shutdown()


def test_service_help_lists_every_parameter(vm: VM) -> None:
    p = vm.run("help")
    assert p.returncode == 0
    for env, param in PARAMS.items():  # '*' marks what the instantiate dialog offers
        assert f"{'*' if param.offer else ' '} {env:<25} - {param.description}" in p.stdout


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

    report = (vm.root / "etc/one-appliance/config").read_text()  # agrees with the one list
    section = report.split("[Context]\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert section[0].startswith("rule = Context is a change")
    assert [line.split(" = ")[0] for line in section[1:]] == list(PARAMS)
    assert "ONEAPP_SLM_API_KEY = (secret: see api_key_file)" in section

    vm.boot()  # one-context runs the stages again (context unchanged, services live)
    assert vm.hashes() == first and vm.pids() == pids
    vm.reboot()
    assert vm.hashes() == first and vm.secrets() == secrets

    nginx = vm.pids()[1]
    vm.boot(ONEAPP_SLM_ENGINE_THREADS="1", ONEAPP_SLM_MODEL_CONTEXT="1024")
    engine = load_state(Layout(vm.root))["engine_unit"]  # a change switches engine instances
    unit = (vm.root / f"etc/systemd/system/{engine}").read_text()
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


def applied(vm: VM) -> dict[str, object]:
    return dict(yaml.safe_load((vm.root / "var/lib/slm-appliance/answers.applied.yaml")
                               .read_text()))


def apply_file(vm: VM, text: str) -> None:
    """What the wizard's Apply does, headless: `wizard --apply answers.yaml`."""
    path = vm.root.parent / "answers.yaml"
    path.write_text("version: 1\n" + text)
    wizard("--root", str(vm.root), "--apply", str(path), check=True)


def test_wizard_changes_survive_reboots_until_the_context_changes(vm: VM) -> None:
    """Context is a change: a reboot with the same context keeps what the wizard applied; an
    edited variable is applied (issue 15)."""
    context = {"ONEAPP_SLM_ENGINE_THREADS": "2", "ONEAPP_SLM_MODEL_CONTEXT": "2048"}
    vm.boot(**context)
    assert vm.state()["threads"] == 2 and vm.state()["model"] == SMOLLM

    apply_file(vm, f"model: {{id: {GEMMA}, context_size: 2048}}\nthreads: 1\n")
    assert (vm.state()["threads"], vm.state()["model"]) == (1, GEMMA)
    vm.reboot(**context)  # configure runs again with the same context
    assert (vm.state()["threads"], vm.state()["model"]) == (1, GEMMA)

    vm.boot(**{**context, "ONEAPP_SLM_ENGINE_THREADS": "auto"})  # the operator edits one
    assert applied(vm)["threads"] == "auto" and vm.state()["model"] == GEMMA
    assert vm.state()["threads"] == detect().auto_threads()

    vm.reboot(**{**context, "ONEAPP_SLM_ENGINE_THREADS": "auto",
                 "ONEAPP_SLM_MODEL_ID": SMOLLM})  # the model now appears in the context
    assert vm.state()["model"] == SMOLLM and applied(vm)["threads"] == "auto"
    record = (vm.root / "var/lib/slm-appliance/context.applied.json")
    assert record.stat().st_mode & 0o777 == 0o600 and "auto" not in record.read_text()


def test_tls_mode_from_the_wizard_survives_reboots(vm: VM, tmp_path: Path) -> None:
    port_base = int(vm.env["SLM_PORT_BASE"])
    pebble = start_pebble(tmp_path / "pebble", port_base + 80)
    try:
        shutil.copy(pebble.ca_file, vm.root / "etc/slm-appliance/pebble-ca.pem")
        site = vm.root / "etc/slm-appliance/site.yaml"  # llm.test -> loopback, as /etc/hosts
        site.write_text(yaml.safe_dump({**yaml.safe_load(site.read_text()),
                                        "hosts": {"llm.test": "127.0.0.1"}}))
        acme = {"ONEAPP_SLM_TLS_DOMAIN": "llm.test", "ONEAPP_SLM_DNS_NOCHECK": "YES",
                "ONEAPP_SLM_ACME_DIRECTORY": pebble.directory,
                "ONEAPP_SLM_ACME_CABUNDLE": "/etc/slm-appliance/pebble-ca.pem"}
        context = {"ONEAPP_SLM_TLS_MODE": "self-signed"}
        vm.boot(**context)
        assert vm.state()["tls_mode"] == "self-signed"

        apply_file(vm, "tls:\n  mode: letsencrypt\n  domain: llm.test\n  skip_dns_check: true\n"
                   f"  acme_directory: {pebble.directory}\n"
                   "  acme_ca_bundle: /etc/slm-appliance/pebble-ca.pem\n")
        assert vm.state()["tls_mode"] == "letsencrypt"
        vm.reboot(**context)
        assert vm.state()["tls_mode"] == "letsencrypt"  # not reverted to the context's

        vm.boot(**acme, ONEAPP_SLM_TLS_MODE="letsencrypt")  # edited: applied (same mode)
        assert vm.state()["tls_mode"] == "letsencrypt"
        vm.boot(**acme, ONEAPP_SLM_TLS_MODE="self-signed")  # edited again: applied
        assert vm.state()["tls_mode"] == "self-signed"
    finally:
        pebble.stop()


def test_every_option_the_listing_offers_reaches_ready(tmp_path: Path) -> None:
    """The dialog's model and engine lists are what the build baked; each, on a new VM, boots
    to READY (LocalAI is offered only by builds that bake it; it cannot run here)."""
    first = make_vm(tmp_path / "probe")
    layout = Layout(first.root)
    baked = listing.baked_on(layout, load_site(layout))
    image = listing.Image("https://example.org/i.qcow2", 1, "0" * 32, "0" * 64, 1796169600)
    inputs = listing.listing(image, baked)["opennebula_template"]["user_inputs"]
    models = inputs["oneapp_slm_model_id"].split("|")[3].split(",")
    engines = inputs["oneapp_slm_engine_name"].split("|")[3].split(",")
    assert sorted(models) == sorted([SMOLLM, GEMMA]) and engines == ["llama-server"]
    with onegate.serve() as gate:
        for n, (model, engine) in enumerate((m, e) for m in models for e in engines):
            vm = first if n == 0 else make_vm(tmp_path / f"vm{n}")
            try:
                ready = {**gate.env(), "REPORT_READY": "YES", "ONEAPP_SLM_MODEL_ID": model,
                         "ONEAPP_SLM_ENGINE_NAME": engine}
                gate.vm.clear()
                vm.boot(**ready)
                assert vm.hook("net-99-report-ready", ready).returncode == 0
                assert gate.vm["READY"] == "YES" and gate.vm["ONEAPP_SLM_MODEL"] == model
            finally:
                vm.shutdown()


def test_a_model_the_image_lacks_never_leaves_nothing_serving(vm: VM, tmp_path: Path) -> None:
    """First boot asks for a catalog model that is not baked and cannot be downloaded: the
    image's model serves, a warning says why, READY; the next boot tries again, and with a
    mirror the model is downloaded (sha256-checked) and served."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    gemma = load_catalog()[GEMMA].file
    shutil.move(vm.root / "opt/slm-appliance/models" / gemma, mirror / gemma)
    context = {"ONEAPP_SLM_MODEL_ID": GEMMA}
    vm.boot(**context)
    assert vm.state()["model"] == SMOLLM and vm.state()["ready"]
    log = vm.log("configure")
    assert f"ONEAPP_SLM_MODEL_ID: {GEMMA} is not in this image and could not be downloaded" in log
    assert f"{SMOLLM} keeps serving" in log

    site = vm.root / "etc/slm-appliance/site.yaml"
    with serve_http(partial(SimpleHTTPRequestHandler, directory=str(mirror))) as port:
        site.write_text(yaml.safe_dump({**yaml.safe_load(site.read_text()),
                                        "model_mirror": f"http://127.0.0.1:{port}/"}))
        vm.reboot(**context)  # the same context: the refused variable is tried again
    assert vm.state()["model"] == GEMMA
    log = vm.log("configure")
    assert f"[..] download: {GEMMA}: 0 of 241 MiB" in log and f"[ok] download: {GEMMA}" in log
