"""nginx: TLS + API key in front of the engine, streaming unbuffered, hardened for the internet.

Only ACME challenges (http) and the readiness probe (``/health``) are open without the key.
The key lives in a separate 0600 include so the main config can be shown in a review diff.

Hardening (why each piece is here):
- ``/health`` takes GET/HEAD without a body and asks the engine with a 2 s timeout, so a slow
  or frozen engine answers 503 JSON + Retry-After at once instead of holding a connection for
  the 900 s generation timeout; it is rate- and connection-limited per address.
- Slow clients, per-address limits and the connection budget: ``nginx_limits``.
- TLS profile: ``nginx_tls``. What a keyed body may ask of the engine: ``guard`` (njs).
- Errors are OpenAI-style JSON (``nginx_errors``); the access log records the path without
  its query string, never a header or a body; the ``Bearer`` scheme is case-insensitive while
  the key itself is matched case-sensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from appliance.answers.hostport import join_hostport, split_hostport
from appliance.plan.render import MANAGED
from appliance.plan.render.keys import LOG_FORMAT
from appliance.plan.render.model_gate import gated
from appliance.plan.render.nginx_errors import (
    error_pages,
    json_error,
    render_error_location,
    render_error_maps,
)
from appliance.plan.render.nginx_limits import (
    BODY_LIMIT_MB,
    CLIENT_TIMEOUT_S,
    SERVER_LIMITS,
    render_http_limits,
)
from appliance.plan.render.nginx_tls import render_hsts, render_tls

STREAM_ROUTES = ("chat/completions", "completions", "responses", "messages")
TIMEOUT_S = 900  # > the longest CPU generation we allow through (nginx's 60 s kills streams)
HEALTH_TIMEOUT_S = 2  # a healthy engine answers /health in milliseconds, even mid-generation


@dataclass(frozen=True)
class NginxInputs:
    https: str
    http: str
    engine: str
    readiness_path: str
    cert: str
    key: str
    key_map: str
    webroot: str
    pid: str
    log_dir: str
    temp_dir: str
    user: str
    key_policy: str = ""
    """Named keys, http level (validity, the usage log format, limit zones): plan/render/keys."""
    key_limits: str = ""
    """Named keys, https server level (limit_req/limit_conn, the JSON 429)."""
    js_module: str | None = None
    """njs, loaded once for every script (named keys' token counter)."""
    token_filter: str = ""
    """The token routes' body filter that logs the engine's token counts (plan/render/keys)."""
    cert_sha256: str = ""
    """Written into the config so a renewed certificate changes it and triggers a reload."""
    hsts: bool = False
    """Only while a publicly trusted certificate is served."""
    worker_connections: int = 4096
    nofile: int = 8192
    """Worker file limit: two descriptors per connection (client + engine)."""
    served_model: str = ""
    gate_import: str = ""
    """With njs: the served-model gate's js_import; a request naming another model gets a 400
    (plan/render/model_gate.py)."""
    drain_marker: str = ""
    """While this file exists ``/health`` answers 503 "draining" (``wizard drain``)."""


def _listen(value: str) -> str:
    return join_hostport(*split_hostport(value))


UNAUTHORIZED = json_error("Missing or invalid API key: send the header "
                          "'Authorization: Bearer <key>'.", "invalid_request_error",
                          "invalid_api_key")
KEY_CHECK = f"""if ($slm_key_ok = 0) {{
                return 401 {UNAUTHORIZED};
            }}"""


def _drain(marker: str) -> str:
    """The LB's checks see 503 and stop choosing this backend; streams in flight go on."""
    if not marker:
        return ""
    body = json_error("This server is draining: it finishes its requests, then stops.",
                      "unavailable_error", "draining")
    return f"""
            if (-f {marker}) {{
                return 503 {body};
            }}"""


BEARER_MAP = r"""# The token of 'Authorization: Bearer <token>': the scheme is case-insensitive
    # (RFC 7235), the token is matched case-sensitively by the key map.
    map $http_authorization $slm_bearer {
        "~*^bearer[ ]+(?<slm_token>[^ ]+)[ ]*$" $slm_token;
        default "";
    }"""


def _server_common() -> str:
    """Limits and error pages shared by both servers."""
    return f"""{SERVER_LIMITS}
        {error_pages()}

        {render_error_location()}"""


def render_nginx_conf(i: NginxInputs) -> str:
    _, https_port = split_hostport(i.https)
    port_suffix = "" if https_port == 443 else f":{https_port}"
    streams = "|".join(re.escape(r) for r in STREAM_ROUTES)
    proxy = "proxy_pass http://slm_engine;"
    # Named keys (plan/render/keys.py): the log format is defined before access_log uses it;
    # their server-level 429 page comes before ours so a key's own limit message wins.
    keys_http = f"include {i.key_map};" + (f"\n    include {i.key_policy};" if i.key_policy
                                             else "")
    log_format = LOG_FORMAT if i.key_policy else "slm_main"
    keys_server = f"include {i.key_limits};" if i.key_limits else ""
    load = f"load_module {i.js_module};\n" if i.js_module else ""
    no_body = json_error("The readiness probe takes no request body.",
                         "invalid_request_error", 400)
    stream = f"""{proxy}
            proxy_buffering off;
            proxy_cache off;
            gzip off;
            {i.token_filter}"""
    api, stream_named, api_named = proxy, "", ""
    if i.js_module and i.gate_import and i.served_model:
        keys_http += f"\n    {i.gate_import}"
        stream, stream_named = gated(i.served_model, "@slm_stream", stream, f"{BODY_LIMIT_MB}m")
        api, api_named = gated(i.served_model, "@slm_api", proxy, f"{BODY_LIMIT_MB}m")
    return f"""{load}{MANAGED}
# serving certificate sha256 {i.cert_sha256 or "-"}
user {i.user};
worker_processes auto;
worker_rlimit_nofile {i.nofile};
pid {i.pid};
error_log {i.log_dir}/error.log warn;

events {{
    worker_connections {i.worker_connections};
}}

http {{
    # No query string (a key sent by mistake as ?key= stays out), no header, no body.
    log_format slm_main '$remote_addr [$time_iso8601] "$request_method $uri $server_protocol" '
                        '$status $body_bytes_sent $request_time "$http_user_agent"';
    {keys_http}
    access_log {i.log_dir}/access.log {log_format};
    client_body_temp_path {i.temp_dir}/body;
    proxy_temp_path {i.temp_dir}/proxy;
    fastcgi_temp_path {i.temp_dir}/fastcgi;
    uwsgi_temp_path {i.temp_dir}/uwsgi;
    scgi_temp_path {i.temp_dir}/scgi;

    types {{
        text/plain txt;
        application/json json;
    }}
    default_type application/json;
    charset utf-8;
    server_tokens off;

    {render_http_limits()}

    {BEARER_MAP}

    {render_error_maps()}

    # No `keepalive` here: llama-server (cpp-httplib) closes kept-alive connections on its own
    # terms, and an nginx that reuses one the engine has just closed cannot retry the POST: the
    # client got a 503 when requests came back to back. A loopback connect costs well under 1 ms.
    upstream slm_engine {{
        server {_listen(i.engine)};
    }}

    server {{
        listen {_listen(i.http)};
        server_name _;
        client_max_body_size 1k;
        send_timeout {CLIENT_TIMEOUT_S}s;
        add_header Allow $slm_allow always;
        {_server_common()}

        location ^~ /.well-known/acme-challenge/ {{
            if ($request_method !~ ^(GET|HEAD)$) {{
                return 405;
            }}
            root {i.webroot};
            default_type text/plain;
            try_files $uri =404;
        }}

        location / {{
            return 301 https://$host{port_suffix}$request_uri;
        }}
    }}

    server {{
        listen {_listen(i.https)} ssl;
        server_name _;

        {render_tls(i.cert, i.key)}

        # HTTP/1.1 for the engine's chunked streams; nginx's default `Connection: close` stays
        # (no kept-alive connections to the engine, see the upstream block).
        proxy_http_version 1.1;
        # Set here only: a proxy_set_header in a location would drop it (nginx inheritance).
        proxy_set_header Authorization "";   # the client's key never reaches the engine
        proxy_connect_timeout 5s;
        proxy_read_timeout {TIMEOUT_S}s;
        proxy_send_timeout {TIMEOUT_S}s;
        # Server level only: a location with its own add_header would drop these.
        add_header Retry-After $slm_retry_after always;
        add_header WWW-Authenticate $slm_www_authenticate always;
        add_header Allow $slm_allow always;
        {render_hsts(i.hsts)}
        {keys_server}
        {_server_common()}

        # Readiness probe, open without the key: 200 when the model is loaded, else 503 JSON.
        location = /health {{{_drain(i.drain_marker)}
            if ($request_method !~ ^(GET|HEAD)$) {{
                return 405;
            }}
            if ($http_transfer_encoding) {{
                return 400 {no_body};
            }}
            if ($http_content_length !~ "^0?$") {{
                return 400 {no_body};
            }}
            limit_req zone=slm_probe burst=50 nodelay;
            limit_conn slm_addr 16;
            proxy_connect_timeout {HEALTH_TIMEOUT_S}s;
            proxy_read_timeout {HEALTH_TIMEOUT_S}s;
            proxy_send_timeout {HEALTH_TIMEOUT_S}s;
            proxy_next_upstream off;
            {error_pages(timeout_as=503)}
            proxy_pass http://slm_engine{i.readiness_path};
        }}

        # Token streams: no buffering, no cache, no compression, so each event leaves at once.
        location ~ ^/v1/({streams})$ {{
            {KEY_CHECK}
            {stream}
        }}

        {stream_named}location /v1/ {{
            {KEY_CHECK}
            {api}
        }}

        {api_named}location = /metrics {{
            {KEY_CHECK}
            {proxy}
        }}

        location / {{
            {KEY_CHECK}
            return 404;
        }}
    }}
}}
"""
