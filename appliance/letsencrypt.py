"""Let's Encrypt (any ACME CA) via HTTP-01 webroot against the nginx that is already running.

The self-signed certificate keeps serving until a new certificate is issued, installed through
the normal apply path (nginx -t, reload) and verified as the one served. Any failure leaves the
previous certificate in place, says what to fix, and schedules the next attempt with backoff.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from . import acme_policy as policy
from .acme_policy import AcmeFailure, Lineage
from .answers import Answers, join_hostport, split_hostport
from .errors import ApplianceError
from .facts import Facts
from .files import atomic_write, read_bytes
from .paths import ETC, LIB, Layout

STATUS_FILE = f"{LIB}/acme.json"
Resolver = Callable[[str], list[str]]
Emit = Callable[[str, str], None]


class AcmeError(ApplianceError):
    exit_code = 3

    def __init__(self, failure: AcmeFailure) -> None:
        self.failure = failure
        super().__init__(failure.message)


def account_dir(directory: str) -> str:
    return f"{ETC}/acme/accounts/{hashlib.sha256(directory.encode()).hexdigest()[:16]}"


def live_dir(domain: str) -> str:
    return f"{ETC}/acme/live/{domain}"


def load_lineage(layout: Layout, domain: str) -> Lineage | None:
    """The certificate ``meta.json`` names; files it does not name are never served."""
    base = layout.map(live_dir(domain))
    try:
        meta = json.loads((base / "meta.json").read_text())
        chain_file, key_file = str(meta["chain"]), str(meta["key"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    chain, key = read_bytes(base / chain_file), read_bytes(base / key_file)
    if not chain or not key:
        return None
    return Lineage(chain, key, str(meta.get("directory", "")), chain_file, key_file)


def store_lineage(layout: Layout, domain: str, lineage: Lineage, stamp: str) -> bytes | None:
    """Write the new key and chain under new names, then switch meta.json to them. The
    previous files stay until the new certificate is verified as served (``prune``); the
    previous meta is returned so a failed install can switch back (``restore_meta``)."""
    base = layout.map(live_dir(domain))
    previous = read_bytes(base / "meta.json")
    chain_file, key_file = f"fullchain-{stamp}.pem", f"privkey-{stamp}.pem"
    atomic_write(base / key_file, lineage.key_pem, 0o600)
    atomic_write(base / chain_file, lineage.fullchain_pem, 0o644)
    meta = {"directory": lineage.directory, "not_after": lineage.not_after.isoformat(),
            "chain": chain_file, "key": key_file}
    atomic_write(base / "meta.json", json.dumps(meta).encode(), 0o644)
    return previous


def restore_meta(layout: Layout, domain: str, previous: bytes | None) -> None:
    target = layout.map(live_dir(domain)) / "meta.json"
    if previous is None:
        target.unlink(missing_ok=True)
    else:
        atomic_write(target, previous, 0o644)


def prune(layout: Layout, domain: str) -> None:
    """Drop certificate files that meta.json no longer names (after a verified install)."""
    current = load_lineage(layout, domain)
    if current is None:
        return
    keep = {current.chain_file, current.key_file, "meta.json"}
    for f in layout.map(live_dir(domain)).iterdir():
        if f.name not in keep and f.suffix == ".pem":
            f.unlink()


# -- status (backoff, last results), kept apart from the apply state ----------------------

def load_status(layout: Layout) -> dict[str, Any]:
    try:
        data = json.loads(layout.map(STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_status(layout: Layout, status: dict[str, Any]) -> None:
    atomic_write(layout.map(STATUS_FILE), json.dumps(status, indent=2, default=str).encode(),
                 0o600)


# -- pre-checks ----------------------------------------------------------------------------

def make_resolver(hosts: dict[str, str] | None) -> Resolver:
    """Static names first (the sandbox's /etc/hosts), then the system resolver."""

    def resolve(name: str) -> list[str]:
        if hosts and name in hosts:
            return [hosts[name]]
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror:
            return []
        return sorted({str(i[4][0]) for i in infos})

    return resolve


def _http_url(ip: str, port: int, path: str) -> str:
    return f"http://{join_hostport(ip, port)}{path}"


def fetch_through_name(domain: str, port: int, path: str, resolver: Resolver,
                       timeout: float = 5.0) -> tuple[int, str]:
    """GET http://domain:port/path as the CA would, connecting to what the name resolves to."""
    last = (0, "does not resolve")
    for ip in resolver(domain):
        try:
            r = httpx.get(_http_url(ip, port, path), headers={"Host": domain}, timeout=timeout)
            return r.status_code, r.text
        except httpx.HTTPError as exc:
            last = (0, f"{ip}: {exc or type(exc).__name__}")
    return last


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def precheck(answers: Answers, facts: Facts, layout: Layout, resolver: Resolver,
             emit: Emit) -> list[Check]:
    """Before any order: the name resolves, to this VM, and its http port reaches our nginx.
    Each failure raises with what to fix; ``tls.skip_dns_check`` skips the address check."""
    tls = answers.tls
    domain = tls.domain or ""
    checks: list[Check] = []
    addresses = resolver(domain)
    if not addresses:
        raise AcmeError(AcmeFailure("precheck-dns", f"{domain} does not resolve: create an "
                                    "A/AAAA record pointing at this VM, then try again"))
    checks.append(Check("resolves", True, ", ".join(addresses)))
    emit("acme-precheck", f"{domain} resolves to {', '.join(addresses)}")
    ours = {str(ipaddress.ip_address(a)) for a in facts.addresses}
    if tls.public_address:
        ours.add(str(ipaddress.ip_address(tls.public_address)))
    if not ours & set(addresses):
        if not tls.skip_dns_check:
            raise AcmeError(AcmeFailure(
                "precheck-address", f"{domain} resolves to {', '.join(addresses)}, not to this "
                f"VM ({', '.join(sorted(ours - {'127.0.0.1', '::1'})) or 'no public address'}): "
                "fix the DNS record; behind NAT set tls.public_address; or set "
                "tls.skip_dns_check: true to try anyway"))
        checks.append(Check("points here", False, "skipped by tls.skip_dns_check"))
        return checks
    checks.append(Check("points here", True, "matches this VM"))
    _, port = split_hostport(answers.listen.http)
    probe = secrets.token_urlsafe(16)
    path = f"/.well-known/acme-challenge/{probe}"
    target = layout.map(layout.webroot + path)
    atomic_write(target, probe.encode(), 0o644)
    try:
        status, body = fetch_through_name(domain, port, path, resolver)
    finally:
        target.unlink(missing_ok=True)
    if status != 200 or body != probe:
        raise AcmeError(AcmeFailure(
            "precheck-http", f"http://{domain}:{port}{path} did not return our probe "
            f"(got {status or body}): port {port} of {domain} must reach this VM's nginx"))
    checks.append(Check("http reachable", True, f"port {port} serves the webroot"))
    emit("acme-precheck", f"http://{domain}:{port}/ serves the challenge folder")
    return checks


# -- issuance ------------------------------------------------------------------------------

def issue(answers: Answers, layout: Layout, resolver: Resolver, emit: Emit,
          timeout_s: float = 120.0) -> Lineage:
    """Order, answer HTTP-01 through the webroot, finalize with a fresh P-256 key."""
    import requests
    from acme import challenges, client, errors, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from josepy.jwa import ES256
    from josepy.jwk import JWKEC

    tls = answers.tls
    domain = tls.domain or ""
    directory_url = tls.acme_directory
    verify: bool | str = str(layout.map(tls.acme_ca_bundle)) if tls.acme_ca_bundle else True
    now = dt.datetime.now(dt.UTC)
    acct = layout.map(account_dir(directory_url))
    tokens: list[Path] = []
    try:
        key_json = read_bytes(acct / "key.json")
        if key_json:
            acct_key = JWKEC.json_loads(key_json)
        else:
            acct_key = JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
            atomic_write(acct / "key.json", acct_key.json_dumps().encode(), 0o600)
        # verify_ssl goes to requests' verify=, so a CA bundle path works (typed as bool).
        net = client.ClientNetwork(acct_key, alg=ES256, verify_ssl=verify,  # type: ignore[arg-type]
                                   user_agent="slm-appliance")
        directory = client.ClientV2.get_directory(directory_url, net)
        acme = client.ClientV2(directory, net)
        regr_json = read_bytes(acct / "regr.json")
        if regr_json:
            net.account = messages.RegistrationResource.json_loads(regr_json)
        else:
            reg = messages.NewRegistration.from_data(email=tls.email,
                                                     terms_of_service_agreed=True)
            regr = acme.new_account(reg)
            atomic_write(acct / "regr.json", regr.json_dumps().encode(), 0o600)
        emit("acme-account", directory_url)

        cert_key = ec.generate_private_key(ec.SECP256R1())
        key_pem = cert_key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())
        from acme import crypto_util

        csr_pem = crypto_util.make_csr(key_pem, [domain])
        order = acme.new_order(csr_pem)
        emit("acme-order", f"order for {domain}")
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue
            challb = next((c for c in authz.body.challenges
                           if isinstance(c.chall, challenges.HTTP01)), None)
            if challb is None:
                raise AcmeError(AcmeFailure("ca-error", "the CA offered no http-01 challenge"))
            response, validation = challb.response_and_validation(acct_key)
            token = layout.map(layout.webroot + "/" + challb.chall.path.lstrip("/"))
            atomic_write(token, validation.encode(), 0o644)
            tokens.append(token)
            emit("acme-token", challb.chall.path)
            _, port = split_hostport(answers.listen.http)
            status, body = fetch_through_name(domain, port, challb.chall.path, resolver)
            if status != 200 or body.strip() != validation:
                raise AcmeError(AcmeFailure(
                    "token-404", f"the challenge token is not served at http://{domain}:{port}"
                    f"{challb.chall.path} (got {status or body}): nothing was sent to the CA; "
                    "check that nginx serves the webroot on the http port"))
            acme.answer_challenge(challb, response)
        deadline = dt.datetime.now() + dt.timedelta(seconds=timeout_s)
        order = acme.poll_and_finalize(order, deadline)
        emit("acme-issued", domain)
        return Lineage(order.fullchain_pem.encode(), key_pem, directory_url)
    except AcmeError:
        raise
    except errors.ValidationError as exc:
        raise AcmeError(_from_validation(exc, domain, now)) from None
    except messages.Error as exc:
        raise AcmeError(policy.classify_problem(exc.code, exc.detail or str(exc), domain,
                                                now)) from None
    except requests.exceptions.RequestException as exc:
        raise AcmeError(AcmeFailure("ca-down", f"the ACME server {directory_url} is "
                                    f"unreachable ({type(exc).__name__}): the CA may be down "
                                    "or outbound HTTPS blocked; retrying later")) from None
    except (errors.TimeoutError, errors.PollError, errors.IssuanceError) as exc:
        raise AcmeError(AcmeFailure("ca-error", f"the order did not complete: {exc}")) from None
    finally:
        for t in tokens:
            t.unlink(missing_ok=True)


