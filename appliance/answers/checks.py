"""The per-field checks ``parse`` runs: each appends FieldErrors (field, problem, fix) and
returns the normalised value, so every problem of an answers mapping is reported at once."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import re
from typing import Any, TypeVar

from appliance.answers.hostport import split_hostport
from appliance.answers.sections import (
    ACME_SHORTCUTS,
    MAX_CONTEXT,
    MIN_CONTEXT,
    MIN_SLOT_CONTEXT,
    TLS_MODES,
    ListenAnswers,
    ModelAnswers,
    TLSAnswers,
)
from appliance.errors import FieldError

ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{32,256}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?!-)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Errors = list[FieldError]
S = TypeVar("S")


def suggest(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}allowed keys: {', '.join(allowed)}"


def whole(errors: Errors, name: str, value: Any, lo: int, hi: int, fix: str) -> int | None:
    """A whole number in [lo, hi]; digits as text (a form field) count too."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, f"must be a whole number, got {value!r}", fix))
        return None
    if not lo <= value <= hi:
        errors.append(FieldError(name, f"{value} is out of range {lo}-{hi}", fix))
        return None
    return value


def text(errors: Errors, name: str, value: Any, optional: bool = True) -> str | None:
    """Stripped text; for an optional field, None or empty text means "not set"."""
    if optional and (value is None or (isinstance(value, str) and not value.strip())):
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(name, f"must be a non-empty string, got {value!r}",
                                 "write a value"))
        return None
    return value.strip()


def merge_section(errors: Errors, name: str, raw: Any, current: S) -> S:
    """The base section with the answered keys of ``raw`` put over it (unknown keys refused)."""
    if raw is None:
        return current
    if not isinstance(raw, dict):
        errors.append(FieldError(name, f"must be a mapping, got {type(raw).__name__}",
                                 f"write '{name}:' followed by indented keys"))
        return current
    allowed = tuple(f.name for f in dataclasses.fields(current))  # type: ignore[arg-type]
    for key in raw:
        if key not in allowed:
            errors.append(FieldError(f"{name}.{key}", "unknown key", suggest(str(key), allowed)))
    return dataclasses.replace(current, **{k: raw[k] for k in allowed if k in raw})  # type: ignore[type-var]


def check_model(errors: Errors, model: ModelAnswers, raw: dict[str, Any]) -> ModelAnswers:
    model_id = model.id
    if "path" in raw and "id" not in raw:
        model_id = None  # a path alone names its own model
    sha: Any = model.sha256
    path: Any = model.path
    if "id" in raw and "path" not in raw:
        # a new catalog id must not inherit the file of the base answers
        path, sha = None, raw.get("sha256")
    if model_id is not None and (not isinstance(model_id, str) or not ID_RE.match(model_id)):
        errors.append(FieldError("model.id", f"invalid model id {model_id!r}",
                                 "use lowercase letters, digits, '.', '_' or '-' (no '/' or '..')"))
    path = text(errors, "model.path", path)
    if path is not None and not path.startswith("/"):
        errors.append(FieldError("model.path", f"{path!r} is not an absolute path",
                                 "give the full path, e.g. /opt/slm-appliance/models/x.gguf"))
    if path is None and model_id is None:
        errors.append(FieldError("model", "neither id nor path is set",
                                 "set model.id to a catalog id or model.path to a GGUF file"))
    ctx = whole(errors, "model.context_size", model.context_size, MIN_CONTEXT, MAX_CONTEXT,
                "use e.g. 4096 (must not exceed the model's trained context)")
    sha = text(errors, "model.sha256", sha)
    if sha is not None and not SHA256_RE.match(sha.lower()):
        errors.append(FieldError("model.sha256", "must be 64 hexadecimal characters",
                                 "copy the sha256 from the model's download page"))
    return ModelAnswers(id=model_id, path=path, context_size=ctx or 0,
                        sha256=sha.lower() if sha else None)


def check_slots(errors: Errors, ctx: int, parallel: int | None) -> None:
    if ctx and parallel and ctx // parallel < MIN_SLOT_CONTEXT:
        errors.append(FieldError(
            "parallel", f"{parallel} slots leave {ctx // parallel} tokens of context each",
            f"lower parallel or raise model.context_size (each slot needs >= {MIN_SLOT_CONTEXT})"))


