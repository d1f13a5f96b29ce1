"""Per-key usage from nginx's access log (``slm_usage`` JSON lines, rotated files included).

nginx logs each request's key name, status, duration and bytes. Tokens are reported by the
engine only inside the response body; with njs, nginx copies them into the log line
(``tokens_in``/``tokens_out``, plan/render/keys.py), else a key's token sums stay ``None``.
Lines in another format (written before named keys existed) are skipped and counted.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from appliance.errors import AnswersError, FieldError
from appliance.host.paths import Layout

NO_KEY = "(no valid key)"
"""Requests whose Authorization matched no key (missing, wrong, or revoked)."""
PROBES = ("/health",)
"""Open readiness probes (load balancers, the apply itself): not API use."""


@dataclass
class KeyUsage:
    requests: int = 0
    errors: int = 0
    """Status >= 400, including 401 (an expired key) and 429."""
    rate_limited: int = 0
    busy_seconds: float = 0.0
    """Sum of request durations: how long this key kept the appliance busy."""
    bytes_sent: int = 0
    last_used: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    """None: no request of this key carried the engine's token counts."""

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["busy_seconds"] = round(self.busy_seconds, 3)
        return d


@dataclass
class Usage:
    keys: dict[str, KeyUsage]
    since: str | None
    skipped_lines: int

    def to_dict(self) -> dict[str, object]:
        return {"since": self.since, "keys": {k: v.to_dict() for k, v in self.keys.items()},
                "skipped_lines": self.skipped_lines}


def log_files(layout: Layout) -> list[Path]:
    """access.log and its rotations, oldest first (logrotate: access.log.N[.gz])."""
    folder = layout.map(layout.nginx_log_dir)
    rotated = []
    for p in folder.glob("access.log.*") if folder.is_dir() else []:
        m = re.fullmatch(r"access\.log\.(\d+)(\.gz)?", p.name)
        if m:
            rotated.append((int(m.group(1)), p))
    current = folder / "access.log"
    return [p for _, p in sorted(rotated, reverse=True)] + ([current] if current.exists() else [])


def read_lines(paths: Iterable[Path]) -> Iterator[str]:
    for p in paths:
        opener = gzip.open if p.suffix == ".gz" else open
        try:
            with opener(p, "rt", encoding="utf-8", errors="replace") as f:
                yield from f
        except OSError:
            continue


def _number(value: object) -> float:
    try:
        return float(str(value).split(",")[-1].strip() or 0)
    except ValueError:
        return 0.0


def parse_since(text: str) -> dt.datetime:
    """YYYY-MM-DD (midnight UTC) or a full ISO 8601 time; anything else is a clear error."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise AnswersError([FieldError("--since", f"{text!r} is not a date or time",
                                       "write YYYY-MM-DD or 2026-01-31T12:00:00Z")],
                           "wizard usage") from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def summarize(lines: Iterable[str], since: dt.datetime | None = None) -> Usage:
    keys: dict[str, KeyUsage] = {}
    skipped = 0
    for line in lines:
        try:
            rec = json.loads(line)
            when = dt.datetime.fromisoformat(rec["time"])
            status = int(rec["status"])
        except (ValueError, KeyError, TypeError):
            skipped += 1
            continue
        if (since and when < since) or rec.get("path") in PROBES:
            continue
        u = keys.setdefault(rec.get("key") or NO_KEY, KeyUsage())
        u.requests += 1
        u.errors += status >= 400
        u.rate_limited += status == 429
        u.busy_seconds += _number(rec.get("duration"))
        u.bytes_sent += int(_number(rec.get("bytes_sent")))
        u.last_used = rec["time"]
        if str(rec.get("tokens_in") or "").isdigit():
            u.prompt_tokens = (u.prompt_tokens or 0) + int(rec["tokens_in"])
        if str(rec.get("tokens_out") or "").isdigit():
            u.completion_tokens = (u.completion_tokens or 0) + int(rec["tokens_out"])
    return Usage(dict(sorted(keys.items())), since.isoformat() if since else None, skipped)


def usage(layout: Layout, since: dt.datetime | None = None) -> Usage:
    return summarize(read_lines(log_files(layout)), since)
