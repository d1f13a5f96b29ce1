"""One small adapter per engine: its unit, its config files, where readiness is asked.

The same unit file serves systemd on the appliance and the sandbox supervisor, which runs its
ExecStart line, so the tests exercise the real command line.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml

from appliance.answers.hostport import join_hostport, split_hostport
from appliance.host.files import FileSpec
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.render import MANAGED
from appliance.plan.render.nginx_limits import BODY_LIMIT_MB
from appliance.plan.render.units import engine_containment
from appliance.plan.resolve import Resolved

PROMPT_CACHE_MIB = 256  # llama.cpp's host prompt cache grows to 8 GiB by default ("leak" reports)
WATCHDOG_BUSY = "30m"  # LocalAI kills a backend busy longer than this: > longest generation


class Engine(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def readiness_path(self) -> str: ...
    @property
    def slots(self) -> tuple[str, ...]:
        """Instances that can run side by side (a zero-downtime switch needs two)."""
        ...

    def slot_unit(self, slot: str) -> str: ...
    def slot_listen(self, listen: str, slot: str) -> str: ...
    def files(self, r: Resolved, layout: Layout, site: Site, slot: str = "a"
              ) -> list[FileSpec]: ...


def spare_listen(listen: str) -> str:
    """The second instance's loopback address: the engine's port + 1 (- 1 at the top)."""
    host, port = split_hostport(listen)
    return join_hostport(host, port + 1 if port < 65535 else port - 1)


def _unit(description: str, exec_start: list[str], site: Site, extra: str = "") -> str:
    user = f"User={site.engine_user}\nGroup={site.engine_user}\n" if site.engine_user else ""
    return f"""{MANAGED}
[Unit]
Description={description}
After=network.target
Before=nginx.service

[Service]
Type=simple
{user}{extra}ExecStart={shlex.join(exec_start)}
Restart=on-failure
RestartSec=3
NoNewPrivileges=yes
PrivateTmp=yes
ProtectSystem=strict
ProtectHome=yes
ProtectKernelTunables=yes
ProtectControlGroups=yes