def check_api_key(errors: Errors, api_key: Any) -> str | None:
    if not isinstance(api_key, str):
        errors.append(FieldError("api_key", f"must be a string, got {api_key!r}",
                                 "use keep, rotate, or a key of 32+ characters [A-Za-z0-9_-]"))
        return None
    if api_key not in ("keep", "rotate") and not KEY_RE.match(api_key):
        errors.append(FieldError("api_key", "an explicit key must be 32-256 characters of "
                                 "A-Z a-z 0-9 _ -", "use keep (generated once) or a longer key"))
    return api_key


def check_tls(errors: Errors, tls: TLSAnswers) -> TLSAnswers:
    if tls.mode not in TLS_MODES:
        errors.append(FieldError("tls.mode", f"unknown mode {tls.mode!r}",
                                 f"use one of: {', '.join(TLS_MODES)}"))
    domain = text(errors, "tls.domain", tls.domain)
    if domain is not None:
        domain = domain.lower().rstrip(".")
        if "*" in domain:
            errors.append(FieldError("tls.domain", "wildcards need DNS-01, which is not supported",
                                     "give one exact name, e.g. llm.example.com"))
        elif not DOMAIN_RE.match(domain):
            errors.append(FieldError("tls.domain", f"{domain!r} is not a valid DNS name",
                                     "give a fully qualified name, e.g. llm.example.com"))
    if tls.mode == "letsencrypt" and domain is None:
        errors.append(FieldError("tls.domain", "letsencrypt needs a domain",
                                 "set tls.domain to a name that resolves to this VM"))
    email = text(errors, "tls.email", tls.email)
    if email is not None and not EMAIL_RE.match(email):
        errors.append(FieldError("tls.email", f"{email!r} is not an e-mail address",
                                 "use name@example.com or leave it empty"))
    directory = text(errors, "tls.acme_directory", tls.acme_directory, optional=False) or ""
    directory = ACME_SHORTCUTS.get(directory, directory)
    if directory and not directory.startswith("https://"):
        errors.append(FieldError("tls.acme_directory", "must be an https:// URL",
                                 "use 'production', 'staging' or the directory URL"))
    bundle = text(errors, "tls.acme_ca_bundle", tls.acme_ca_bundle)
    public = text(errors, "tls.public_address", tls.public_address)
    if public is not None:
        try:
            ipaddress.ip_address(public)
        except ValueError:
            errors.append(FieldError("tls.public_address", f"{public!r} is not an IP address",
                                     "give the public IPv4/IPv6 address the domain points to"))
    if not isinstance(tls.skip_dns_check, bool):
        errors.append(FieldError("tls.skip_dns_check", f"must be true or false, got "
                                 f"{tls.skip_dns_check!r}", "write true or false"))
    return TLSAnswers(mode=str(tls.mode), domain=domain, email=email,
                      acme_directory=directory, acme_ca_bundle=bundle, public_address=public,
                      skip_dns_check=tls.skip_dns_check is True)


def check_listen(errors: Errors, listen: ListenAnswers) -> None:
    seen: dict[int, str] = {}
    for name in ("https", "http", "engine"):
        value = getattr(listen, name)
        if not isinstance(value, str):
            errors.append(FieldError(f"listen.{name}", f"must be a string, got {value!r}",
                                     "write HOST:PORT, e.g. 0.0.0.0:443"))
            continue
        try:
            host, port = split_hostport(value)
        except ValueError as exc:
            errors.append(FieldError(f"listen.{name}", f"{value!r}: {exc}",
                                     "write HOST:PORT, e.g. 0.0.0.0:443 or [::]:443"))
            continue
        if name == "engine" and not ipaddress.ip_address(host).is_loopback:
            errors.append(FieldError("listen.engine", f"{host} is not a loopback address",
                                     "the engine must stay private: use 127.0.0.1:PORT"))
        if port in seen:
            errors.append(FieldError(f"listen.{name}", f"port {port} is also used by "
                                     f"listen.{seen[port]}", "give each listener its own port"))
        seen[port] = name
