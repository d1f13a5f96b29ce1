"""N sandbox stacks on loopback: two one-slot backends and an LB, each with its own --root."""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SMOLLM, Stack, wizard
from tests.ports import SANDBOX, Block, reserve

KEY = "k" + secrets.token_urlsafe(32)
BACKEND = f"""version: 1
role: backend
parallel: 1
threads: 1
api_key: {KEY}
model:
  id: {SMOLLM}
  context_size: 1024
"""


def make_stack(base_dir: Path, name: str, answers: str, blocks: list[Block]) -> Stack:
    """A sandbox in ``base_dir/name/root`` on a reserved port block (kept in ``blocks``)."""
    root = base_dir / name / "root"
    root.parent.mkdir(parents=True, exist_ok=True)
    path = root.parent / "answers.yaml"
    path.write_text(answers)
    block = reserve(SANDBOX)
    blocks.append(block)
    wizard("--root", str(root), "sandbox", "--port-base", str(block.base), "--no-wizard",
           "--answers", str(path), check=True)
    return Stack(root, block.base)


def lb_answers(backends: list[Stack] | None, extra: str = "") -> str:
    if backends is None:
        spec, slots = "  backends: onegate\n", ""
    else:
        items = "".join(f"    - 127.0.0.1:{b.port_base + 443}\n" for b in backends)
        spec = f"  backends:\n{items}  backend_ca: /etc/slm-appliance/backend-ca.pem\n"
        # The LB's `parallel` (maxconn per server) equals the backends' one slot, as the
        # README says to set it: HAProxy queues the rest and sends each queued request the
        # instant the previous answer ends (the back-to-back case the engine upstream must take).
        slots = "parallel: 1\n"
    return (f"version: 1\nrole: lb\napi_key: {KEY}\n{slots}lb:\n{spec}  balance: leastconn\n"
            f"{extra}")


@dataclass
class Cluster:
    b1: Stack
    b2: Stack
    lb: Stack

    @property
    def backends(self) -> list[Stack]:
        return [self.b1, self.b2]

    def lb_client(self, timeout: float = 120) -> httpx.Client:
        ctx = ssl.create_default_context(cafile=self.lb.ca)
        return httpx.Client(base_url=self.lb.https, verify=ctx, timeout=timeout)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {KEY}"}

    def status(self) -> dict[str, Any]:
        p = wizard("--root", str(self.lb.root), "status", "--json")
        return dict(json.loads(p.stdout))

    def write_backend_ca(self) -> None:
        ca = b"".join(Path(b.ca).read_bytes() for b in self.backends)
        target = self.lb.root / "etc/slm-appliance/backend-ca.pem"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(ca)


@contextmanager
def running_cluster(base_dir: Path) -> Iterator[Cluster]:
    """Two one-slot backends and an LB listing them (static), stopped and released after."""
    stacks: list[Stack] = []
    blocks: list[Block] = []
    try:
        b1 = make_stack(base_dir, "b1", BACKEND, blocks)
        stacks.append(b1)
        b2 = make_stack(base_dir, "b2", BACKEND, blocks)
        stacks.append(b2)
        ca = base_dir / "lb/root/etc/slm-appliance/backend-ca.pem"
        ca.parent.mkdir(parents=True, exist_ok=True)
        ca.write_bytes(Path(b1.ca).read_bytes() + Path(b2.ca).read_bytes())
        lb = make_stack(base_dir, "lb", lb_answers([b1, b2]), blocks)
        stacks.append(lb)
        yield Cluster(b1, b2, lb)
    finally:
        for s in stacks:
            wizard("--root", str(s.root), "stop")
        for block in blocks:
            block.release()


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("cluster")) as c:
        yield c
