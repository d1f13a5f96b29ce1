"""OneGate discovery on the real stacks: backends publish themselves once ready, the LB follows.

The OneGate server is a loopback stand-in (see ``onegate_standin``): nothing real can run here.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import Cluster, lb_answers
from tests.onegate_standin import VM, OneGateStandIn

pytestmark = pytest.mark.stack


def _one_env(root: Path, endpoint: str, vm: VM) -> None:
    path = root / "var/run/one-context/one_env"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'export ONEGATE_ENDPOINT="{endpoint}"\nexport VMID="{vm.id}"\n'
                    f'export TOKENTXT="{vm.token}"\n')
    path.chmod(0o400)


@pytest.fixture
def onegate(cluster: Cluster) -> Iterator[OneGateStandIn]:
    gate = OneGateStandIn()
    lb = VM("40", "lb_0_(service_7)", "tok-lb")
    b1 = VM("41", "backend_0_(service_7)", "tok-b1")
    b2 = VM("42", "backend_1_(service_7)", "tok-b2")
    gate.add_service("7", "slm", {"lb": [lb], "backend": [b1, b2]})
    endpoint = gate.start()
    for stack, vm in ((cluster.lb, lb), (cluster.b1, b1), (cluster.b2, b2)):
        _one_env(stack.root, endpoint, vm)
    yield gate
    for stack in (cluster.lb, cluster.b1, cluster.b2):
        (stack.root / "var/run/one-context/one_env").unlink(missing_ok=True)
    cluster.write_backend_ca()
    cluster.lb.apply(lb_answers(cluster.backends))
    gate.stop()


def _wait(what: str, check: object, timeout: float = 40) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_lb_follows_the_backends_published_through_onegate(cluster: Cluster,
                                                          onegate: OneGateStandIn) -> None:
    b1, b2 = onegate.vms["41"], onegate.vms["42"]
    _wait("both backends to publish", lambda: all(
        "SLM_LB_BACKEND" in vm.user_template for vm in (b1, b2)))
    assert b1.user_template["SLM_LB_BACKEND"] == f"127.0.0.1:{cluster.b1.port_base + 443}"
    assert b1.user_template["SLM_LB_SLOTS"] == "1"
    assert float(b1.user_template["SLM_LB_BUSY"]) >= 0.0
    p = cluster.lb.apply(lb_answers(None))
    assert p.returncode == 0
    _wait("the LB to pick both up", lambda: sum(
        b["state"] == "up" for b in cluster.status()["lb"]["backends"]) == 2)
    names = sorted(b["name"] for b in cluster.status()["lb"]["backends"])
    assert names == ["vm41", "vm42"]
    with cluster.lb_client() as c:
        for i in range(4):
            r = c.post("/v1/chat/completions", headers=cluster.auth(), json={
                "messages": [{"role": "user", "content": f"Hi {i}"}], "max_tokens": 4})
            assert r.status_code == 200
        assert c.get("/v1/models").status_code == 401

    # Scale-in: the drained backend erases itself; the LB drops it and keeps serving.
    from tests.conftest import wizard

    wizard("--root", str(cluster.b2.root), "drain", "--timeout", "30", check=True)
    assert "SLM_LB_BACKEND" not in b2.user_template
    _wait("the LB to drop vm42", lambda: [b["name"] for b in cluster.status()["lb"]["backends"]]
          == ["vm41"])
    with cluster.lb_client() as c:
        r = c.post("/v1/chat/completions", headers=cluster.auth(), json={
            "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
        assert r.status_code == 200

    # Back: it publishes again only once its /health is 200.
    from tests.cluster.conftest import BACKEND

    cluster.b2.apply(BACKEND)
    _wait("vm42 to publish again", lambda: "SLM_LB_BACKEND" in b2.user_template)
    _wait("the LB to add it back", lambda: sum(
        b["state"] == "up" for b in cluster.status()["lb"]["backends"]) == 2)
