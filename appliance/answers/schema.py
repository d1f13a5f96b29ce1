"""The answers model (schema version 1): one schema for YAML files, ONEAPP_* context and the TUI.

``parse`` turns a plain mapping into :class:`Answers`, collecting every problem at once
(types, ranges, unknown keys, conflicts) as :class:`FieldError` s that name the field and the
fix. Checks that need the machine (model file, cores, memory) live in ``appliance.validate``.
Unanswered keys take the defaults below, so partial answers files are fine.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import yaml

from appliance.answers.hostport import split_hostport
from appliance.errors import AnswersError, FieldError

VERSION = 1


ENGINES = ("llama-server", "localai")


TLS_MODES = ("self-signed", "letsencrypt")


ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


KEY_RE = re.compile(r"^[A-Za-z0-9_\-]{32,256}$")


SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?!-)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)


EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


ACME_SHORTCUTS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}


MIN_CONTEXT, MAX_CONTEXT = 256, 131072


MAX_PARALLEL = 16


MIN_SLOT_CONTEXT = 256


@dataclass(frozen=True)
class ModelAnswers:
    id: str | None = "phi-3-mini-4k-instruct-q4"
    """Catalog id (also the API model name); derived from the file name when only path is given."""
    path: str | None = None
    """A local GGUF file; default: the catalog file in the models folder."""
    context_size: int = 4096
    """Total context across slots; must not exceed the model's trained context."""
    sha256: str | None = None
    """Expected sha256 of the file (catalog models have their own)."""


@dataclass(frozen=True)
class TLSAnswers:
    mode: str = "self-signed"
    domain: str | None = None
    email: str | None = None
    acme_directory: str = ACME_SHORTCUTS["production"]
    acme_ca_bundle: str | None = None
    public_address: str | None = None
    """The address the domain must resolve to when the VM is behind NAT."""
    skip_dns_check: bool = False
    """Order even if the domain does not resolve to this VM (the CA still has to reach it)."""


@dataclass(frozen=True)
class ListenAnswers:
    https: str = "0.0.0.0:443"
    http: str = "0.0.0.0:80"
    engine: str = "127.0.0.1:8080"


# -- cluster roles (issue 10): a separate block, checked by _check_role --------------------
ROLES = ("standalone", "backend", "lb")
BALANCES = ("leastconn", "roundrobin")
ONEGATE = "onegate"


@dataclass(frozen=True)
class LBAnswers:
    """Only with ``role: lb``. ``backends``: ``onegate`` (discovered) or ``host:port`` list."""

    backends: str | list[str] = ONEGATE
    backend_ca: str | None = None
    """PEM bundle (a path, or the PEM itself) the LB trusts for backends; required for a list."""
    balance: str = "leastconn"


@dataclass(frozen=True)
class Answers:
    version: int = VERSION
    engine: str = "llama-server"
    model: ModelAnswers = field(default_factory=ModelAnswers)
    threads: int | str = "auto"
    parallel: int = 1
    api_key: str = "keep"
    tls: TLSAnswers = field(default_factory=TLSAnswers)
    listen: ListenAnswers = field(default_factory=ListenAnswers)
    role: str = "standalone"
    lb: LBAnswers | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, redact_key: bool = True) -> str:
        data = self.to_dict()
        if data["lb"] is None:
            del data["lb"]
        if redact_key and data["api_key"] not in ("keep", "rotate"):
            data["api_key"] = "keep"  # never write an explicit key into a replayable file
        return "# slm-appliance answers (schema version 1)\n" + yaml.safe_dump(
            data, sort_keys=False
        )

    def replace(self, **changes: Any) -> Answers:
        return replace(self, **changes)


SECTIONS: dict[str, type] = {"model": ModelAnswers, "tls": TLSAnswers, "listen": ListenAnswers}


TOP_KEYS = ("version", "engine", "model", "threads", "parallel", "api_key", "tls", "listen",
            "role", "lb")


def _suggest(key: str, allowed: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"{hint}allowed keys: {', '.join(allowed)}"


def _int(errors: list[FieldError], name: str, value: Any, lo: int, hi: int, fix: str) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, f"must be a whole number, got {value!r}", fix))
        return None
    if not lo <= value <= hi:
        errors.append(FieldError(name, f"{value} is out of range {lo}-{hi}", fix))
        return None
    return value


def _str(errors: list[FieldError], name: str, value: Any, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(name, f"must be a non-empty string, got {value!r}", ""))
        return None
    return value.strip()


