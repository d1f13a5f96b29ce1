"""Entry points the CLI calls: the agent loop and the drain, wired to the real world.

OneGate credentials come from one-context's ``one_env`` (under ``--root`` in a sandbox), else
from the environment; a VM without ``TOKEN=YES`` has no OneGate and the agent says so.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from functools import partial

from appliance.answers.schema import Answers
from appliance.apply.probes import probe_address
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context
from appliance.cluster.agent import Agent, BackendSelf, http_probe, text_probe
from appliance.cluster.busy import parse_metrics
from appliance.cluster.drain import DrainResult, drain
from appliance.cluster.onegate import ONE_ENV, OneGate, credentials, read_one_env
from appliance.errors import ApplianceError, SetupError
from appliance.host.paths import Layout
from appliance.plan.engines import ENGINE_UNITS
from appliance.plan.render.cluster import AGENT_UNIT
from appliance.plan.state import load_state
from appliance.status import engine_api

AGENT_INTERVAL_S = 5.0


def onegate_for(layout: Layout) -> OneGate | None:
    path = layout.map(ONE_ENV)
    env = read_one_env(path) if path.exists() else dict(os.environ)
    creds = credentials(env)
    return OneGate(creds) if creds else None


def backend_self(layout: Layout, answers: Answers) -> BackendSelf:
    state = load_state(layout)
    host, port = probe_address(answers.listen.https)
    sctx: ssl.SSLContext | bool = False
    cert = layout.map(layout.selfsigned_cert)
    if state.get("tls_mode", "self-signed") == "self-signed":
        sctx = ssl.create_default_context(cafile=str(cert))
        sctx.check_hostname = False  # connected by address; the chain is still checked
    health = http_probe(f"https://{host}:{port}/health" if ":" not in host
                        else f"https://[{host}]:{port}/health", sctx)
    metrics = text_probe(engine_metrics_url(layout))
    return BackendSelf(answers.listen.https, answers.parallel, cert.read_bytes(), health,
                       metrics)


def engine_metrics_url(layout: Layout) -> str:
    """The serving engine's Prometheus text (a blue-green switch moves it between ports)."""
    return engine_api(layout).removesuffix("/v1") + "/metrics"


def run_agent(ctx: Context, answers_now: Callable[[], Answers], once: bool = False,
              interval: float = AGENT_INTERVAL_S, log: Callable[[str], None] = print) -> int:
    agent: Agent | None = None
    try:
        while True:
            answers = answers_now()
            if agent is None:  # one-context may write one_env after we start: look each round
                gate = onegate_for(ctx.layout)
                if gate is not None:
                    agent = Agent(ctx.layout, gate, log=log)
                elif once:
                    raise SetupError("no OneGate on this VM: the VM template needs CONTEXT "
                                     f"TOKEN=YES (no ONEGATE_ENDPOINT/VMID/TOKENTXT in "
                                     f"{ONE_ENV})")
            try:
                if agent is not None and answers.role == "backend":
                    agent.tick_backend(backend_self(ctx.layout, answers))
                elif agent is not None and answers.lb and answers.lb.backends == "onegate":
                    agent.tick_lb(partial(apply_answers, answers, ctx, "OneGate discovery"))
            except (ApplianceError, OSError, RuntimeError, ValueError) as exc:
                log(f"agent: {str(exc).splitlines()[0]} (retrying)")
            if once:
                return 0
            time.sleep(interval)
    finally:
        if agent is not None:
            agent.gate.close()


def run_drain(ctx: Context, answers: Answers, timeout: float,
              say: Callable[[str], None] = print, stop: bool = True) -> DrainResult:
    fetch = text_probe(engine_metrics_url(ctx.layout))

    def metrics() -> dict[str, float] | None:
        text = fetch()
        return parse_metrics(text) if text is not None else None

    gate = onegate_for(ctx.layout)
    try:
        return drain(ctx.layout, ctx.services, [AGENT_UNIT, *ENGINE_UNITS], metrics, gate,
                     timeout, ctx.clock, ctx.sleep, say, stop)
    finally:
        if gate is not None:
            gate.close()
