"""nginx's part of the named keys: who is calling, is the key still valid, per-key limits,
the 429 answer, and an access log that records the key's name, never the key.

Three include files, so nginx.conf itself never changes when keys do:

* ``slm-api-key.conf`` (http, 0600, the only one with secrets): ``Authorization`` ->
  ``$slm_key_name`` by case-sensitive exact regex (plain map strings match without case).
* ``slm-keys.conf`` (http): ``$slm_key_ok`` (known and not expired), the usage log format,
  one ``limit_req_zone``/``limit_conn_zone`` per distinct limit value, keyed by the key's name
  (so a zone's key never changes across reloads, which nginx would refuse), and the 429 text.
* ``slm-key-limits.conf`` (https server level, next to the other ``error_page`` s): the
  ``limit_req``/``limit_conn`` lines and the OpenAI-style 429 with ``Retry-After``.

Expiry is checked by nginx itself against ``$time_iso8601``, so an expired key is refused at
midnight without an apply.

Tokens: the engine reports them only inside the response body (llama-server ``timings`` in a
stream's last event and a JSON answer, OpenAI ``usage``), never in a header. With njs
(``libnginx-mod-http-js``) a body filter on the token routes copies them into two log
variables, passing every chunk on unchanged; without njs the log has no token fields.
"""

from __future__ import annotations

import math
import re

from appliance.keys.store import DEFAULT, KeyStore, NamedKey
from appliance.plan.render import MANAGED_BY

HEADER = f"{MANAGED_BY}: 'wizard key' rewrites this file.\n"
LOG_FORMAT = "slm_usage"
CONCURRENT_RETRY_S = 5
"""Retry-After when a key's concurrency is used up: a CPU stream usually takes seconds."""
LIMITED = "@slm_key_limited"

LOG_FIELDS = (
    ("time", "$time_iso8601"), ("key", "$slm_key_name"), ("method", "$request_method"),
    ("path", "$uri"), ("status", "$status"), ("duration", "$request_time"),
    ("upstream_time", "$upstream_response_time"), ("bytes_sent", "$bytes_sent"),
    ("request_bytes", "$request_length"), ("limit_req", "$limit_req_status"),
    ("limit_conn", "$limit_conn_status"),
)
"""The usage log line: the path without its query string, never a header or the key."""

TOKEN_FIELDS = (("tokens_in", "$slm_tokens_in"), ("tokens_out", "$slm_tokens_out"))
TOKENS_FILTER = "js_body_filter slm_usage.count buffer_type=buffer;"
"""For the locations that proxy token routes (``js_body_filter`` is location-only)."""

USAGE_JS = """\
// Managed by slm-appliance: the tokens an engine reports inside a response, copied into
// $slm_tokens_in/$slm_tokens_out for the access log. Chunks pass on unchanged, at once.
function last(re, text) {
    var m, v = null;
    re.lastIndex = 0;
    while ((m = re.exec(text)) !== null) { v = m[1]; }
    return v;
}

function count(r, data, flags) {
    var v = r.variables;
    var text = v.slm_tail + data.toString();
    var prompt = last(/"prompt_tokens":\\s*(\\d+)/g, text);
    if (prompt === null) {
        var n = last(/"prompt_n":\\s*(\\d+)/g, text);
        if (n !== null) {
            prompt = String(Number(n) + Number(last(/"cache_n":\\s*(\\d+)/g, text) || 0));
        }
    }
    var out = last(/"(?:completion_tokens|predicted_n)":\\s*(\\d+)/g, text);
    if (prompt !== null) { v.slm_tokens_in = prompt; }
    if (out !== null) { v.slm_tokens_out = out; }
    v.slm_tail = text.slice(-96);
    r.sendBuffer(data, flags);
}

export default {count};
"""

SECRET_RE = re.compile(r"^[A-Za-z0-9_\-]+$")


def date_before_regex(day: str) -> str:
    """A regex matching YYYY-MM-DD strings that sort before ``day`` (fixed width, so string
    order is date order): at some position the prefix is equal and the next character lower.
    """
    alts = []
    for i, ch in enumerate(day):
        if ch.isdigit() and ch != "0":
            lower = "0" if ch == "1" else f"0-{int(ch) - 1}"
            alts.append(re.escape(day[:i]).replace("\\-", "-") + f"[{lower}]")
    return "(?:" + "|".join(alts) + ")" if alts else "(?!)"


def _exact(name: str) -> str:
    return f'"~^{name}$"'


