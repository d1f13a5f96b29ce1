"""Pure ACME policy: when to renew, how long to back off, whether a certificate can be reused,
and what an ACME failure means for the operator."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization

BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=10), dt.timedelta(minutes=100))
DAILY = dt.timedelta(days=1)


def backoff(failures: int) -> dt.timedelta:
    """Let's Encrypt's integration guide: 1 min, 10 min, 100 min, then daily."""
    if failures <= 0:
        return dt.timedelta(0)
    return BACKOFF[failures - 1] if failures <= len(BACKOFF) else DAILY


def next_attempt(now: dt.datetime, failures: int,
                 retry_after: dt.datetime | None = None) -> dt.datetime:
    when = now + backoff(failures)
    return max(when, retry_after) if retry_after else when


def parse_retry_after(value: str | None, now: dt.datetime) -> dt.datetime | None:
    """Retry-After as seconds or an HTTP date; also 'retry after <RFC 3339>' in problem text."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return now + dt.timedelta(seconds=int(value))
    m = re.search(r"retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)", value, re.I)
    if m:
        return dt.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def renewal_time(not_before: dt.datetime, not_after: dt.datetime) -> dt.datetime:
    """Renew with a third of the lifetime left; half for lifetimes under ten days (6-day certs)."""
    lifetime = not_after - not_before
    left = lifetime / 2 if lifetime < dt.timedelta(days=10) else lifetime / 3
    return not_after - left


@dataclass(frozen=True)
class Lineage:
    fullchain_pem: bytes
    key_pem: bytes
    directory: str
    chain_file: str = "fullchain.pem"
    key_file: str = "privkey.pem"

    @property
    def leaf(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.fullchain_pem)

    @property
    def leaf_pem(self) -> bytes:
        return self.leaf.public_bytes(serialization.Encoding.PEM)

    @property
    def names(self) -> set[str]:
        try:
            san = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return set()
        return {str(n) for n in san.value.get_values_for_type(x509.DNSName)}

    @property
    def not_after(self) -> dt.datetime:
        return self.leaf.not_valid_after_utc

    @property
    def not_before(self) -> dt.datetime:
        return self.leaf.not_valid_before_utc


def usable(lineage: Lineage | None, domain: str, directory: str, now: dt.datetime) -> bool:
    """Serve it: same name, same CA, key matches, not expired (renewal is a separate question)."""
    if lineage is None or lineage.directory != directory:
        return False
    try:
        key = serialization.load_pem_private_key(lineage.key_pem, password=None)
        leaf = lineage.leaf
    except ValueError:
        return False
    return (lineage.names == {domain} and key.public_key() == leaf.public_key()
            and lineage.not_before <= now < lineage.not_after)


def needs_order(lineage: Lineage | None, domain: str, directory: str, now: dt.datetime,
                ari_time: dt.datetime | None = None) -> bool:
    """Order only when there is nothing usable or renewal is due (ARI window when the CA
    offers one, else the lifetime rule): re-applying the same names never orders again."""
    if not usable(lineage, domain, directory, now):
        return True
    assert lineage is not None
    due = ari_time or renewal_time(lineage.not_before, lineage.not_after)
    return now >= due


# -- failures ------------------------------------------------------------------------------

FailureKind = Literal["precheck-dns", "precheck-address", "precheck-http", "token-404", "dns",
                      "connection", "unauthorized", "rate-limited", "bad-nonce", "ca-down",
                      "ca-error"]


@dataclass(frozen=True)
class AcmeFailure:
    kind: FailureKind
    message: str
    retry_after: dt.datetime | None = None


HINTS = {
    "dns": "the CA could not resolve {domain}: create an A/AAAA record pointing at this VM",
    "connection": "the CA could not connect to http://{domain}/ on port 80: open port 80 "
                  "(firewall, security group, NAT forwarding) to this VM",
    "unauthorized": "the CA fetched the challenge from http://{domain}/ and got the wrong "
                    "answer or a 404: port 80 of that name reaches another server",
    "rateLimited": "Let's Encrypt rate limit reached for {domain}",
    "badNonce": "the CA rejected our requests repeatedly (badNonce); this is usually "
                "transient: the next attempt is scheduled automatically",
}


def classify_problem(code: str | None, detail: str, domain: str,
                     now: dt.datetime) -> AcmeFailure:
    """Turn an RFC 8555 problem (code = the part after 'urn:ietf:params:acme:error:')."""
    code = code or ""
    if code == "rateLimited":
        retry = parse_retry_after(detail, now)
        when = f"; retry after {retry:%Y-%m-%d %H:%M} UTC" if retry else ""
        return AcmeFailure("rate-limited", HINTS["rateLimited"].format(domain=domain) + when,
                           retry)
    kinds: dict[str, FailureKind] = {"dns": "dns", "connection": "connection",
                                     "unauthorized": "unauthorized", "badNonce": "bad-nonce"}
    if code in kinds:
        return AcmeFailure(kinds[code], f"{HINTS[code].format(domain=domain)} ({detail.strip()})")
    if code in ("serverInternal",):
        return AcmeFailure("ca-down", f"the CA reported an internal error: {detail}")
    return AcmeFailure("ca-error", f"the CA refused the request ({code or 'error'}): {detail}")
