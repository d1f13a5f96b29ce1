"""The OneGate client, the stand-in it is tested against, and the real one-apps client."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from appliance.cluster.onegate import Credentials, OneGate, OneGateError, read_one_env
from appliance.cluster.records import ADDRESS, BUSY, CERT, SLOTS, discover, record
from tests.lifecycle.framework import one_apps_dir
from tests.onegate_standin import VM, OneGateStandIn

ONE_APPS = one_apps_dir()
VENDORED = ONE_APPS / "context-linux/src/usr/bin/onegate.rb" if ONE_APPS else None
PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def gate() -> Iterator[tuple[OneGateStandIn, str]]:
    g = OneGateStandIn()
    g.add_service("7", "slm", {"lb": [VM("40", "lb_0", "t40")],
                               "backend": [VM("41", "backend_0", "t41", ip="10.0.0.41"),
                                           VM("42", "backend_1", "t42", ip="10.0.0.42")]})
    endpoint = g.start()
    yield g, endpoint
    g.stop()


Connect = Callable[[str, str], OneGate]


@pytest.fixture
def connect(gate: tuple[OneGateStandIn, str]) -> Iterator[Connect]:
    """OneGate clients for the stand-in as VM ``vmid`` with ``token``, closed after the test."""
    opened: list[OneGate] = []

    def client(vmid: str, token: str) -> OneGate:
        opened.append(OneGate(Credentials(gate[1], vmid, token)))
        return opened[-1]

    yield client
    for c in opened:
        c.close()


def test_publish_erase_and_read_back_as_strings(gate: tuple[OneGateStandIn, str],
                                                 connect: Connect) -> None:
    g, _ = gate
    me = connect("41", "t41")
    me.vm_update(record("10.0.0.41:443", 2, PEM) | {BUSY: "0.50"})
    ut = g.vms["41"].user_template
    assert ut[ADDRESS] == "10.0.0.41:443" and ut[SLOTS] == "2" and ut[BUSY] == "0.50"
    assert me.vm_show()["USER_TEMPLATE"][SLOTS] == "2"  # a string, as OneGate returns it
    assert me.vm_erase(BUSY) is True
    assert me.vm_erase(BUSY) is False  # absent: OneGate answers 500
    assert BUSY not in g.vms["41"].user_template
    with pytest.raises(ValueError, match="cannot carry"):
        me.vm_update({BUSY: "0,5"})  # a locale comma would break OneGate's quoting


def test_wrong_token_and_restricted_keys(connect: Connect) -> None:
    with pytest.raises(OneGateError) as err:
        connect("41", "t42").vm_show()
    assert err.value.status == 401
    with pytest.raises(OneGateError) as err:
        connect("41", "t41").vm_update({"ROLE_NAME": "lb"})
    assert err.value.status == 403


def test_discovery_needs_extended_and_running_published_nodes(
        gate: tuple[OneGateStandIn, str], connect: Connect) -> None:
    g, _ = gate
    connect("41", "t41").vm_update(record("10.0.0.41:443", 1, PEM))
    connect("42", "t42").vm_update(record("10.0.0.42:443", 1, PEM))
    lb = connect("40", "t40")
    assert discover(lb.service_show(extended=False)) == []  # OneFlow's 6 keys only
    found = discover(lb.service_show())
    assert [(d.server.name, d.server.address, d.cert_pem) for d in found] == [
        ("vm41", "10.0.0.41:443", PEM), ("vm42", "10.0.0.42:443", PEM)]
    g.vms["42"].lcm_state = "21"  # no longer RUNNING (e.g. shutting down)
    assert [d.server.name for d in discover(lb.service_show())] == ["vm41"]
    g.vms["41"].user_template[CERT] = "not base64!"
    assert discover(lb.service_show()) == []


def test_one_env_as_one_context_writes_it(tmp_path: Path) -> None:
    env = tmp_path / "one_env"
    env.write_text('export ONEGATE_ENDPOINT="http://169.254.16.9:5030"\nexport VMID="9"\n'
                   "export TOKENTXT=\"abc==\"\nexport ETH0_IP='10.0.0.5'\n")
    assert read_one_env(env)["TOKENTXT"] == "abc=="
    assert read_one_env(env)["ETH0_IP"] == "10.0.0.5"


@pytest.mark.skipif(shutil.which("ruby") is None or VENDORED is None,
                    reason="needs ruby and the vendored one-apps onegate client")
def test_the_real_onegate_client_against_the_stand_in(gate: tuple[OneGateStandIn, str],
                                                      connect: Connect) -> None:
    """The stand-in speaks the wire protocol the one-apps client speaks."""
    g, endpoint = gate
    env = {**os.environ, "VMID": "41", "TOKENTXT": "t41", "ONEGATE_ENDPOINT": endpoint}

    def onegate(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ruby", str(VENDORED), *args], env=env, capture_output=True,
                              text=True, timeout=60)

    assert onegate("vm", "update", "--data", f"{BUSY}=0.25\\n{SLOTS}=1").returncode == 0
    assert g.vms["41"].user_template[BUSY] == "0.25"
    assert onegate("vm", "update", "--erase", BUSY).returncode == 0
    assert BUSY not in g.vms["41"].user_template
    out = onegate("service", "show", "--json", "--extended")
    assert out.returncode == 0 and '"SLM_LB_SLOTS": "1"' in out.stdout
    assert onegate("vm", "update", "--data", "SERVICE_ID=1").returncode != 0
    # and our client reads what the real client wrote
    assert connect("41", "t41").vm_show()["USER_TEMPLATE"][SLOTS] == "1"
