"""Slow-body attack against a running stack, loopback only, bounded in count and time.

``slow_bodies`` opens ``per_target`` connections to ``/health`` over TLS and as many to the
http port. Each sends a request head announcing a large body, then one body byte every
``drip_s`` (the attack of issue 14 that exhausted 2 x 1,024 worker connections), and reconnects
whenever nginx closes it, until ``duration_s`` is over. Meanwhile a keyed client asks
``/v1/models`` every ``probe_every_s`` on its own keep-alive connection and records status and
latency. The CI test runs it for seconds; ``python -m bench.attack`` runs the long version
(2,000 + 2,000 connections, 60 s, a byte every 20 s) against a fresh sandbox stack.
"""

from __future__ import annotations

import asyncio
import random
import resource
import ssl
import time
from dataclasses import dataclass, field
from multiprocessing import Queue, get_context

import httpx

HEAD = ("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000000\r\n\r\n{{")


@dataclass
class AttackResult:
    probes: list[tuple[int | str, float]] = field(default_factory=list)
    """(status or error, seconds) of each keyed /v1/models call during the attack."""
    connections: int = 0
    """Attack connections opened (each reconnect counts)."""
    peak_open: int = 0
    refused: int = 0
    """Attempts that could not even connect (nginx or the kernel refused)."""

    @property
    def worst_s(self) -> float:
        return max((t for _, t in self.probes), default=0.0)

    @property
    def all_ok(self) -> bool:
        return bool(self.probes) and all(s == 200 for s, _ in self.probes)


def raise_fd_limit(need: int) -> int:
    """Our soft file limit up to ``need`` (within the hard limit); returns the new soft one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


async def _attacker(host: str, port: int, tls: ssl.SSLContext | None, path: str,
                    drip_s: float, until: float, res: AttackResult, open_now: list[int],
                    ramp_s: float) -> None:
    # Spread over the ramp: our own TLS handshakes (this process shares the machine's cores
    # with nginx) would otherwise come in one burst and measure the client, not the server.
    await asyncio.sleep(random.uniform(0, ramp_s))
    while time.monotonic() < until:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=tls), timeout=10)
        except (TimeoutError, OSError):
            res.refused += 1
            await asyncio.sleep(0.5)
            continue
        res.connections += 1
        open_now[0] += 1
        res.peak_open = max(res.peak_open, open_now[0])
        try:
            writer.write(HEAD.format(path=path, host=host).encode())
            await writer.drain()
            while time.monotonic() < until and not reader.at_eof():
                try:  # nginx answering or closing ends this connection; else drip a byte
                    if await asyncio.wait_for(reader.read(4096), timeout=drip_s) == b"":
                        break
                except TimeoutError:
                    writer.write(b" ")
                    await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            open_now[0] -= 1
            writer.close()


def _prober(base: str, ca: str, key: str, every_s: float, start_in: float, duration_s: float,
            out: Queue[list[tuple[int | str, float]]]) -> None:
    """In its own process, so the attack's handshakes in our event loop cannot delay it: a
    keep-alive client, warmed before the attack, then one /v1/models every ``every_s``."""
    verify = ssl.create_default_context(cafile=ca)
    probes: list[tuple[int | str, float]] = []
    with httpx.Client(base_url=base, verify=verify, timeout=10,
                      headers={"Authorization": f"Bearer {key}"}) as c:
        c.get("/v1/models")
        time.sleep(start_in)
        until = time.monotonic() + duration_s
        while time.monotonic() < until:
            t0 = time.monotonic()
            try:
                status: int | str = c.get("/v1/models").status_code
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            probes.append((status, time.monotonic() - t0))
            time.sleep(every_s)
    out.put(probes)


async def slow_bodies(https_port: int, http_port: int, ca: str, key: str, per_target: int,
                      duration_s: float, drip_s: float, probe_every_s: float = 0.25,
                      host: str = "127.0.0.1") -> AttackResult:
    """Run the attack; the keyed probe (another process) starts after a short ramp-up."""
    if host not in ("127.0.0.1", "::1", "localhost"):
        raise ValueError("attack clients run against loopback only")
    raise_fd_limit(2 * per_target + 256)
    res = AttackResult()
    tls = ssl.create_default_context(cafile=ca)
    tls.check_hostname = False  # the attacker does not care which name is served
    ctx = get_context("spawn")
    out: Queue[list[tuple[int | str, float]]] = ctx.Queue()
    ramp = min(3.0, duration_s / 3)
    prober = ctx.Process(target=_prober, args=(f"https://{host}:{https_port}", ca, key,
                                               probe_every_s, ramp, duration_s - ramp, out))
    prober.start()
    until = time.monotonic() + duration_s + 2
    open_now = [0]
    tasks = [asyncio.create_task(_attacker(host, https_port, tls, "/health", drip_s, until, res,
                                           open_now, ramp)) for _ in range(per_target)]
    tasks += [asyncio.create_task(_attacker(host, http_port, None, "/", drip_s, until, res,
                                            open_now, ramp)) for _ in range(per_target)]
    await asyncio.gather(*tasks, return_exceptions=True)
    res.probes = await asyncio.get_running_loop().run_in_executor(None, out.get)
    prober.join()
    return res


def main() -> None:
    from bench.common import Stack

    stack = Stack()
    try:
        ca = str(stack.layout.map(stack.layout.selfsigned_cert))
        res = asyncio.run(slow_bodies(stack.port_base + 443, stack.port_base + 80, ca,
                                      stack.key, per_target=2000, duration_s=60, drip_s=20))
        lat = sorted(t for _, t in res.probes)
        print(f"attack connections opened: {res.connections} (peak open {res.peak_open}, "
              f"refused {res.refused})")
        print(f"keyed /v1/models: {len(res.probes)} calls, all 200: {res.all_ok}, "
              f"median {lat[len(lat) // 2] * 1000:.0f} ms, worst {res.worst_s * 1000:.0f} ms")
    finally:
        stack.close()


if __name__ == "__main__":
    main()
