"""Cluster roles: ``drain`` (a backend leaves the LB, finishes its streams, stops) and
``cluster agent`` (publish through OneGate as a backend, follow OneGate as an LB)."""

from __future__ import annotations

import argparse
from typing import Any

from appliance.answers.stored import applied_answers
from appliance.cluster.run import AGENT_INTERVAL_S, run_agent, run_drain
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.plan.render.cluster import DRAIN_TIMEOUT_S

from .common import EXIT_FAIL, EXIT_OK, make_context


def add(sub: Any) -> None:
    d = sub.add_parser("drain", help="stop taking requests, let streams finish, then stop")
    d.add_argument("--timeout", type=float, default=float(DRAIN_TIMEOUT_S),
                   help=f"seconds to wait for streams in flight (default {DRAIN_TIMEOUT_S})")
    d.add_argument("--leave-running", action="store_true",
                   help="do not stop the engine and nginx (the shutdown unit: systemd does)")
    d.set_defaults(handler=cmd_drain)
    c = sub.add_parser("cluster", help="OneGate agent of the backend and lb roles")
    csub = c.add_subparsers(dest="cluster_command", required=True)
    ag = csub.add_parser("agent", help="backend: publish when ready; lb: follow the backends")
    ag.add_argument("--once", action="store_true", help="one round, then exit")
    ag.add_argument("--interval", type=float, default=AGENT_INTERVAL_S)
    ag.set_defaults(handler=cmd_agent)


def cmd_drain(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = make_context(layout, site, quiet=True)
    result = run_drain(ctx, applied_answers(layout, site), args.timeout,
                       stop=not args.leave_running)
    print(f"drained in {result.waited_s:.1f} s; stopped: {', '.join(result.stopped) or '-'}")
    if not result.clean:
        print(f"warning: {result.left_in_flight} request(s) still running at the timeout")
        return EXIT_FAIL
    return EXIT_OK


def cmd_agent(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    ctx = make_context(layout, site, quiet=True)
    return run_agent(ctx, lambda: applied_answers(layout, site), args.once, args.interval,
                     log=lambda s: print(s, flush=True))