[Install]
WantedBy=multi-user.target
"""


def _model_identity(r: Resolved, layout: Layout) -> str:
    st = layout.map(r.model_path).stat()
    return f"# model {r.model_id}: {st.st_size} bytes, mtime {st.st_mtime_ns}, sha256 {r.sha256}\n"


@dataclass(frozen=True)
class LlamaServer:
    """Two slots: ``llama-server.service`` on ``listen.engine`` and ``llama-server-b.service``
    on the next port; an engine change starts the idle one beside the serving one."""

    name: str = "llama-server"
    unit: str = "llama-server.service"
    readiness_path: str = "/health"
    slots: tuple[str, ...] = ("a", "b")

    def slot_unit(self, slot: str) -> str:
        return self.unit if slot == self.slots[0] else f"llama-server-{slot}.service"

    def slot_listen(self, listen: str, slot: str) -> str:
        return listen if slot == self.slots[0] else spare_listen(listen)

    def argv(self, r: Resolved, layout: Layout, site: Site, slot: str = "a") -> list[str]:
        a = r.answers
        host, port = split_hostport(self.slot_listen(a.listen.engine, slot))
        argv = [site.llama_server_bin,
                "--model", str(layout.map(r.model_path)),
                "--alias", r.model_id,
                "--host", host, "--port", str(port),
                "--ctx-size", str(a.model.context_size),
                "--threads", str(r.threads),
                "--parallel", str(a.parallel),
                "--no-webui", "--metrics", "--no-slots", "--offline",
                "--cache-ram", str(PROMPT_CACHE_MIB),
                # The default when a request names no max_tokens (limits.max_tokens; larger
                # ones are refused by the guard): no longer the end of the slot's context.
                "--n-predict", str(a.limits.max_tokens)]
        if r.chat_template:
            # A built-in name with Jinja on would be taken as the template text itself.
            argv += ["--no-jinja", "--chat-template", r.chat_template]
        return argv

    def files(self, r: Resolved, layout: Layout, site: Site, slot: str = "a"
              ) -> list[FileSpec]:
        unit = _unit(f"SLM appliance engine: llama-server serving {r.model_id}",
                     self.argv(r, layout, site, slot), site,
                     engine_containment(r.memory_estimate))
        unit = unit.replace("\n[Unit]", "\n" + _model_identity(r, layout) + "[Unit]", 1)
        return [FileSpec(f"{layout.systemd_dir}/{self.slot_unit(slot)}", unit.encode(), 0o644,
                         affects=frozenset({"engine", "units"}))]


@dataclass(frozen=True)
class LocalAI:
    """One slot: its env file and model folder are shared, so a second copy cannot run."""

    name: str = "localai"
    unit: str = "local-ai.service"
    readiness_path: str = "/readyz"
    slots: tuple[str, ...] = ("a",)

    def slot_unit(self, slot: str) -> str:
        return self.unit

    def slot_listen(self, listen: str, slot: str) -> str:
        return listen

    def model_yaml(self, r: Resolved, layout: Layout) -> str:
        a = r.answers
        rel = str(Path(r.model_path).relative_to(layout.models_dir))
        doc: dict[str, object] = {
            "name": r.model_id,
            "backend": "llama-cpp",
            "parameters": {"model": rel},
            "context_size": a.model.context_size,
            "threads": r.threads,
            "mmap": True,
            "mmlock": False,
            "f16": True,
            "known_usecases": ["FLAG_CHAT", "FLAG_COMPLETION"],
        }
        options = [f"cache_ram:{PROMPT_CACHE_MIB}", f"parallel:{a.parallel}"]
        if r.chat_template is None:
            doc["template"] = {"use_tokenizer_template": True}
            options.insert(0, "use_jinja:true")  # not auto-added when we set the template
        else:
            doc["template"] = _go_templates(r.chat_template)
            doc["stopwords"] = _STOPWORDS.get(r.chat_template, [])
        doc["options"] = options
        return MANAGED + "\n" + yaml.safe_dump(doc, sort_keys=False)

    def env(self, r: Resolved, layout: Layout) -> str:
        a = r.answers
        env = {
            "LOCALAI_ADDRESS": a.listen.engine,
            "LOCALAI_MODELS_PATH": str(layout.map(layout.models_dir)),
            "LOCALAI_BACKENDS_SYSTEM_PATH": str(layout.map("/var/lib/local-ai/backends")),
            "LOCALAI_BACKENDS_PATH": str(layout.map("/var/lib/local-ai/backends-user")),
            "LOCALAI_CONFIG_DIR": str(layout.map("/var/lib/local-ai/configuration")),
            "LOCALAI_THREADS": str(r.threads),  # v3 ignores per-model threads (fixed in v4.8)
            "LOCALAI_CONTEXT_SIZE": str(a.model.context_size),
            "LOCALAI_LOAD_TO_MEMORY": r.model_id,
            "LOCALAI_DISABLE_WEBUI": "true",
            "LOCALAI_DISABLE_GALLERY_ENDPOINT": "true",
            "LOCALAI_DISABLE_RUNTIME_SETTINGS": "true",
            "LOCALAI_AUTOLOAD_GALLERIES": "false",
            "LOCALAI_AUTOLOAD_BACKEND_GALLERIES": "false",
            "LOCALAI_GALLERIES": "[]",
            "LOCALAI_BACKEND_GALLERIES": "[]",
            "LOCALAI_PARALLEL_REQUESTS": "true" if a.parallel > 1 else "false",
            "LOCALAI_WATCHDOG_BUSY": "true",
            "LOCALAI_WATCHDOG_BUSY_TIMEOUT": WATCHDOG_BUSY,
            "LOCALAI_WATCHDOG_IDLE": "false",
            "LOCALAI_LOG_LEVEL": "info",
            "LOCALAI_UPLOAD_LIMIT": str(BODY_LIMIT_MB),  # MB; its default 15 < nginx's 16
        }
        return MANAGED + "\n" + "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())

    def files(self, r: Resolved, layout: Layout, site: Site, slot: str = "a"
              ) -> list[FileSpec]:
        group = f"root:{site.engine_user}" if site.engine_user else None
        extra = (f"EnvironmentFile={layout.map(layout.localai_env)}\n"
                 f"WorkingDirectory={layout.map('/var/lib/local-ai')}\n"
                 + engine_containment(r.memory_estimate))
        unit = _unit(f"SLM appliance engine: LocalAI serving {r.model_id}",
                     [site.localai_bin, "run"], site, extra)
        unit = unit.replace("\n[Unit]", "\n" + _model_identity(r, layout) + "[Unit]", 1)
        return [
            FileSpec(f"{layout.systemd_dir}/{self.unit}", unit.encode(), 0o644,
                     affects=frozenset({"engine", "units"})),
            FileSpec(layout.localai_env, self.env(r, layout).encode(), 0o640, owner=group,
                     affects=frozenset({"engine"})),
            FileSpec(f"{layout.models_dir}/{r.model_id}.yaml", self.model_yaml(r, layout).encode(),
                     0o644, affects=frozenset({"engine"})),
        ]


_STOPWORDS = {"chatml": ["<|im_end|>"], "gemma": ["<end_of_turn>"], "phi3": ["<|end|>"]}


def _go_templates(name: str) -> dict[str, str]:
    """LocalAI Go templates for models without a GGUF template (llama.cpp's built-ins)."""
    if name == "gemma":
        return {"chat_message": "<start_of_turn>{{if eq .RoleName \"assistant\"}}model"
                "{{else}}user{{end}}\n{{.Content}}<end_of_turn>",
                "chat": "{{.Input}}\n<start_of_turn>model\n", "completion": "{{.Input}}"}
    if name == "phi3":
        return {"chat_message": "<|{{.RoleName}}|>\n{{.Content}}<|end|>",
                "chat": "{{.Input}}\n<|assistant|>\n", "completion": "{{.Input}}"}
    return {"chat_message": "<|im_start|>{{.RoleName}}\n{{.Content}}<|im_end|>",
            "chat": "{{.Input}}\n<|im_start|>assistant\n", "completion": "{{.Input}}"}


ENGINES: dict[str, Engine] = {"llama-server": LlamaServer(), "localai": LocalAI()}
ENGINE_UNITS: tuple[str, ...] = tuple(e.slot_unit(s) for e in ENGINES.values() for s in e.slots)
"""Every engine unit the appliance may run (status, banner, stop)."""


def other_slot(engine: Engine, slot: str) -> str:
    """The slot a switch starts: the other one (the same one for a single-slot engine)."""
    others = [s for s in engine.slots if s != slot]
    return others[0] if others else slot
