"""Let's Encrypt flow against a real ACME server (pebble + challtestsrv) and the real nginx."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from appliance.answers.schema import load_yaml, parse
from appliance.apply.run import apply_answers, renew
from appliance.apply.runtime import Context, Event, make_context
from appliance.host.site import load_site
from appliance.tls.lineage import load_lineage
from appliance.tls.selfsigned import fingerprint
from tests.acme_server import Pebble, start_pebble
from tests.conftest import Stack, wizard

pytestmark = pytest.mark.stack
DOMAIN = "llm.test"


@pytest.fixture(scope="module")
def pebble(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    p = start_pebble(tmp_path_factory.mktemp("pebble"), stack.port_base + 80)
    yield p
    p.stop()


@pytest.fixture
def acme_stack(fresh: Stack, pebble: Pebble) -> Stack:
    """The sandbox stack with pebble's TLS certificate placed under its root."""
    dest = fresh.root / "etc/slm-appliance/pebble-ca.pem"
    shutil.copy(pebble.ca_file, dest)
    return fresh


def le_answers(directory: str, domain: str = DOMAIN) -> str:
    return (f"tls:\n  mode: letsencrypt\n  domain: {domain}\n  email: ops@example.com\n"
            f"  acme_directory: {directory}\n"
            f"  acme_ca_bundle: /etc/slm-appliance/pebble-ca.pem\n")


def served_chain(stack: Stack, root_pem: str | None = None) -> tuple[str, list[str]]:
    """SHA-256 of the served leaf and its subject and issuer. With ``root_pem`` the handshake
    trusts only that root, so it succeeds only if nginx sends the intermediate as well."""
    ctx = ssl.create_default_context(cadata=root_pem) if root_pem else \
        ssl._create_unverified_context()  # we only read the fingerprint
    with socket.create_connection(("127.0.0.1", stack.port_base + 443)) as raw, \
            ctx.wrap_socket(raw, server_hostname=DOMAIN) as s:
        der = s.getpeercert(binary_form=True) or b""
    leaf = x509.load_der_x509_certificate(der)
    return fingerprint(der), [leaf.subject.rfc4514_string(), leaf.issuer.rfc4514_string()]


def context(stack: Stack, emit: object = None,
            now: dt.datetime | None = None) -> Context:
    ctx = make_context(stack.layout, load_site(stack.layout))
    if emit:
        ctx.emit = emit  # type: ignore[assignment]
    if now:
        ctx.now = lambda: now
    return ctx


def applied(stack: Stack):  # type: ignore[no-untyped-def]
    site = load_site(stack.layout)
    text = stack.layout.map(stack.layout.applied_answers).read_text()
    return parse(load_yaml(text, "x"), "x", parse(site.defaults or {}))


def test_issue_reuse_and_renew_without_dropping_a_stream(acme_stack: Stack, pebble: Pebble) -> None:
    s = acme_stack
    self_signed, _ = served_chain(s)
    p = s.apply(le_answers(pebble.directory))
    assert "issued" in p.stdout, p.stdout + p.stderr
    leaf, chain = served_chain(s, pebble.root_pem())
    assert leaf != self_signed
    assert "Pebble Intermediate" in chain[1]
    status = json.loads(wizard("--root", str(s.root), "status", "--json", check=True).stdout)
    assert status["tls_mode"] == "letsencrypt" and status["ready"] and status["ca_file"] is None
    assert "mode = letsencrypt" in (s.root / "etc/one-appliance/config").read_text()
    live = s.root / f"etc/slm-appliance/acme/live/{DOMAIN}"
    meta = json.loads((live / "meta.json").read_text())
    key = live / meta["key"]
    assert key.stat().st_mode & 0o777 == 0o600 and b"EC PRIVATE" not in key.read_bytes()

    # Same names again: the certificate is reused, nothing is ordered, nothing reloads.
    lineage = live / meta["chain"]
    before = lineage.read_bytes()
    nginx = s.services.pid("nginx.service")
    workers = Path(f"/proc/{nginx}/task/{nginx}/children").read_text()
    p = s.apply(le_answers(pebble.directory))
    assert "reusing the certificate" in p.stdout and "acme-order" not in p.stdout
    assert lineage.read_bytes() == before
    assert Path(f"/proc/{nginx}/task/{nginx}/children").read_text() == workers

    # Near expiry (the clock moved): renewal replaces it while a stream is in flight.
    old = load_lineage(s.layout, DOMAIN)
    assert old is not None
    done: dict[str, object] = {}

    trust = ssl.create_default_context(cadata=pebble.root_pem())

    def stream() -> None:
        body = {"messages": [{"role": "user", "content": "Tell a long story."}],
                "max_tokens": 400, "stream": True, "ignore_eos": True}
        events = 0
        try:
            with httpx.Client(base_url=s.https, verify=trust, timeout=300) as c, \
                    c.stream("POST", "/v1/chat/completions", json=body, headers=s.auth(),
                             extensions={"sni_hostname": DOMAIN}) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        events += 1
                        done.setdefault("first", time.monotonic())
                    if line == "data: [DONE]":
                        done["finished"] = True
        except httpx.HTTPError as exc:
            done["error"] = repr(exc)
        done["events"] = events

    t = threading.Thread(target=stream)
    t.start()
    while "first" not in done and t.is_alive():
        time.sleep(0.01)
    outcome = renew(applied(s), context(s, now=old.not_after - dt.timedelta(days=1)))
    assert outcome.state == "issued", outcome.message
    renewed_at = time.monotonic()
    t.join(timeout=300)  # ~6 s on an idle 2-core machine; generous for a loaded one
    assert done.get("finished") and "error" not in done, done
    assert done["events"] >= 400 and renewed_at < time.monotonic()
    new_leaf, _ = served_chain(s, pebble.root_pem())
    assert new_leaf not in (leaf, self_signed)
    assert s.services.pid("nginx.service") == nginx  # reloaded, not restarted
    assert sorted(f.name for f in live.iterdir() if f.suffix == ".pem") == sorted(
        json.loads((live / "meta.json").read_text())[k] for k in ("chain", "key"))  # pruned


