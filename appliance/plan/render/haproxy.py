"""HAProxy for the load-balancer role: TLS + API key at the edge, LLM-shaped routing behind.

What fits LLM traffic on CPU (and what the VRouter's layer-4 HAProxy lacks): HTTP checks of
``/health`` expecting 200 (a backend loading its model gets nothing), ``leastconn``, per-server
``maxconn`` = the backend's slots so extra requests wait in HAProxy's queue (visible, and long
enough for CPU prefill), 900 s client/server timeouts, responses streamed as they come,
``slowstart``, retries only before anything reached the client, OpenAI-style JSON errors, and
every backend hop over HTTPS verified against a CA bundle (never ``verify none``).

The ``/health`` of the LB is 200 while at least one backend is up. ACME HTTP-01 challenges on
the http port are answered from the webroot by a tiny Lua service (HAProxy has no file server).
Pure: inputs in, text out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from appliance.answers.hostport import join_hostport, split_hostport

TIMEOUT_S = 900
QUEUE_TIMEOUT_S = 900
CHECK_INTER_S = 1
BACKEND = "slm_backends"
MANAGED = "# Managed by slm-appliance: the next apply overwrites changes made here."
ACME_LUA = """-- Managed by slm-appliance: answers ACME HTTP-01 challenges from the webroot.
local webroot = [==[{webroot}]==]
core.register_service("slm_acme", "http", function(applet)
    local token = string.match(applet.path, "^/%.well%-known/acme%-challenge/([%w_%-]+)$")
    local body, status = nil, 404
    if token then
        local f = io.open(webroot .. "/.well-known/acme-challenge/" .. token, "rb")
        if f then body = f:read("*a"); f:close(); status = 200 end
    end
    body = body or "not found\\n"
    applet:set_status(status)
    applet:add_header("content-type", "text/plain")
    applet:add_header("content-length", string.len(body))
    applet:start_response()
    applet:send(body)
end)
"""


@dataclass(frozen=True)
class Server:
    """One backend appliance: its https listener and how many requests it runs at once."""

    name: str
    address: str
    slots: int


@dataclass(frozen=True)
class HAProxyInputs:
    https: str
    http: str
    pem: str
    """Certificate chain + private key in one file (HAProxy's ``crt``)."""
    key_list: str
    """0600 file holding the one accepted ``Authorization`` value (``Bearer <key>``)."""
    backend_ca: str
    servers: tuple[Server, ...]
    balance: str
    stats_socket: str
    acme_lua: str
    user: str | None = None
    """Drop to this user after binding and reading the keys (none in a sandbox)."""
    cert_sha256: str = ""


def server_name(address: str) -> str:
    """A stable HAProxy server name for an address (``10.0.0.5:443`` -> ``b_10_0_0_5_443``)."""
    return "b_" + re.sub(r"[^A-Za-z0-9]+", "_", address).strip("_")


def _json_error(message: str, typ: str, code: int | str) -> str:
    """Single-quoted for HAProxy, where nothing inside is an escape (so no ' in messages)."""
    body = json.dumps({"error": {"message": message, "type": typ, "code": code}})
    if "'" in body:
        raise ValueError("HAProxy single-quoted strings cannot hold a single quote")
    return f"'{body}'"


UNAUTHORIZED = _json_error("Missing or invalid API key: send the header "
                           '"Authorization: Bearer <key>".', "invalid_request_error",
                           "invalid_api_key")
JSON = "content-type application/json"
BEARER = "'Bearer realm=\"slm-appliance\"'"
NO_BACKEND = _json_error("No model server is ready behind the load balancer; retry in a few "
                         "seconds.", "unavailable_error", 503)
ERRORS = {
    502: ("A model server failed while answering.", "api_error"),
    503: ("No model server is ready behind the load balancer; retry in a few seconds.",
          "unavailable_error"),
    504: ("The model server did not answer in time.", "timeout_error"),
    400: ("Bad request.", "invalid_request_error"),
    408: ("The request was not received in time.", "invalid_request_error"),
    500: ("Load balancer error.", "api_error"),
}


def _bind(value: str) -> str:
    return join_hostport(*split_hostport(value))


def render_key_list(secrets: list[str]) -> str:
    """The exact header values, one a line; matched with ``-m str`` (exact, case-sensitive)."""
    for secret in secrets:
        if not re.fullmatch(r"[A-Za-z0-9_\-]+", secret):
            raise ValueError("API key has characters that cannot be matched safely")
    return "".join(f"Bearer {s}\n" for s in secrets)


def render_acme_lua(webroot: str) -> str:
    if "]==]" in webroot:
        raise ValueError("webroot path cannot be quoted for Lua")
    return ACME_LUA.replace("{webroot}", webroot)


def render_haproxy_cfg(i: HAProxyInputs) -> str:
    _, https_port = split_hostport(i.https)
    user = f"\n    user {i.user}\n    group {i.user}" if i.user else ""
    port_suffix = "" if https_port == 443 else f":{https_port}"
    redirect = f"https://%[req.hdr(host),regsub(:[0-9]+$,)]{port_suffix}%[capture.req.uri]"
    deny = (f"http-request return status 401 {JSON} hdr WWW-Authenticate {BEARER} "
            f"string {UNAUTHORIZED} unless slm_key_ok")
    server_defaults = (f"default-server check inter {CHECK_INTER_S}s fall 2 rise 2 slowstart 10s"
                       f" ssl verify required ca-file {i.backend_ca} alpn http/1.1")
    errors = "\n".join(
        f"    http-error status {code} content-type application/json string "
        f"{_json_error(msg, typ, code)}" for code, (msg, typ) in ERRORS.items())
    servers = "\n".join(f"    server {s.name} {_bind(s.address)} maxconn {s.slots}"
                        for s in i.servers) or "    # no backend is known yet"
    return f"""{MANAGED}
# serving certificate sha256 {i.cert_sha256 or "-"}
global
    master-worker
    stats socket {i.stats_socket} mode 600 level admin expose-fd listeners
    stats timeout 30s
    # old workers finish their streams after a reload, for at most the longest request
    hard-stop-after {TIMEOUT_S + 60}s
    ssl-default-bind-options ssl-min-ver TLSv1.2
    ssl-default-server-options ssl-min-ver TLSv1.2
    lua-load {i.acme_lua}{user}
    log stdout format short local0 info

defaults
    mode http
    log global
    option httplog
    option dontlognull
    timeout connect 5s
    timeout client {TIMEOUT_S}s
    timeout server {TIMEOUT_S}s
    timeout queue {QUEUE_TIMEOUT_S}s
    timeout http-request 30s
    timeout http-keep-alive 65s
    timeout check 5s
    # only connection failures, before anything was sent: a POST that reached a backend is
    # never sent twice; the retry goes to another server
    retries 3
    option redispatch 1
    retry-on conn-failure
{errors}

frontend slm_http
    bind {_bind(i.http)}
    http-request use-service lua.slm_acme if {{ path_beg /.well-known/acme-challenge/ }}
    http-request redirect location {redirect} code 301

frontend slm_https
    bind {_bind(i.https)} ssl crt {i.pem} alpn http/1.1
    acl slm_health path /health
    acl slm_some_up nbsrv({BACKEND}) ge 1
    http-request return status 200 {JSON} string '{{"status":"ok"}}' if slm_health slm_some_up
    http-request return status 503 {JSON} hdr Retry-After 5 string {NO_BACKEND} if slm_health
    # the one key, exactly (-m str is case-sensitive; fhdr keeps the header whole)
    acl slm_key_ok req.fhdr(authorization) -m str -f {i.key_list}
    {deny}
    default_backend {BACKEND}

backend {BACKEND}
    balance {i.balance}
    option httpchk
    http-check send meth GET uri /health ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    # every hop over TLS, verified against the CA file (never an unverified hop)
    {server_defaults}
{servers}
"""


def render_haproxy_unit(haproxy_bin: str, cfg: str, pidfile: str) -> str:
    """Master-worker mode: a reload (USR2) starts new workers with the new config while the
    old ones finish their streams on the sockets they already hold."""
    return f"""{MANAGED}
[Unit]
Description=SLM appliance: HAProxy load balancer in front of the backend appliances
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
Environment=CONFIG={cfg}
ExecStartPre={haproxy_bin} -c -q -f {cfg}
ExecStart={haproxy_bin} -Ws -f {cfg} -p {pidfile}
ExecReload={haproxy_bin} -c -q -f {cfg}
ExecReload=/bin/kill -USR2 $MAINPID
KillMode=mixed
Restart=on-failure
RestartSec=3

[Install]
WantedBy=multi-user.target
"""
