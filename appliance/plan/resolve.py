"""Check answers against this machine and resolve them into concrete settings.

Everything an apply needs to know before touching a file: the model file and its GGUF header,
a verified sha256, the thread count, the chat template. Errors name the field and the fix.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from appliance.answers.catalog import SLOT_BYTES, CatalogModel, estimate_memory, load_catalog
from appliance.answers.schema import Answers
from appliance.errors import AnswersError, FieldError, GGUFError
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.keys.store import CONTEXT_KEY_NOTE
from appliance.plan.gguf import GGUFInfo, read_info

# llama.cpp built-in templates for architectures whose GGUF may lack one.
BUILTIN_TEMPLATES = {"gemma": "gemma", "gemma2": "gemma", "gemma3": "gemma", "phi3": "phi3",
                     "llama": "chatml", "qwen2": "chatml"}


@dataclass(frozen=True)
class Resolved:
    answers: Answers
    model_id: str
    model_path: str
    """Appliance path of the GGUF (mapped with the layout when used)."""
    gguf: GGUFInfo
    sha256: str | None
    """Verified digest of the model file (None when nothing to verify against)."""
    threads: int
    chat_template: str | None
    """None: the GGUF's own (Jinja) template; else a llama.cpp built-in name."""
    memory_estimate: int
    catalog: CatalogModel | None
    warnings: list[str] = field(default_factory=list)


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def stamp_key(path: Path) -> str:
    st = path.stat()
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


def verified_sha256(path: Path, stamps: dict[str, str]) -> str:
    """sha256 of ``path``, reusing a stamp keyed by (size, mtime) from the last apply's state,
    so a 2 GB model is hashed once, not at every boot. Resolving writes nothing."""
    return stamps.get(stamp_key(path)) or sha256_file(path)


def resolve(answers: Answers, facts: Facts, site: Site, layout: Layout,
            source: str = "answers", stamps: dict[str, str] | None = None) -> Resolved:
    errors: list[FieldError] = []
    warnings: list[str] = []
    if answers.tls.mode != "letsencrypt" and answers.tls.domain:
        # A domain only means something for Let's Encrypt: self-signed forgets it, so nothing
        # advertises or keeps a name this VM has no certificate for.
        answers = answers.replace(tls=replace(answers.tls, domain=None))
    catalog = load_catalog()
    m = answers.model
    entry = catalog.get(m.id) if m.id else None
    where = "model.path" if m.path else "model.id"
    if m.path:
        model_path = m.path
    elif entry:
        model_path = f"{layout.models_dir}/{entry.file}"
    else:
        errors.append(FieldError("model.id", f"{m.id!r} is not in the catalog",
                                 f"use one of: {', '.join(catalog)}; or set model.path"))
        raise AnswersError(errors, source)
    model_id = m.id or _id_from_file(model_path)
    real = layout.map(model_path)

    info: GGUFInfo | None = None
    digest: str | None = None
    if not real.is_file():
        fix = (f"download it from {entry.url} into {layout.models_dir}" if entry and not m.path
               else "give the path of an existing GGUF file")
        errors.append(FieldError(where, f"model file {model_path} does not exist", fix))
    elif not os.access(real, os.R_OK):
        errors.append(FieldError(where, f"model file {model_path} is not readable",
                                 "fix its permissions (0644)"))
    else:
        try:
            info = read_info(real)
        except GGUFError as exc:
            errors.append(FieldError(where, f"{model_path} is not a usable GGUF: {exc}",
                                     "point to a complete .gguf file"))
        expected = m.sha256 or (entry.sha256 if entry and real.name == entry.file else None)
        if expected and info:
            digest = verified_sha256(real, stamps or {})
            if digest != expected:
                errors.append(FieldError(
                    "model.sha256", f"{model_path} has sha256 {digest[:16]}..., expected "
                    f"{expected[:16]}...", "the file is corrupt or a different build: download "
                    "it again, or correct model.sha256"))

    trained = (info.context_length if info else None) or (entry.trained_context if entry else None)
    if trained and m.context_size > trained:
        errors.append(FieldError("model.context_size", f"{m.context_size} exceeds the model's "
                                 f"trained context {trained}", f"use at most {trained}"))

    if answers.threads == "auto":
        threads = facts.auto_threads()
    else:
        threads = int(answers.threads)
        if threads > facts.logical_cpus:
            errors.append(FieldError("threads", f"{threads} threads but this VM has "
                                     f"{facts.logical_cpus} CPUs",
                                     f"use 'auto' or at most {facts.logical_cpus}"))

    kv = (info.kv_bytes_per_token if info else None) or (entry.kv_bytes_per_token if entry else 0)
    size = real.stat().st_size if real.is_file() else (entry.size if entry else 0)
    memory = estimate_memory(size, kv or 0, m.context_size, answers.parallel)
    single = estimate_memory(size, kv or 0, m.context_size)
    if facts.mem_total and single <= facts.mem_total < memory:
        fits = 1 + (facts.mem_total - single) // SLOT_BYTES
        errors.append(FieldError("parallel", f"{answers.parallel} request slots need about "
                                 f"{memory >> 20} MiB of RAM, this VM has "
                                 f"{facts.mem_total >> 20} MiB", f"use at most {fits}"))
    elif facts.mem_total and memory > facts.mem_total:
        errors.append(FieldError("model.context_size", f"needs about {memory >> 20} MiB of RAM, "
                                 f"this VM has {facts.mem_total >> 20} MiB",
                                 "choose a smaller context or model, or give the VM more RAM"))
    elif facts.mem_total and memory > facts.mem_total * 0.8:
        warnings.append(f"the model needs about {memory >> 20} MiB of {facts.mem_total >> 20} "
                        "MiB RAM; little is left for the page cache")
    if facts.cpu_flags and not facts.has_avx2:
        warnings.append("this CPU does not report AVX2: generation will be slow; use the "
                        "host-passthrough CPU model in the VM template")

    engine_bin = site.llama_server_bin if answers.engine == "llama-server" else site.localai_bin
    if not Path(engine_bin).is_file():
        errors.append(FieldError("engine", f"{answers.engine} is not installed ({engine_bin} "
                                 "missing)", "install it or choose the other engine"))
    if answers.engine == "localai" and not model_path.startswith(layout.models_dir + "/"):
        errors.append(FieldError("model.path", f"LocalAI loads models from {layout.models_dir} "
                                 "only", f"copy the file into {layout.models_dir}"))
    if answers.tls.acme_ca_bundle and not layout.map(answers.tls.acme_ca_bundle).is_file():
        errors.append(FieldError("tls.acme_ca_bundle", f"{answers.tls.acme_ca_bundle} does not "
                                 "exist", "give the path of a PEM CA file or remove the key"))
    if errors or info is None:
        raise AnswersError(errors, source)

    template = None
    if not info.chat_template:
        template = (entry.chat_template if entry and entry.chat_template
                    else BUILTIN_TEMPLATES.get(info.architecture, "chatml"))
        warnings.append(f"{model_id} has no chat template; using llama.cpp's '{template}'")
    if source == "context" and answers.api_key not in ("keep", "rotate"):
        warnings.append(CONTEXT_KEY_NOTE)
    return Resolved(answers=answers, model_id=model_id, model_path=model_path, gguf=info,
                    sha256=digest, threads=threads, chat_template=template,
                    memory_estimate=memory, catalog=entry, warnings=warnings)


def _id_from_file(path: str) -> str:
    stem = Path(path).name.removesuffix(".gguf").lower()
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem).strip("-.")
    return (cleaned or "model")[:64]
