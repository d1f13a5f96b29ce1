"""The answers' sections and limits: plain data, checked by ``checks`` and sealed by ``schema``."""

from __future__ import annotations

from dataclasses import dataclass

ENGINES = ("llama-server", "localai")
TLS_MODES = ("self-signed", "letsencrypt")
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
    """Lower case, no trailing dot: the certificate folder is named after it."""
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