def test_renewal_that_fails_to_install_keeps_the_previous_certificate(
        acme_stack: Stack, pebble: Pebble, monkeypatch: pytest.MonkeyPatch) -> None:
    import appliance.apply.transaction as apply_mod
    from appliance.errors import ApplyError

    s = acme_stack
    s.apply(le_answers(pebble.directory))  # issued, or reused from the test above
    before, _ = served_chain(s, pebble.root_pem())
    old = load_lineage(s.layout, DOMAIN)
    assert old is not None
    real_verify = apply_mod.verify_nginx

    def verify(plan, ctx, timeout=10.0):  # type: ignore[no-untyped-def]
        if plan.served and plan.served.leaf_pem != old.leaf_pem:
            raise ApplyError("verify", "simulated: the new certificate is not served")
        return real_verify(plan, ctx, timeout)

    monkeypatch.setattr(apply_mod, "verify_nginx", verify)
    outcome = renew(applied(s), context(s, now=old.not_after - dt.timedelta(days=1)))
    assert outcome.state == "failed" and "could not be installed" in outcome.message
    assert served_chain(s, pebble.root_pem())[0] == before  # the previous Let's Encrypt one
    current = load_lineage(s.layout, DOMAIN)
    assert current is not None and current.leaf_pem == old.leaf_pem


def test_token_not_served_during_renewal(acme_stack: Stack, pebble: Pebble) -> None:
    s = acme_stack
    s.apply(le_answers(pebble.directory))  # issued, or reused from the test above
    before, chain = served_chain(s, pebble.root_pem())
    assert "Pebble Intermediate" in chain[1]
    events: list[Event] = []

    def emit(e: Event) -> None:
        events.append(e)
        if e.step == "acme-token":  # something else on the box empties the webroot
            (s.root / "var/lib/slm-appliance/acme-webroot" / e.detail.lstrip("/")).unlink()

    answers = parse(load_yaml(le_answers(pebble.directory, "llm.test"), "t"), "t",
                    parse(load_site(s.layout).defaults or {}))
    result = apply_answers(answers, context(s, emit), "t", force_acme=True)
    assert result.tls is not None and result.tls.failure is not None
    assert result.tls.failure.kind == "token-404"
    assert "not served" in result.tls.message and "got 404" in result.tls.message
    assert served_chain(s)[0] == before  # the current Let's Encrypt certificate stays


@pytest.mark.parametrize("case", ["resolves-elsewhere", "ca-down", "bad-nonce"])
def test_failures_keep_the_old_certificate(acme_stack: Stack, pebble: Pebble, case: str,
                                           tmp_path: Path) -> None:
    s = acme_stack
    shutil.rmtree(s.root / "etc/slm-appliance/acme/live", ignore_errors=True)
    (s.root / "var/lib/slm-appliance/acme.json").unlink(missing_ok=True)
    before, _ = served_chain(s)  # the self-signed certificate
    extra: Pebble | None = None
    if case == "resolves-elsewhere":
        text, expect = le_answers(pebble.directory, "elsewhere.test"), "resolves to 192.0.2.77"
    elif case == "ca-down":
        closed = pebble.directory.rsplit(":", 1)[0] + ":9/dir"
        text, expect = le_answers(closed), "is unreachable"
    else:
        extra = start_pebble(tmp_path / "nonce", s.port_base + 80, nonce_reject=100)
        shutil.copy(extra.ca_file, s.root / "etc/slm-appliance/pebble-ca.pem")
        text, expect = le_answers(extra.directory), "badNonce"
    try:
        p = s.apply(text, check=False)
    finally:
        if extra:
            extra.stop()
    assert p.returncode == 3, p.stdout + p.stderr
    assert expect in p.stderr and "previous certificate keeps serving" in p.stderr
    assert "Traceback" not in p.stderr
    assert served_chain(s)[0] == before
    with s.client() as c:
        assert c.get("/v1/models", headers=s.auth()).status_code == 200
    report = (s.root / "etc/one-appliance/config").read_text()
    assert "mode = self-signed" in report and expect.split()[0] in report
    # The next attempt waits (backoff 1 min) instead of hammering the CA.
    p = s.apply(text, check=False)
    assert p.returncode == 3 and "next attempt at" in p.stderr
