"""HOST:PORT strings, the one parser and printer (IPv6 in brackets)."""

from __future__ import annotations

import ipaddress
import re


def split_hostport(value: str) -> tuple[str, int]:
    """``"127.0.0.1:8080"`` / ``"[::1]:443"`` -> (host, port); raises ValueError with a reason."""
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([0-9.]+):(\d{1,5})", value.strip())
    if not m:
        raise ValueError("expected HOST:PORT with an IP address, e.g. 0.0.0.0:443 or [::]:443")
    host = m.group(1) or m.group(3)
    port = int(m.group(2) or m.group(4))
    ipaddress.ip_address(host)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return host, port


def join_hostport(host: str, port: int) -> str:
    """The inverse of :func:`split_hostport`: IPv6 addresses go in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
