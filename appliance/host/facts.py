"""Facts about the machine, read once: CPU topology and flags, memory, hostname, addresses.

Plain data so renderers and policies stay pure; tests build ``Facts`` by hand.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Facts:
    logical_cpus: int
    physical_cores: int
    cpu_flags: frozenset[str]
    mem_total: int
    hostname: str
    addresses: tuple[str, ...] = field(default=("127.0.0.1", "::1"))
    cpu_model: str = ""
    mem_available: int = 0
    """MemAvailable when read (0: unknown): whether a second engine fits beside the first."""

    @property
    def has_avx2(self) -> bool:
        return "avx2" in self.cpu_flags

    def auto_threads(self) -> int:
        """Generation is memory-bound: one thread per physical core, as llama.cpp's default."""
        return max(1, min(self.physical_cores, self.logical_cpus))


def _cpuinfo(text: str) -> tuple[int, frozenset[str], str]:
    cores: set[tuple[str, str]] = set()
    flags: frozenset[str] = frozenset()
    model = ""
    phys = core = "0"
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            k, _, v = line.partition(":")
            fields[k.strip()] = v.strip()
        if "processor" not in fields:
            continue
        phys = fields.get("physical id", phys)
        core = fields.get("core id", fields["processor"])
        cores.add((phys, core))
        flags = flags or frozenset(fields.get("flags", "").split())
        model = model or fields.get("model name", "")
    return len(cores), flags, model


def _meminfo(text: str, key: str = "MemTotal") -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _addresses() -> tuple[str, ...]:
    found = {"127.0.0.1", "::1"}
    try:
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            hexaddr = line.split()[0]
            addr = ipaddress.IPv6Address(int(hexaddr, 16))
            if not addr.is_link_local:
                found.add(str(addr))
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.add(str(info[4][0]))
    except OSError:
        pass
    try:  # the address used for the default route, without sending anything
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))
            found.add(s.getsockname()[0])
    except OSError:
        pass
    return tuple(sorted(found, key=lambda a: (ipaddress.ip_address(a).version, a)))


def detect() -> Facts:
    logical = os.cpu_count() or 1
    try:
        physical, flags, model = _cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        physical, flags, model = logical, frozenset(), ""
    try:
        meminfo = Path("/proc/meminfo").read_text()
    except OSError:
        meminfo = ""
    mem, available = _meminfo(meminfo), _meminfo(meminfo, "MemAvailable")
    return Facts(logical_cpus=logical, physical_cores=physical or logical, cpu_flags=flags,
                 mem_total=mem, hostname=socket.gethostname(), addresses=_addresses(),
                 cpu_model=model, mem_available=available)