def load_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML text into a mapping, or raise AnswersError (malformed, empty, not a mapping)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise AnswersError(
            [FieldError("(file)", f"malformed YAML{where}: {problem}", "fix the YAML syntax")],
            source,
        ) from None
    if data is None:
        raise AnswersError(
            [FieldError("(file)", "the file is empty", "write at least 'version: 1'")], source
        )
    if not isinstance(data, dict):
        raise AnswersError(
            [FieldError("(file)", f"expected a mapping of keys, got {type(data).__name__}",
                        "start with 'version: 1' and key: value lines")],
            source,
        )
    return data


def parse(data: Mapping[str, Any], source: str = "answers", base: Answers | None = None) -> Answers:
    """Validate a mapping against schema v1 and fill defaults from ``base``; all errors at once."""
    base = base or Answers()
    errors: list[FieldError] = []
    for key in data:
        if key not in TOP_KEYS:
            errors.append(FieldError(str(key), "unknown key", _suggest(str(key), TOP_KEYS)))

    version = data.get("version", VERSION)
    if version != VERSION:
        errors.append(FieldError("version", f"unsupported schema version {version!r}",
                                 f"use version: {VERSION}"))

    engine = data.get("engine", base.engine)
    if engine not in ENGINES:
        errors.append(FieldError("engine", f"unknown engine {engine!r}",
                                 f"use one of: {', '.join(ENGINES)}"))

    sections: dict[str, Any] = {}
    for name in SECTIONS:
        raw = data.get(name, {})
        current = getattr(base, name)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            errors.append(FieldError(name, f"must be a mapping, got {type(raw).__name__}",
                                     f"write '{name}:' followed by indented keys"))
            sections[name] = current
            continue
        allowed = tuple(current.__dataclass_fields__)
        for key in raw:
            if key not in allowed:
                errors.append(FieldError(f"{name}.{key}", "unknown key",
                                         _suggest(str(key), allowed)))
        values = {k: raw[k] for k in allowed if k in raw}
        sections[name] = replace(current, **values)

    model: ModelAnswers = sections["model"]
    raw_model: dict[str, Any] = data["model"] if isinstance(data.get("model"), dict) else {}
    model_id = model.id
    if "path" in raw_model and "id" not in raw_model:
        model_id = None  # a path alone names its own model
    if "id" in raw_model and "path" not in raw_model:
        # a new catalog id must not inherit the file of the base answers
        model = replace(model, path=None, sha256=raw_model.get("sha256"))
    if model_id is not None and (not isinstance(model_id, str) or not ID_RE.match(model_id)):
        errors.append(FieldError("model.id", f"invalid model id {model_id!r}",
                                 "use lowercase letters, digits, '.', '_' or '-' (no '/' or '..')"))
    path = _str(errors, "model.path", model.path)
    if path is not None and not path.startswith("/"):
        errors.append(FieldError("model.path", f"{path!r} is not an absolute path",
                                 "give the full path, e.g. /opt/slm-appliance/models/x.gguf"))
    if path is None and model_id is None:
        errors.append(FieldError("model", "neither id nor path is set",
                                 "set model.id to a catalog id or model.path to a GGUF file"))
    ctx = _int(errors, "model.context_size", model.context_size, MIN_CONTEXT, MAX_CONTEXT,
               "use e.g. 4096 (must not exceed the model's trained context)")
    sha = model.sha256
    if sha is not None and (not isinstance(sha, str) or not SHA256_RE.match(sha.lower())):
        errors.append(FieldError("model.sha256", "must be 64 hexadecimal characters",
                                 "copy the sha256 from the model's download page"))
    model = ModelAnswers(id=model_id, path=path, context_size=ctx or model.context_size,
                         sha256=sha.lower() if isinstance(sha, str) else None)

    threads = data.get("threads", base.threads)
    if threads != "auto":
        threads = _int(errors, "threads", threads, 1, 1024,
                       "use 'auto' or a whole number of threads >= 1") or base.threads
    parallel = _int(errors, "parallel", data.get("parallel", base.parallel), 1, MAX_PARALLEL,
                    f"use 1-{MAX_PARALLEL} concurrent request slots") or base.parallel
    if ctx and parallel and ctx // parallel < MIN_SLOT_CONTEXT:
        errors.append(FieldError(
            "parallel", f"{parallel} slots leave {ctx // parallel} tokens of context each",
            f"lower parallel or raise model.context_size (each slot needs >= {MIN_SLOT_CONTEXT})"))

    api_key = data.get("api_key", base.api_key)
    if not isinstance(api_key, str):
        errors.append(FieldError("api_key", f"must be a string, got {api_key!r}",
                                 "use keep, rotate, or a key of 32+ characters [A-Za-z0-9_-]"))
        api_key = base.api_key
    elif api_key not in ("keep", "rotate") and not KEY_RE.match(api_key):
        errors.append(FieldError("api_key", "an explicit key must be 32-256 characters of "
                                 "A-Z a-z 0-9 _ -", "use keep (generated once) or a longer key"))

    tls: TLSAnswers = sections["tls"]
    tls = _check_tls(errors, tls)
    listen: ListenAnswers = sections["listen"]
    _check_listen(errors, listen)
    role, lb = _check_role(errors, data, base)

    if errors:
        raise AnswersError(errors, source)
    return Answers(version=VERSION, engine=str(engine), model=model, threads=threads,
                   parallel=parallel, api_key=api_key, tls=tls, listen=listen, role=role, lb=lb)


