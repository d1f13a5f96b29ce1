"""The one-apps report file and the login banner: what an operator needs, no secrets."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.keys.store import CONTEXT_KEY_NOTE
from appliance.plan.engines import ENGINE_UNITS
from appliance.plan.render import MANAGED_BY


@dataclass(frozen=True)
class ReportInputs:
    endpoint: str
    api_key_file: str
    ca_file: str | None
    model_id: str
    engine: str
    threads: int
    context_size: int
    parallel: int
    tls_mode: str
    tls_domain: str | None
    tls_not_after: str
    memory_estimate_mib: int
    warnings: tuple[str, ...] = ()
    acme_last_error: str | None = None
    acme_next_attempt: str | None = None
    acme_last_renewal: str | None = None
    named_keys: tuple[str, ...] = ()
    """Names only: the report never holds a secret."""
    context: tuple[tuple[str, str], ...] = ()
    """Every ONEAPP_* variable and the value in force (context.context_view)."""
    context_rule: str = ""


def curl_example(endpoint: str, key_file: str, ca_file: str | None, model: str,
                 sudo: bool = True) -> str:
    ca = f"--cacert {ca_file} " if ca_file else ""
    cat = "sudo cat" if sudo else "cat"
    return (f'curl {ca}{endpoint}/chat/completions -H "Authorization: Bearer '
            f'$({cat} {key_file})" -H "Content-Type: application/json" '
            f'-d \'{{"model":"{model}","max_tokens":64,'
            f'"messages":[{{"role":"user","content":"Say hello"}}]}}\'')


def render_report(i: ReportInputs) -> str:
    warnings = "".join(f"warning_{n} = {w}\n" for n, w in enumerate(i.warnings, 1))
    context = "".join(f"{k} = {v}\n" for k, v in i.context)
    return f"""{MANAGED_BY}.
[Connection info]
endpoint = {i.endpoint}
api_key_file = {i.api_key_file}
ca_file = {i.ca_file or "(publicly trusted certificate)"}
model = {i.model_id}

[Model]
engine = {i.engine}
model = {i.model_id}
context_size = {i.context_size}
threads = {i.threads}
parallel = {i.parallel}
memory_estimate_mib = {i.memory_estimate_mib}

[TLS]
mode = {i.tls_mode}
domain = {i.tls_domain or ""}
not_after = {i.tls_not_after}
last_renewal = {i.acme_last_renewal or ""}
last_error = {i.acme_last_error or ""}
next_attempt = {i.acme_next_attempt or ""}

[API keys]
default = the key in api_key_file
named = {", ".join(i.named_keys) or "(none)"}
add = sudo wizard key add NAME [--rpm N] [--concurrent N] [--expires YYYY-MM-DD]
manage = sudo wizard key list | revoke NAME | rotate NAME; sudo wizard usage
note = {CONTEXT_KEY_NOTE}

[Test with curl]
command = {curl_example(i.endpoint, i.api_key_file, i.ca_file, i.model_id)}

[Context]
rule = {i.context_rule}
{context}{"" if not warnings else chr(10) + "[Warnings]" + chr(10) + warnings}"""


def render_banner(report_file: str, api_key_file: str, endpoint: str, model_id: str,
                  tls_mode: str, wizard: str, root: str, done_marker: str) -> str:
    """Interactive shells only; /etc/motd belongs to the one-apps framework. Root's first
    interactive login starts the wizard until it has been completed once."""
    return f"""{MANAGED_BY}: login status banner.
case $- in *i*) ;; *) return 0 2>/dev/null || exit 0 ;; esac
[ -t 1 ] || return 0 2>/dev/null || exit 0
_slm_state=$(systemctl is-active {" ".join(ENGINE_UNITS)} 2>/dev/null \\
  | grep -m1 -x active || echo "not running")
printf '\\n  SLM appliance  %s\\n' "OpenAI-compatible API"
printf '  endpoint : %s\\n' "{endpoint}"
printf '  model    : %s   TLS: %s   engine: %s\\n' "{model_id}" "{tls_mode}" "$_slm_state"
printf '  API key  : sudo cat {api_key_file}\\n'
printf '  details  : sudo cat {report_file}    reconfigure: sudo wizard\\n\\n'
unset _slm_state
if [ "$(id -u)" = 0 ] && [ -t 0 ] && [ ! -e {done_marker} ] && [ -x {wizard} ]; then
  {wizard} --root {root} --first-boot
fi
"""
