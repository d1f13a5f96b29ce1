"""An in-memory world for fast tests of the apply transaction: services, HTTP probes, clock.

:class:`MemoryServices` is a stand-in for systemd, built from its documented behaviour
(systemctl(1), systemd.service(5)): ``start`` of an active unit does nothing, ``stop`` of an
inactive one does nothing, ``restart`` stops then starts, ``reload`` of an inactive unit fails,
a unit whose start fails stays inactive (with ``Restart=on-failure`` it waits to be started
again: "activating (auto-restart)", not active, until stopped), and a unit reads its
configuration when it starts (nginx also on reload). It does not run programs: what a unit
"loaded" is the file content at that moment, which the probes then answer from. Real-stack
tests cover the real programs.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ServiceError
from appliance.host.paths import Layout
from appliance.host.runner import Result
from appliance.host.services import NGINX
from appliance.tls import selfsigned as tls


@dataclass
class MemoryServices:
    layout: Layout
    active: dict[str, bool] = field(default_factory=dict)
    loaded: dict[str, str] = field(default_factory=dict)
    """What each unit read at its last start (nginx: its config, also at reload)."""
    fails: Callable[[str, str], bool] = lambda unit, config: False
    """Whether a unit exits at start with this configuration."""
    log: list[str] = field(default_factory=list)
    restarting: set[str] = field(default_factory=set)
    """Units that failed with ``Restart=on-failure``: systemd starts them again until stopped."""

    def _config(self, unit: str) -> str:
        path = self.layout.nginx_conf if unit == NGINX else f"{self.layout.systemd_dir}/{unit}"
        try:
            return self.layout.map(path).read_text()
        except OSError:
            raise ServiceError(f"{unit}: no unit file") from None

    def is_active(self, unit: str) -> bool:
        return self.active.get(unit, False)

    def start(self, unit: str) -> None:
        self.log.append(f"start {unit}")
        if self.is_active(unit):
            return
        config = self._config(unit)
        if self.fails(unit, config):
            if re.search(r"^Restart=(on-failure|always)$", config, re.M):
                self.restarting.add(unit)
            raise ServiceError(f"{unit} exited at start (code 1)")
        self.loaded[unit] = config
        self.active[unit] = True

    def stop(self, unit: str) -> None:
        self.log.append(f"stop {unit}")
        if unit in self.active:
            self.active[unit] = False
        self.restarting.discard(unit)

    def restart(self, unit: str) -> None:
        self.active[unit] = False
        self.start(unit)

    def reload(self, unit: str) -> None:
        self.log.append(f"reload {unit}")
        if not self.is_active(unit):
            raise ServiceError(f"{unit} is not active, cannot reload")
        self.loaded[unit] = self._config(unit)

    def daemon_reload(self) -> None:
        self.log.append("daemon-reload")

    def pid(self, unit: str) -> int | None:
        return 1000 + len(unit) if self.is_active(unit) else None

    def log_tail(self, unit: str, lines: int = 30) -> str:
        return f"(log of {unit})"


@dataclass
class MemoryProbes:
    """Answers the apply's HTTP checks from what the memory services loaded."""

    services: MemoryServices
    engine_ready: Callable[[str], bool] = lambda unit_text: True
    """Whether an engine that loaded this unit file ever becomes ready."""
    health: int = 200

    def _engine_up(self, port: str | None = None) -> bool:
        """An engine instance that loaded a unit listening on ``port`` (any when None) runs
        and is ready: two instances may run side by side during a switch."""
        return any(self.services.is_active(u) and self.engine_ready(text)
                   and (port is None or f"--port {port} " in text)
                   for u, text in self.services.loaded.items() if u != NGINX)

    def status(self, url: str, headers: Mapping[str, str] | None = None) -> int:
        if url.startswith("http://"):  # the engine's own readiness route
            if not self._engine_up(url.split(":")[-1].split("/")[0]):
                raise ConnectionRefusedError(f"{url}: connection refused")
            return 200
        if not self.services.is_active(NGINX):
            raise ConnectionRefusedError(f"{url}: connection refused")
        upstream = re.search(r"upstream slm_engine\s*\{[^}]*?server\s+\S*:(\d+)",
                             self.services.loaded[NGINX])
        return self.health if self._engine_up(upstream[1] if upstream else None) else 502

    def fingerprint(self, host: str, port: int) -> str:
        if not self.services.is_active(NGINX):
            raise ConnectionRefusedError(f"{host}:{port}: connection refused")
        conf = self.services.loaded[NGINX]
        match = re.search(r"^\s*ssl_certificate\s+(\S+);", conf, re.M)
        assert match, "nginx.conf names no certificate"
        with open(match.group(1), "rb") as f:
            return tls.fingerprint(f.read())


@dataclass
class FakeClock:
    """A clock that only moves when the code under test sleeps: waits cost no time."""

    now: float = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class NginxTest:
    """The runner for ``nginx -t``: passes unless told to reject."""

    reject: str | None = None
    calls: list[list[str]] = field(default_factory=list)

    def __call__(self, argv: list[str], timeout: float = 60.0) -> Result:
        self.calls.append(argv)
        if self.reject and "-t" in argv:
            return Result(1, "", f"nginx: [emerg] {self.reject}")
        return Result(0, "", "")


def tiny_gguf(path: Path, arch: str = "llama", context: int = 8192) -> None:
    """A GGUF header with just what ``resolve`` reads (a real model's takes ~0.3 s to parse)."""
    def kv(key: str, vtype: int, value: bytes) -> bytes:
        return struct.pack("<Q", len(key)) + key.encode() + struct.pack("<I", vtype) + value

    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    kvs = [kv("general.architecture", 8, text(arch)),
           kv(f"{arch}.context_length", 4, struct.pack("<I", context)),
           kv("tokenizer.chat_template", 8, text("{{ messages }}"))]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs)) + b"".join(kvs))
