"""Shared helpers: the real sandbox stack (on ports from tests/ports.py), tree hashes."""

from __future__ import annotations

import gc
import hashlib
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from appliance.host.paths import Layout
from appliance.host.services import Sandbox
from appliance.host.site import load_site
from appliance.plan.state import load_state
from tests.ports import SANDBOX, reserve

os.environ.pop("NO_COLOR", None)
SMOLLM = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"
VOLATILE = ("var/log/", "run/", "var/lib/nginx/", "var/lib/slm-appliance/apply.lock")


def tree_hashes(root: Path, ignore: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 + mode of every file under root except logs, pidfiles and nginx temp dirs."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if p.is_file() and not rel.startswith(VOLATILE + ignore):
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[rel] = f"{digest}:{p.stat().st_mode & 0o7777:o}"
    return out


def wizard(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "wizard", *args], capture_output=True, text=True,
                       timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"wizard {args} -> {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


@dataclass
class Stack:
    root: Path
    port_base: int

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    @property
    def services(self) -> Sandbox:
        return Sandbox(load_site(self.layout), self.layout)

    @property
    def https(self) -> str:
        return f"https://127.0.0.1:{self.port_base + 443}"

    @property
    def ca(self) -> str:
        return str(self.root / "etc/slm-appliance/tls/selfsigned.crt")

    def key(self) -> str:
        return (self.root / "etc/slm-appliance/api_key").read_text().strip()

    def engine_unit(self) -> str:
        """The engine unit serving now: engine changes alternate between two instances."""
        return str(load_state(self.layout).get("engine_unit", "llama-server.service"))

    def client(self, timeout: float = 300) -> httpx.Client:  # generous: a busy CI machine
        return httpx.Client(base_url=self.https, verify=ssl.create_default_context(cafile=self.ca),
                            timeout=timeout)

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key()}"}

    def answers_file(self, text: str, name: str = "answers.yaml") -> Path:
        path = self.root.parent / name
        path.write_text(text)
        return path

    def apply(self, text: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return wizard("--root", str(self.root), "--apply", str(self.answers_file(text)),
                      check=check)

    def baseline(self) -> None:
        """The sandbox defaults (smollm2, auto threads) as an empty answers file."""
        self.apply("version: 1\n")


@pytest.fixture(autouse=True)
def _collect_after_each_test() -> Iterator[None]:
    """Run the collector at the end of every test, so an object a test leaves to it (an
    unclosed socket, a client) warns inside that test and fails it there, instead of inside
    whichever later test the collector happens to run in."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack") / "root"
    ports = reserve(SANDBOX)
    base = ports.base
    p = wizard("--root", str(root), "sandbox", "--port-base", str(base),
               "--host", "llm.test=127.0.0.1", "--host", "elsewhere.test=192.0.2.77")
    if p.returncode != 0:
        pytest.fail(f"sandbox did not come up:\n{p.stdout}\n{p.stderr}")
    s = Stack(root, base)  # the sandbox's apply verified that nginx serves our certificate
    yield s
    wizard("--root", str(root), "stop")
    ports.release()


@pytest.fixture
def fresh(stack: Stack) -> Iterator[Stack]:
    """A stack test that changes the config: back to the sandbox defaults afterwards."""
    stack.baseline()
    yield stack
    stack.baseline()
