"""A steady load of concurrent streams through the LB, recording every outcome."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

from appliance.errors import BenchError
from appliance.perf.bench import run_once
from tests.conftest import SMOLLM


@dataclass
class Outcome:
    started: float
    ended: float
    ok: bool
    error: str = ""
    tokens: int = 0


@dataclass
class Load:
    client_factory: object
    headers: dict[str, str]
    streams: int = 2
    max_tokens: int = 48
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _worker(self, n: int) -> None:
        with self.client_factory() as c:  # type: ignore[operator]
            i = 0
            while not self._stop.is_set():
                i += 1
                start = time.perf_counter()
                try:
                    s = run_once(c, "/v1", SMOLLM, self.max_tokens, headers=self.headers,
                                 prompt=f"Worker {n} request {i}: name three rivers.")
                    self.outcomes.append(Outcome(start, time.perf_counter(), True,
                                                 tokens=s.gen_tokens))
                except (BenchError, httpx.HTTPError) as exc:
                    self.outcomes.append(Outcome(start, time.perf_counter(), False,
                                                 f"{type(exc).__name__}: {exc}"))

    def __enter__(self) -> Load:
        for n in range(self.streams):
            t = threading.Thread(target=self._worker, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]
