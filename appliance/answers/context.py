"""OpenNebula context (ONEAPP_*) -> the same answers mapping the YAML file gives.

Names have four underscore-separated segments, as FireEdge groups user inputs by them. An empty
value means "not set" (Sunstone sends empty user inputs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appliance.answers.schema import Answers, parse
from appliance.errors import AnswersError, FieldError

PREFIX = "ONEAPP_SLM_"
RULE = ("Context is a change: at boot a ONEAPP_SLM_* value is applied only when it differs from "
        "the one applied from context last time, so changes made in the wizard or with "
        "'wizard --apply' persist until that variable is edited in the VM's context.")

@dataclass(frozen=True)
class Param:
    """One context variable: where it lands in the answers, how its text is read, what
    ``service help`` and the instantiate dialog say, and the dialog's input type (``O|list``
    etc.; empty = not offered in the dialog, still read from context)."""

    field: str
    kind: str  # str | int | threads | bool
    description: str
    offer: str = ""


# The one list of ONEAPP_* variables: the listing, ONE_SERVICE_PARAMS, `service help` and the
# report are generated from it or checked against it (appliance/answers/listing.py, tests).
PARAMS: dict[str, Param] = {
    "ONEAPP_SLM_MODEL_ID": Param("model.id", "str", "Model from the catalog (empty = keep)",
                                 "O|list"),
    "ONEAPP_SLM_MODEL_PATH": Param("model.path", "str",
                                   "Local GGUF file instead of a catalog model", "O|text"),
    "ONEAPP_SLM_MODEL_SHA256": Param("model.sha256", "str", "Expected sha256 of the model path"),
    "ONEAPP_SLM_MODEL_CONTEXT": Param("model.context_size", "int",
                                      "Context size in tokens, all slots (empty = keep)",
                                      "O|number"),
    "ONEAPP_SLM_ENGINE_NAME": Param("engine", "str", "Inference engine (empty = keep)", "O|list"),
    "ONEAPP_SLM_ENGINE_THREADS": Param("threads", "threads",
                                       "CPU threads: auto or a number (empty = keep)", "O|text"),
    "ONEAPP_SLM_ENGINE_PARALLEL": Param("parallel", "int",
                                        "Concurrent request slots (empty = keep)", "O|number"),
    "ONEAPP_SLM_API_KEY": Param("api_key", "str",
                                "API key: 32+ characters or rotate (empty = keep)", "O|password"),
    "ONEAPP_SLM_TLS_MODE": Param("tls.mode", "str", "TLS certificate (empty = keep)", "O|list"),
    "ONEAPP_SLM_TLS_DOMAIN": Param("tls.domain", "str",
                                   "Domain for Lets Encrypt (resolves here, port 80 open)",
                                   "O|text"),
    "ONEAPP_SLM_TLS_EMAIL": Param("tls.email", "str", "Contact e-mail for Lets Encrypt",
                                  "O|text"),
    "ONEAPP_SLM_ACME_DIRECTORY": Param("tls.acme_directory", "str",
                                       "ACME directory: production, staging or a URL", "O|text"),
    "ONEAPP_SLM_ACME_CABUNDLE": Param("tls.acme_ca_bundle", "str",
                                      "CA file for a private ACME server"),
    "ONEAPP_SLM_TLS_ADDRESS": Param("tls.public_address", "str",
                                    "Public IP the domain points to (behind NAT)", "O|text"),
    "ONEAPP_SLM_DNS_NOCHECK": Param("tls.skip_dns_check", "bool",
                                    "Skip the DNS pre-check for Lets Encrypt", "O|boolean"),
    "ONEAPP_SLM_LISTEN_HTTPS": Param("listen.https", "str", "HTTPS listen address"),
    "ONEAPP_SLM_LISTEN_HTTP": Param("listen.http", "str",
                                    "HTTP listen address (ACME challenges, redirect)"),
    "ONEAPP_SLM_LISTEN_ENGINE": Param("listen.engine", "str", "Engine loopback address"),
    # cluster roles (issue 10): set per role by the OneFlow service template, not offered
    "ONEAPP_SLM_CLUSTER_ROLE": Param("role", "str",
                                     "standalone, backend (publishes itself) or lb"),
    "ONEAPP_SLM_LB_BACKENDS": Param("lb.backends", "str", "lb: onegate or host:port,host:port"),
    "ONEAPP_SLM_LB_BACKENDCA": Param("lb.backend_ca", "str",
                                     "lb: PEM file the backend certificates chain to"),
    "ONEAPP_SLM_LB_BALANCE": Param("lb.balance", "str", "lb: leastconn (default) or roundrobin"),
}
FIELD_TO_ENV = {p.field: env for env, p in PARAMS.items()}


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
        dotted, kind = PARAMS[name].field, PARAMS[name].kind
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


def context_view(answers: Answers) -> list[tuple[str, str]]:
    """Every ONEAPP_* variable with the value in force, as context would spell it (the report
    shows them; the API key is never shown)."""
    data = answers.to_dict()
    out = []
    for env, p in PARAMS.items():
        section, _, key = p.field.partition(".")
        value = (data[section] or {}).get(key) if key else data[section]  # no lb: None
        if isinstance(value, list):  # lb.backends: as ONEAPP_SLM_LB_BACKENDS spells it
            value = ",".join(value)
        if env == "ONEAPP_SLM_API_KEY":
            value = "(secret: see api_key_file)"
        elif isinstance(value, bool):
            value = "YES" if value else "NO"
        out.append((env, "" if value is None else str(value)))
    return out
