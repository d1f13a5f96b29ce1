"""OpenNebula context (ONEAPP_*) -> the same answers mapping the YAML file gives.

Names have four underscore-separated segments, as FireEdge groups user inputs by them. An empty
value means "not set" (Sunstone sends empty user inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.answers.schema import Answers, parse
from appliance.errors import AnswersError, FieldError

PREFIX = "ONEAPP_SLM_"

# env var -> (dotted answers field, kind, description for ONE_SERVICE_PARAMS)
PARAMS: dict[str, tuple[str, str, str]] = {
    "ONEAPP_SLM_ENGINE_NAME": ("engine", "str", "Engine: llama-server (default) or localai"),
    "ONEAPP_SLM_MODEL_ID": ("model.id", "str", "Catalog model id"),
    "ONEAPP_SLM_MODEL_PATH": ("model.path", "str", "Local GGUF file instead of a catalog model"),
    "ONEAPP_SLM_MODEL_SHA256": ("model.sha256", "str", "Expected sha256 of model path"),
    "ONEAPP_SLM_MODEL_CONTEXT": ("model.context_size", "int", "Context size in tokens (all slots)"),
    "ONEAPP_SLM_ENGINE_THREADS": ("threads", "threads", "CPU threads: auto or a number"),
    "ONEAPP_SLM_ENGINE_PARALLEL": ("parallel", "int", "Concurrent request slots"),
    "ONEAPP_SLM_API_KEY": ("api_key", "str", "API key: keep, rotate, or 32+ chars"),
    "ONEAPP_SLM_TLS_MODE": ("tls.mode", "str", "self-signed or letsencrypt"),
    "ONEAPP_SLM_TLS_DOMAIN": ("tls.domain", "str", "DNS name of this VM for Let's Encrypt"),
    "ONEAPP_SLM_TLS_EMAIL": ("tls.email", "str", "Contact e-mail for Let's Encrypt (optional)"),
    "ONEAPP_SLM_ACME_DIRECTORY": ("tls.acme_directory", "str", "ACME: production, staging, URL"),
    "ONEAPP_SLM_ACME_CABUNDLE": ("tls.acme_ca_bundle", "str", "CA file for a private ACME server"),
    "ONEAPP_SLM_TLS_ADDRESS": ("tls.public_address", "str", "Public IP the domain points to (NAT)"),
    "ONEAPP_SLM_DNS_NOCHECK": ("tls.skip_dns_check", "bool", "YES: skip the DNS pre-check"),
    "ONEAPP_SLM_LISTEN_HTTPS": ("listen.https", "str", "HTTPS listen address, e.g. 0.0.0.0:443"),
    "ONEAPP_SLM_LISTEN_HTTP": ("listen.http", "str", "HTTP listen address (ACME, redirect)"),
    "ONEAPP_SLM_LISTEN_ENGINE": ("listen.engine", "str", "Engine loopback address"),
    # cluster roles (issue 10)
    "ONEAPP_SLM_CLUSTER_ROLE": ("role", "str", "standalone, backend (publishes itself) or lb"),
    "ONEAPP_SLM_LB_BACKENDS": ("lb.backends", "str", "lb: onegate or host:port,host:port"),
    "ONEAPP_SLM_LB_BACKENDCA": ("lb.backend_ca", "str", "lb: PEM file the backends chain to"),
    "ONEAPP_SLM_LB_BALANCE": ("lb.balance", "str", "lb: leastconn (default) or roundrobin"),
}
FIELD_TO_ENV = {f: env for env, (f, _, _) in PARAMS.items()}


def env_to_mapping(env: Mapping[str, str]) -> tuple[dict[str, Any], list[FieldError]]:
    data: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name, raw in env.items():
        if not name.startswith(PREFIX):
            continue
        if name not in PARAMS:
            errors.append(FieldError(name, "unknown context variable",
                                     f"known: {', '.join(sorted(PARAMS))}"))
            continue
        value = raw.strip()
        if not value:
            continue
        dotted, kind, _ = PARAMS[name]
        converted: Any = value
        if kind == "bool":
            if value.upper() not in ("YES", "NO", "TRUE", "FALSE"):
                errors.append(FieldError(f"{name} ({dotted})", f"{value!r} is not YES or NO",
                                         "use YES or NO"))
                continue
            converted = value.upper() in ("YES", "TRUE")
        elif kind == "int" or (kind == "threads" and value != "auto"):
            try:
                converted = int(value)
            except ValueError:
                fix = "use digits only" + (" or auto" if kind == "threads" else "")
                errors.append(FieldError(f"{name} ({dotted})", f"{value!r} is not a whole number",
                                         fix))
                continue
        section, _, key = dotted.partition(".")
        if key:
            data.setdefault(section, {})[key] = converted
        else:
            data[section] = converted
    return data, errors


def answers_from_env(env: Mapping[str, str], base: Answers) -> Answers:
    data, errors = env_to_mapping(env)
    try:
        answers = parse(data, "context", base)
    except AnswersError as exc:
        errors += [FieldError(f"{FIELD_TO_ENV[e.field]} ({e.field})" if e.field in FIELD_TO_ENV
                              else e.field, e.message, e.fix) for e in exc.errors]
        raise AnswersError(errors, "context") from None
    if errors:
        raise AnswersError(errors, "context")
    return answers