def _from_validation(exc: Any, domain: str, now: dt.datetime) -> AcmeFailure:
    for authzr in getattr(exc, "failed_authzrs", []):
        for chall in authzr.body.challenges:
            err = chall.error
            if err is not None:
                return policy.classify_problem(err.code, err.detail or "", domain, now)
    return AcmeFailure("ca-error", f"validation failed: {exc}")


# -- the step the apply path runs --------------------------------------------------------

@dataclass
class Outcome:
    state: str  # reused, issued, waiting, failed, skipped
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



def ari_renewal_time(answers: Answers, layout: Layout, lineage: Lineage) -> dt.datetime | None:
    """The CA's suggested renewal time (ACME Renewal Information), or None when the CA has no
    ARI or cannot be asked now; the lifetime rule then decides."""
    from acme import client
    from josepy.jwa import ES256

    verify: bool | str = (str(layout.map(answers.tls.acme_ca_bundle))
                          if answers.tls.acme_ca_bundle else True)
    try:
        net = client.ClientNetwork(None, alg=ES256, verify_ssl=verify,  # type: ignore[arg-type]
                                   user_agent="slm-appliance")
        acme = client.ClientV2(client.ClientV2.get_directory(answers.tls.acme_directory, net),
                               net)
        when, _ = acme.renewal_time(lineage.fullchain_pem)
    except Exception:  # ARIError, network, parse: the lifetime rule is the backstop
        return None
    if when is None:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