def render_key_names(default_secret: str, store: KeyStore) -> str:
    """The secret part: which key name a request's ``Authorization`` header carries."""
    # $slm_bearer (nginx.conf): the token of a Bearer header, the scheme matched without case.
    lines = [HEADER + "# Secret: keep 0600.\n", "map $slm_bearer $slm_key_name {\n",
             '    default "";\n']
    for name, secret in [(DEFAULT, default_secret), *((k.name, k.secret) for k in store.keys)]:
        if not SECRET_RE.match(secret):
            raise ValueError(f"key {name!r} has characters that cannot be matched safely")
        lines.append(f'    "~^{re.escape(secret)}$" {name};\n')
    lines.append("}\n")
    return "".join(lines)


def _retry_s(k: NamedKey) -> int:
    return math.ceil(60 / k.rpm) if k.rpm else CONCURRENT_RETRY_S


def render_key_policy(store: KeyStore, usage_js: str | None = None) -> str:
    """http level: validity with expiry, the usage log format (with tokens when the njs
    script ``usage_js`` is loaded), limit zones, the 429 texts."""
    tokens = ""
    log_fields: tuple[tuple[str, str], ...] = LOG_FIELDS
    if usage_js:
        tokens = (f"js_import slm_usage from {usage_js};\n"
                  + "".join(f"js_var {v};\n" for _, v in TOKEN_FIELDS) + "js_var $slm_tail;\n")
        log_fields += TOKEN_FIELDS
    fields = ",".join(f'"{k}":"{v}"' for k, v in log_fields)
    out = [HEADER, tokens, f"log_format {LOG_FORMAT} escape=json '{{{fields}}}';\n\n",
           "# Known and not expired ($time_iso8601 is the VM's local time, UTC on the image).\n",
           'map "$slm_key_name|$time_iso8601" $slm_key_ok {\n    default 0;\n',
           f'    "~^{DEFAULT}\\|" 1;\n']
    for k in store.keys:
        before = date_before_regex(k.expires) if k.expires else ""
        note = f"  # expires {k.expires}" if k.expires else ""
        out.append(f'    "~^{k.name}\\|{before}" 1;{note}\n')
    out.append("}\n")
    for kind, attr in (("rpm", "rpm"), ("conn", "concurrent")):
        values = sorted({getattr(k, attr) for k in store.keys if getattr(k, attr)})
        for v in values:
            var = f"slm_{kind}_{v}"
            names = [k.name for k in store.keys if getattr(k, attr) == v]
            out.append(f"\nmap $slm_key_name ${var} {{\n    default \"\";\n"
                       + "".join(f"    {_exact(n)} {n};\n" for n in names) + "}\n")
            out.append(f"limit_req_zone ${var} zone={var}:1m rate={v}r/m;\n" if kind == "rpm"
                       else f"limit_conn_zone ${var} zone={var}:1m;\n")
    out.append('\nmap "$limit_conn_status|$slm_key_name" $slm_limit_message {\n'
               '    default "Rate limit reached for this API key.";\n')
    for k in store.keys:
        if k.concurrent:
            out.append(f'    "~^REJECTED\\|{k.name}$" "Too many simultaneous requests with API '
                       f"key '{k.name}' (limit {k.concurrent}). Retry when one finishes.\";\n")
        if k.rpm:
            out.append(f'    "~\\|{k.name}$" "Rate limit reached for API key \'{k.name}\': '
                       f'{k.rpm} requests per minute. Retry after {_retry_s(k)} s.";\n')
    out.append("}\n")
    out.append('\nmap "$limit_conn_status|$slm_key_name" $slm_limit_retry {\n'
               f"    default {CONCURRENT_RETRY_S};\n")
    out += [f'    "~\\|{k.name}$" {_retry_s(k)};\n' for k in store.keys if k.rpm]
    out.append(f'    "~^REJECTED\\|" {CONCURRENT_RETRY_S};\n}}\n')
    return "".join(out)


def render_key_limits(store: KeyStore) -> str:
    """https server level. ``limit_*`` and ``error_page`` are inherited only by locations that
    set none of their own, so these stay at server level next to the other error pages."""
    out = [HEADER, "limit_req_status 429;\nlimit_conn_status 429;\nlimit_req_log_level warn;\n"
           "limit_conn_log_level warn;\n"]
    for v in sorted({k.rpm for k in store.keys if k.rpm}):
        out.append(f"limit_req zone=slm_rpm_{v} burst={v - 1} nodelay;\n" if v > 1
                   else f"limit_req zone=slm_rpm_{v} nodelay;\n")
    for v in sorted({k.concurrent for k in store.keys if k.concurrent}):
        out.append(f"limit_conn slm_conn_{v} {v};\n")
    body = ('{"error":{"message":"$slm_limit_message","type":"requests","param":null,'
            '"code":"rate_limit_exceeded"}}')
    out.append(f"error_page 429 = {LIMITED};\n\nlocation {LIMITED} {{\n"
               "    default_type application/json;\n"
               "    add_header Retry-After $slm_limit_retry always;\n"
               f"    return 429 '{body}\\n';\n}}\n")
    return "".join(out)
