"""What the wizard needs from the core, as plain data: one object per wizard run.

The TUI calls only this; every change still goes through ``apply_answers``. Tests drive the
real one against a sandbox; snapshot tests subclass it with fixed data.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.answers.catalog import fetch_model, load_catalog
from appliance.answers.schema import Answers
from appliance.answers.stored import Repaired, repaired_answers
from appliance.apply.changes import actions_for, describe, diff
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context, Event
from appliance.apply.summary import Line, summarize_plan
from appliance.apply.transaction import ApplyResult
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.state import DONE_MARKER, load_state
from appliance.plan.strategy import EngineStep, Strategy


@dataclass(frozen=True)
class ModelRow:
    id: str
    name: str
    size: int
    trained_context: int
    memory: int
    fits: bool
    on_disk: bool
    license: str


@dataclass(frozen=True)
class CpuInfo:
    model: str
    physical: int
    logical: int
    avx: bool
    avx2: bool
    avx512: bool
    mem_total: int
    disk_free: int

    @property
    def warning(self) -> str | None:
        if not self.avx2:
            return ("This CPU reports no AVX2: generation will be several times slower. Use "
                    "the host-passthrough CPU model in the VM template.")
        return None


@dataclass(frozen=True)
class Review:
    diff: str
    actions: list[str]
    files: list[str]
    warnings: list[str]
    summary: list[Line] = field(default_factory=list)
    """One plain line per change, what restarts and for how long: show these first."""
    engine: EngineStep = field(default_factory=lambda: EngineStep(Strategy.KEEP))
    """How the engine takes the change (switch with no downtime, or restart with a gap)."""

    @property
    def empty(self) -> bool:
        return not self.files and not self.actions


class Session:
    def __init__(self, layout: Layout, site: Site, facts: Facts,
                 context: Callable[[Callable[[Event], None]], Context]) -> None:
        self.layout, self.site, self.facts = layout, site, facts
        self._context = context

    # -- reading -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        from appliance.host.services import manager_for
        from appliance.status import status

        return status(self.layout, manager_for(self.site, self.layout))

    def answers(self) -> Answers:
        """Where the wizard starts: what runs now (the last applied answers over the site
        defaults), with any invalid stored value replaced by its default."""
        return self.start().answers

    def start(self) -> Repaired:
        """The starting answers and the stored values that had to be replaced (to show)."""
        return repaired_answers(self.layout, self.site)

    def cpu(self) -> CpuInfo:
        f = self.facts
        models = self.layout.map(self.layout.models_dir)
        disk = shutil.disk_usage(models if models.exists() else self.layout.root).free
        return CpuInfo(f.cpu_model or "unknown CPU", f.physical_cores, f.logical_cpus,
                       "avx" in f.cpu_flags, f.has_avx2, "avx512f" in f.cpu_flags,
                       f.mem_total, disk)

    def models(self, context_size: int) -> list[ModelRow]:
        rows = []
        for m in load_catalog().values():
            mem = m.memory_estimate(min(context_size, m.trained_context))
            on_disk = self.layout.map(f"{self.layout.models_dir}/{m.file}").is_file()
            rows.append(ModelRow(m.id, m.name, m.size, m.trained_context, mem,
                                 not self.facts.mem_total or mem <= self.facts.mem_total * 0.9,
                                 on_disk, m.license))
        return rows

    def api_key(self) -> str:
        try:
            return self.layout.map(self.layout.api_key_file).read_text().strip()
        except OSError:
            return ""

    # -- planning and applying -------------------------------------------------------------
    def review(self, answers: Answers) -> Review:
        """The exact file diff and service actions an apply would perform (raises
        AnswersError when the answers are invalid). Changes nothing."""
        from appliance.apply.run import make_plan

        ctx = self._context(lambda e: None)
        plan = make_plan(answers, ctx, "wizard")
        changes = diff(plan, self.layout)
        actions = actions_for(changes, plan, ctx.services)
        summary = summarize_plan(load_state(self.layout), plan, changes, actions)
        if answers.tls.mode == "letsencrypt":
            actions.append(f"obtain a certificate for {answers.tls.domain} (Let's Encrypt)")
        return Review(describe(changes), actions, [c.spec.path for c in changes],
                      list(plan.resolved.warnings), summary, plan.engine_step)

    def apply(self, answers: Answers, emit: Callable[[Event], None]) -> ApplyResult:
        return apply_answers(answers, self._context(emit), "wizard")

    def mark_done(self) -> None:
        marker = self.layout.map(DONE_MARKER)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()

    # -- named keys (appliance/keys): each change is an apply (nginx reload only) --------------
    def keys(self) -> list[dict[str, Any]]:
        """Every key with limits and use, ``default`` first; never a secret."""
        from appliance.keys.manage import listing

        return listing(self.layout)

    def add_key(self, name: str, rpm: int | None = None, concurrent: int | None = None,
                expires: str | None = None) -> str:
        """Add a named key; returns its secret, for the caller to show once."""
        from appliance.keys import manage

        r = manage.add(self.answers(), self._context(lambda e: None), name, rpm=rpm,
                       concurrent=concurrent, expires=expires)
        return r.secret or ""

    def revoke_key(self, name: str) -> None:
        from appliance.keys import manage

        manage.revoke(self.answers(), self._context(lambda e: None), name)

    # -- measuring ---------------------------------------------------------------------------
    def benchmark(self, on_sample: Callable[[int, Any], None], repetitions: int = 3,
                  tokens: int = 64) -> Any:
        """The same measurement as ``wizard bench``: through nginx, what clients get."""
        from appliance.perf.bench import bench_local

        return bench_local(self.layout, on_sample, repetitions=repetitions, tokens=tokens)

    def autotune(self, answers: Answers, on_result: Callable[[int, float], None]) -> Any:
        from appliance.perf.tuning import autotune

        return autotune(answers, self._context(lambda e: None), on_result=on_result)

    def dns_check(self, answers: Answers) -> list[tuple[str, bool, str]]:
        """Pre-checks for a domain, without ordering anything."""
        from appliance.errors import AcmeError
        from appliance.tls.precheck import make_resolver, precheck

        try:
            checks = precheck(answers, self.facts, self.layout, make_resolver(self.site.hosts),
                              lambda s, d: None)
        except AcmeError as exc:
            return [("pre-check", False, exc.failure.message)]
        return [(c.name, c.ok, c.detail) for c in checks]

    def download(self, model_id: str, on_progress: Callable[[Any], None]) -> Path:
        """A catalog model into the models folder (resumable, verified)."""
        return fetch_model(self.layout, self.site, load_catalog()[model_id], on_progress)

    def download_url(self, url: str, sha256: str, on_progress: Callable[[Any], None],
                     name: str | None = None, size: int | None = None) -> Path:
        """Any GGUF by URL and sha256; returns the appliance path to put in model.path."""
        from appliance.host.download import fetch_gguf

        return fetch_gguf(self.layout, url, sha256, on_progress, name, size)


def client_snippets(endpoint: str, model: str, key_file: str, ca_file: str | None) -> dict[str,
                                                                                           str]:
    """Copy-paste configuration for the usual OpenAI-compatible clients."""
    ca = f"--cacert {ca_file} " if ca_file else ""
    py_ca = (f'http_client=httpx.Client(verify="{ca_file}"),\n    ' if ca_file else "")
    return {
        "curl": (f"curl {ca}{endpoint}/chat/completions \\\n  -H \"Authorization: Bearer "
                 f"$(cat {key_file})\" -H 'Content-Type: application/json' \\\n  -d "
                 f"'{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", "
                 f"\"content\": \"Hello\"}}]}}'"),
        "OpenAI Python": ("from openai import OpenAI\nimport httpx\n\nclient = OpenAI(\n    "
                          f'base_url="{endpoint}",\n    api_key=open("{key_file}").read().strip(),'
                          f"\n    {py_ca})\nprint(client.chat.completions.create(model=\"{model}\","
                          " messages=[{\"role\": \"user\", \"content\": \"Hello\"}])"
                          ".choices[0].message.content)"),
        "VS Code Continue": ("# ~/.continue/config.yaml\nmodels:\n  - name: appliance\n    "
                             f"provider: openai\n    model: {model}\n    apiBase: {endpoint}\n"
                             "    apiKey: <the key>\n"
                             + ("    requestOptions:\n      caBundlePath: " + ca_file + "\n"
                                if ca_file else "")),
        "Cline": ("API Provider: OpenAI Compatible\n"
                  f"Base URL: {endpoint}\nAPI Key: <the key>\nModel ID: {model}"
                  + ("\n(self-signed: trust the CA file, or use a Let's Encrypt domain)"
                     if ca_file else "")),
        "aider": (f"export OPENAI_API_BASE={endpoint}\nexport OPENAI_API_KEY=$(cat {key_file})\n"
                  + (f"export SSL_CERT_FILE={ca_file}\n" if ca_file else "")
                  + f"aider --model openai/{model}"),
    }
