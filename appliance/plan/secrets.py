"""Secrets the plan needs: the API key (kept, rotated once) and the served certificate.

They are gathered from disk and kept unless the answers or the machine call for new ones.
"""

from __future__ import annotations

import datetime as dt
import secrets as pysecrets
from dataclasses import dataclass, field
from typing import Any

from appliance.host.facts import Facts
from appliance.host.files import read_bytes
from appliance.host.paths import Layout
from appliance.keys.store import KeyStore, load_store
from appliance.plan.resolve import Resolved
from appliance.tls import acme_policy
from appliance.tls import selfsigned as tls
from appliance.tls.lineage import live_dir, load_lineage


@dataclass(frozen=True)
class Served:
    """The certificate nginx serves: the ACME lineage when usable, else the self-signed one."""

    mode: str  # self-signed or letsencrypt
    cert_path: str
    key_path: str
    leaf_pem: bytes
    not_after: dt.datetime


@dataclass(frozen=True)
class Secrets:
    api_key: str
    cert: tls.CertPair
    served: Served
    keys: KeyStore = field(default_factory=KeyStore)
    """The named keys (``default`` is ``api_key``)."""


def cert_names(facts: Facts) -> list[str]:
    """The self-signed certificate names the VM (hostname, addresses), not the domain: it must
    stay the same while a domain is tried, so a failed ACME attempt changes nothing served."""
    names = [facts.hostname, "localhost", *facts.addresses]
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


def gather_secrets(r: Resolved, facts: Facts, layout: Layout, state: dict[str, Any],
                   now: dt.datetime) -> Secrets:
    """Keep what exists; make new only when asked (rotate), missing, or no longer valid."""
    wanted = r.answers.api_key
    existing = (read_bytes(layout.map(layout.api_key_file)) or b"").decode().strip()
    if wanted == "keep":
        key = existing or pysecrets.token_urlsafe(32)
    elif wanted == "rotate":
        # Rotating twice in a row with the same answers is one rotation: applies are idempotent.
        repeat = state.get("api_key_answer") == "rotate" and existing
        key = existing if repeat else pysecrets.token_urlsafe(32)
    else:
        key = wanted
    cert_pem = read_bytes(layout.map(layout.selfsigned_cert))
    key_pem = read_bytes(layout.map(layout.selfsigned_key))
    pair = tls.CertPair(cert_pem, key_pem) if cert_pem and key_pem else None
    names = cert_names(facts)
    if pair is None or tls.needs_new(pair, names, now):
        pair = tls.make_selfsigned(names, now)
    served = Served("self-signed", layout.selfsigned_cert, layout.selfsigned_key, pair.cert_pem,
                    tls.cert_not_after(pair.cert_pem))
    t = r.answers.tls
    if t.mode == "letsencrypt" and t.domain:
        lineage = load_lineage(layout, t.domain)
        if lineage and acme_policy.usable(lineage, t.domain, t.acme_directory, now):
            base = live_dir(t.domain)
            served = Served("letsencrypt", f"{base}/{lineage.chain_file}",
                            f"{base}/{lineage.key_file}", lineage.leaf_pem, lineage.not_after)
    return Secrets(api_key=key, cert=pair, served=served, keys=load_store(layout))
