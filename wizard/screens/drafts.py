"""Widget values -> raw answers, one function per screen. Pure, so the property test builds
drafts exactly as the screens do; nothing here checks a value (the gate does)."""

from __future__ import annotations

from typing import Any

from .fields import optional, scalar


def model_values(selected: str, path: str, context: str,
                 known_sha: dict[str | None, str | None]) -> dict[str, Any]:
    """A path wins over the table; its sha256 is kept only if it was verified for that path."""
    file = optional(path)
    return {"model": {"id": None if file else selected, "path": file,
                      "context_size": scalar(context),
                      "sha256": known_sha.get(file) if file else None}}


def speed_values(threads: str, parallel: str) -> dict[str, Any]:
    return {"threads": scalar(threads), "parallel": scalar(parallel)}


def tls_values(letsencrypt: bool, domain: str, email: str, skip_dns: bool) -> dict[str, Any]:
    """Self-signed clears the domain: nothing may advertise a name it cannot serve."""
    return {"tls": {"mode": "letsencrypt" if letsencrypt else "self-signed",
                    "domain": optional(domain) if letsencrypt else None,
                    "email": optional(email), "skip_dns_check": skip_dns}}


def key_values(rotate: bool, current: Any) -> dict[str, Any]:
    keep = current if isinstance(current, str) and current not in ("keep", "rotate") else "keep"
    return {"api_key": "rotate" if rotate else keep}
