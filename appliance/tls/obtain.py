"""Let's Encrypt (any ACME CA) via HTTP-01 webroot against the nginx that is already running.

The self-signed certificate keeps serving until a new certificate is issued, installed through
the normal apply path (nginx -t, reload) and verified as the one served. Any failure leaves the
previous certificate in place, says what to fix, and schedules the next attempt with backoff.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from appliance.answers.schema import Answers
from appliance.errors import AcmeError
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.tls import acme_policy as policy
from appliance.tls.acme_policy import AcmeFailure, Lineage
from appliance.tls.attempts import load_status, save_status
from appliance.tls.issue import issue
from appliance.tls.lineage import load_lineage, restore_meta, store_lineage
from appliance.tls.precheck import Emit, Resolver, precheck

OutcomeState = Literal["reused", "issued", "waiting", "failed", "skipped"]


@dataclass
class Outcome:
    state: OutcomeState
    message: str
    lineage: Lineage | None = None
    failure: AcmeFailure | None = None
    previous_meta: bytes | None = None
    """meta.json before this issuance, to switch back if the install fails."""


def obtain(answers: Answers, facts: Facts, layout: Layout, resolver: Resolver, emit: Emit,
           now: dt.datetime, *, force: bool = False, ari_time: dt.datetime | None = None
           ) -> Outcome:
    """Reuse, or order a certificate for ``tls.domain``; never raises for ACME trouble."""
    tls = answers.tls
    domain = tls.domain or ""
    lineage = load_lineage(layout, domain)
    status = load_status(layout)
    if not force and not policy.needs_order(lineage, domain, tls.acme_directory, now, ari_time):
        return Outcome("reused", f"reusing the certificate for {domain} (valid until "
                       f"{lineage.not_after:%Y-%m-%d})" if lineage else "", lineage)
    same = status.get("domain") == domain and status.get("directory") == tls.acme_directory
    next_at = status.get("next_attempt")
    if not force and same and next_at and now < dt.datetime.fromisoformat(next_at):
        return Outcome("waiting", f"previous attempt failed ({status.get('last_error')}); next "
                       f"attempt at {next_at[:16]} UTC (wizard renew --force to retry now)")
    try:
        precheck(answers, facts, layout, resolver, emit)
        new = issue(answers, layout, resolver, emit)
    except AcmeError as exc:
        failures = (int(status.get("failures", 0)) if same else 0) + 1
        retry = policy.next_attempt(now, failures, exc.failure.retry_after)
        save_status(layout, {"domain": domain, "directory": tls.acme_directory,
                             "failures": failures, "next_attempt": retry.isoformat(),
                             "last_error": exc.failure.message, "last_kind": exc.failure.kind,
                             "last_attempt": now.isoformat(),
                             "last_renewal": status.get("last_renewal")})
        return Outcome("failed", f"{exc.failure.message} (next attempt after "
                       f"{retry:%Y-%m-%d %H:%M} UTC)", lineage, exc.failure)
    previous = store_lineage(layout, domain, new, now.strftime("%Y%m%dT%H%M%S"))
    save_status(layout, {"domain": domain, "directory": tls.acme_directory, "failures": 0,
                         "last_attempt": now.isoformat(), "last_error": None,
                         "last_renewal": {"at": now.isoformat(), "result": "issued",
                                          "not_after": new.not_after.isoformat()}})
    return Outcome("issued", f"certificate for {domain} issued, valid until "
                   f"{new.not_after:%Y-%m-%d}", new, previous_meta=previous)


def note_install_failure(layout: Layout, domain: str, previous: bytes | None, reason: str,
                         now: dt.datetime) -> None:
    """Serve what served before: the previous certificate, or the self-signed one."""
    restore_meta(layout, domain, previous)
    status = load_status(layout)
    status.update({"failures": int(status.get("failures", 0)) + 1, "last_error": reason,
                   "next_attempt": policy.next_attempt(now, 1).isoformat()})
    save_status(layout, status)