def _check_tls(errors: list[FieldError], tls: TLSAnswers) -> TLSAnswers:
    if tls.mode not in TLS_MODES:
        errors.append(FieldError("tls.mode", f"unknown mode {tls.mode!r}",
                                 f"use one of: {', '.join(TLS_MODES)}"))
    domain = _str(errors, "tls.domain", tls.domain)
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
    email = _str(errors, "tls.email", tls.email)
    if email is not None and not EMAIL_RE.match(email):
        errors.append(FieldError("tls.email", f"{email!r} is not an e-mail address",
                                 "use name@example.com or leave it empty"))
    directory = _str(errors, "tls.acme_directory", tls.acme_directory, optional=False) or ""
    directory = ACME_SHORTCUTS.get(directory, directory)
    if directory and not directory.startswith("https://"):
        errors.append(FieldError("tls.acme_directory", "must be an https:// URL",
                                 "use 'production', 'staging' or the directory URL"))
    bundle = _str(errors, "tls.acme_ca_bundle", tls.acme_ca_bundle)
    public = _str(errors, "tls.public_address", tls.public_address)
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


def _check_listen(errors: list[FieldError], listen: ListenAnswers) -> None:
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


def _check_role(errors: list[FieldError], data: Mapping[str, Any],
                base: Answers) -> tuple[str, LBAnswers | None]:
    """``role`` and its ``lb`` section: lb only with role lb; a static list needs its CA."""
    role = data.get("role", base.role)
    if role not in ROLES:
        errors.append(FieldError("role", f"unknown role {role!r}",
                                 f"use one of: {', '.join(ROLES)}"))
        return base.role, base.lb
    raw = data.get("lb")
    if role != "lb":
        if raw is not None:
            errors.append(FieldError("lb", f"only with role: lb (role is {role})",
                                     "remove the lb section or set role: lb"))
        return str(role), None
    current = base.lb if base.role == "lb" and base.lb is not None else LBAnswers()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        errors.append(FieldError("lb", f"must be a mapping, got {type(raw).__name__}",
                                 "write 'lb:' followed by indented keys"))
        return "lb", current
    allowed = tuple(LBAnswers.__dataclass_fields__)
    for key in raw:
        if key not in allowed:
            errors.append(FieldError(f"lb.{key}", "unknown key", _suggest(str(key), allowed)))
    lb = replace(current, **{k: raw[k] for k in allowed if k in raw})
    backends: str | list[str] = lb.backends
    if isinstance(backends, str) and backends != ONEGATE:
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    if isinstance(backends, list):
        if not backends:
            errors.append(FieldError("lb.backends", "the list is empty",
                                     "list each backend as host:port, or use onegate"))
        for n, item in enumerate(backends):
            if not _backend_address(str(item)):
                errors.append(FieldError(f"lb.backends[{n}]", f"{item!r} is not HOST:PORT",
                                         "write the IP (or DNS name) and port of a backend's "
                                         "https listener, e.g. 10.0.1.5:443"))
        if len(set(map(str, backends))) != len(backends):
            errors.append(FieldError("lb.backends", "a backend is listed twice",
                                     "list each backend once"))
        backends = [str(b) for b in backends]
    elif backends != ONEGATE:
        errors.append(FieldError("lb.backends", f"must be onegate or a list, got {backends!r}",
                                 "use onegate or a list of host:port"))
    ca = _str(errors, "lb.backend_ca", lb.backend_ca)
    if isinstance(backends, list) and ca is None:
        errors.append(FieldError("lb.backend_ca", "a static backend list needs the CA the "
                                 "backends' certificates chain to (no hop goes unverified)",
                                 "set lb.backend_ca to a PEM file with the backends' "
                                 "certificates (their /etc/slm-appliance/tls/selfsigned.crt)"))
    if lb.balance not in BALANCES:
        errors.append(FieldError("lb.balance", f"unknown balance {lb.balance!r}",
                                 f"use one of: {', '.join(BALANCES)}"))
    return "lb", LBAnswers(backends=backends, backend_ca=ca, balance=str(lb.balance))


def _backend_address(value: str) -> bool:
    try:
        split_hostport(value)
        return True
    except ValueError:
        host, _, port = value.rpartition(":")
        return bool(re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,252})", host)) and \
            port.isdigit() and 0 < int(port) < 65536
