"""Pre-checks before any ACME order: the name resolves, to this VM, and its http port
reaches our nginx; each failure says what to fix before the CA counts a failure."""

from __future__ import annotations

import ipaddress
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from appliance.answers.hostport import join_hostport, split_hostport
from appliance.answers.schema import Answers
from appliance.errors import AcmeError
from appliance.host.facts import Facts
from appliance.host.files import atomic_write
from appliance.host.paths import Layout
from appliance.tls.acme_policy import AcmeFailure

Resolver = Callable[[str], list[str]]


Emit = Callable[[str, str], None]


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
