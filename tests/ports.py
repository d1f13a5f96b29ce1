"""One port allocator for every server a test starts, and waits for the right server.

Servers we start as programs (nginx, llama-server, pebble) bind their own ports, so a port
that was free when we looked can be taken before they bind it. Two rules close that gap:

* Ports come in blocks of 500 below the kernel's ephemeral range (no outgoing connection is
  ever given one), and a block is reserved by an ``flock`` on a file per block, held until
  :meth:`Block.release` or the end of the process. Every test process on this machine
  (parallel runs, other checkouts) uses this one allocator, so no two hand out the same block;
  the kernel drops the lock when a process dies, so nothing stays reserved by accident.
* After starting a server, a test waits for *that* server to answer as itself
  (:func:`wait_for`, e.g. pebble's directory JSON), never for "something listens".

Servers written in Python here bind port 0 themselves and hold the socket instead.
"""

from __future__ import annotations

import fcntl
import random
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from appliance.host.sandbox import port_free

BLOCK = 500
SANDBOX = (80, 81, 82, 443, 444, 445)
"""What a sandbox stack binds: http BASE+80, engine +81 (+82 spare), https +443 (+ spares)."""
FIRST = 10000
LOCK_DIR = Path(tempfile.gettempdir()) / "slm-appliance-ports"


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


@dataclass
class Block:
    """Ports ``base .. base + BLOCK - 1``, reserved for this process."""

    base: int
    _lock: IO[str] | None = field(default=None, repr=False)

    def port(self, offset: int) -> int:
        assert 0 <= offset < BLOCK, offset
        return self.base + offset

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None


def reserve(offsets: Iterable[int]) -> Block:
    """A block whose ports ``base + offset`` are all free now, reserved until released."""
    wanted = list(offsets)
    LOCK_DIR.mkdir(mode=0o1777, parents=True, exist_ok=True)
    bases = list(range(FIRST, _ephemeral_start() - BLOCK + 1, BLOCK))
    random.shuffle(bases)
    for base in bases:
        lock = open(LOCK_DIR / f"{base}.lock", "a+")  # noqa: SIM115 (held while reserved)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        if all(port_free(base + off) for off in wanted):
            return Block(base, lock)
        lock.close()
    raise RuntimeError(f"no free block of {BLOCK} loopback ports between {FIRST} and "
                       f"{_ephemeral_start()}")


def wait_for(check: Callable[[], bool], what: str, timeout: float = 15.0,
             alive: Callable[[], str | None] = lambda: None) -> None:
    """Poll ``check`` (which answers True only when the right server replies) until it does;
    ``alive`` returns a reason when the server already died (e.g. its port was taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        dead = alive()
        if dead:
            raise RuntimeError(f"{what} died before it answered: {dead}")
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")
