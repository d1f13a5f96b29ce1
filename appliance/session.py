"""What the wizard needs from the core, as plain data: one object per wizard run.

The TUI calls only this; every change still goes through ``apply_answers``. Tests drive the
real one against a sandbox; snapshot tests subclass it with fixed data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from appliance.answers.catalog import fetch_model, load_catalog
from appliance.answers.schema import Answers
from appliance.answers.stored import Repaired, repaired_answers
from appliance.apply.changes import actions_for, describe, diff
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context, Event
from appliance.apply.summary import Line, summarize_plan
from appliance.apply.transaction import ApplyResult
from appliance.clients import Access
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
    base_model: bool = False
    """No chat template of its own (a base model): chat answers ramble."""


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
                                 on_disk, m.license, m.chat_template is not None))
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

    def load_average(self) -> float:
        """The 1-minute load average: a busy machine makes a benchmark low and noisy."""
        return os.getloadavg()[0]

    def client_setup(self) -> ClientSetup:
        return client_setup(self)

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



# -- the wizard's Done step and Speed screen (client set-up, load) ------------------------------
@dataclass(frozen=True)
class ClientSetup:
    """What the Done step shows and the exit prints; ``saved`` holds every snippet (0600)."""

    access: Access
    snippets: dict[str, str]
    saved: str
    summary: str
    ready: bool


def client_setup(session: Session) -> ClientSetup:
    """Snippets for the endpoint that is served now, saved next to the key (they hold it)."""
    from urllib.parse import urlsplit

    from appliance.clients import client_snippets, exit_summary
    from appliance.host.files import atomic_write

    info = session.status()
    layout = session.layout
    endpoint = str(info.get("endpoint"))
    access = Access(endpoint, str(info.get("model")), session.api_key(),
                    str(layout.map(layout.api_key_file)), info.get("ca_file"),
                    urlsplit(endpoint).hostname or "this-vm")
    snippets = client_snippets(access)
    saved = layout.map(str(PurePosixPath(layout.api_key_file).parent / "client-setup.txt"))
    text = "".join(f"## {name}\n{body.rstrip()}\n\n" for name, body in snippets.items())
    atomic_write(saved, text.encode(), 0o600)
    ready = bool(info.get("ready"))
    return ClientSetup(access, snippets, str(saved), exit_summary(access, ready, str(saved)),
                       ready)
