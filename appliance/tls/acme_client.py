"""The one ACME client factory: directory URL + account key + trust -> ``acme.ClientV2``.

Issuance and the ARI renewal hint take a ``Connect`` so tests and other CAs inject the network
exactly where certbot's ``acme`` library does (``ClientV2(directory, net)``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from appliance.answers.schema import Answers
from appliance.host.paths import Layout

USER_AGENT = "slm-appliance"
Connect = Callable[[str, Any, "bool | str"], Any]
"""(directory URL, JWK account key or None, verify: True or a CA bundle path) -> ClientV2."""


def connect(directory_url: str, account_key: Any, verify: bool | str) -> Any:
    from acme import client
    from josepy.jwa import ES256

    # verify_ssl goes to requests' verify=, so a CA bundle path works (typed as bool).
    net = client.ClientNetwork(account_key, alg=ES256, verify_ssl=verify,  # type: ignore[arg-type]
                               user_agent=USER_AGENT)
    return client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)


def ca_trust(answers: Answers, layout: Layout) -> bool | str:
    """What the ACME hop verifies against: the system store, or ``tls.acme_ca_bundle``."""
    bundle = answers.tls.acme_ca_bundle
    return str(layout.map(bundle)) if bundle else True
