"""Issuance over ACME (HTTP-01 webroot) with a fresh P-256 key, and the CA's renewal hint (ARI)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from appliance.answers.hostport import split_hostport
from appliance.answers.schema import Answers
from appliance.errors import AcmeError
from appliance.host.files import atomic_write, read_bytes
from appliance.host.paths import Layout
from appliance.tls import acme_policy as policy
from appliance.tls.acme_client import Connect, ca_trust
from appliance.tls.acme_client import connect as connect_acme
from appliance.tls.acme_policy import AcmeFailure, Lineage
from appliance.tls.lineage import account_dir
from appliance.tls.precheck import Emit, Resolver, fetch_through_name


def issue(answers: Answers, layout: Layout, resolver: Resolver, emit: Emit,
          timeout_s: float = 120.0, connect: Connect = connect_acme) -> Lineage:
    """Order, answer HTTP-01 through the webroot, finalize with a fresh P-256 key."""
    import requests
    from acme import challenges, errors, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from josepy.jwk import JWKEC

    tls = answers.tls
    domain = tls.domain or ""
    directory_url = tls.acme_directory
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
        acme = connect(directory_url, acct_key, ca_trust(answers, layout))
        net = acme.net
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


def ari_renewal_time(answers: Answers, layout: Layout, lineage: Lineage,
                     connect: Connect = connect_acme) -> dt.datetime | None:
    """The CA's suggested renewal time (ACME Renewal Information), or None when the CA has no
    ARI or cannot be asked now; the lifetime rule then decides."""
    try:
        acme = connect(answers.tls.acme_directory, None, ca_trust(answers, layout))
        when, _ = acme.renewal_time(lineage.fullchain_pem)
    except Exception:  # ARIError, network, parse: the lifetime rule is the backstop
        return None
    if when is None:
        return None
    at: dt.datetime = when
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)
