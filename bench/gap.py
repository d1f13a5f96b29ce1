"""A client polling an API route at a fixed interval during an apply, and the longest run of
failures it saw: how a zero-downtime switch and a restart in place look from outside."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

import httpx


@dataclass
class Poller:
    """``with Poller(client, "/v1/models", headers):`` polls every ``interval`` seconds in a
    thread; ``samples`` holds (monotonic time, status), 0 for a connection error."""

    client: httpx.Client
    path: str
    headers: dict[str, str]
    interval: float = 0.1
    samples: list[tuple[float, int]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                status = self.client.get(self.path, headers=self.headers).status_code
            except httpx.HTTPError:
                status = 0
            self.samples.append((t, status))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    @property
    def statuses(self) -> list[int]:
        return [s for _, s in self.samples]

    def longest_gap(self) -> float:
        """Seconds from the last 200 before a run of failures to the first 200 after it."""
        return longest_gap(self.samples)


def longest_gap(samples: list[tuple[float, int]]) -> float:
    worst, last_ok, failing = 0.0, None, False
    for t, status in samples:
        if status == 200:
            if failing and last_ok is not None:
                worst = max(worst, t - last_ok)
            last_ok, failing = t, False
        else:
            failing = True
    return worst
