"""Speed: ``bench`` (tokens/s through nginx, what clients get) and ``tune`` (thread counts
measured through the apply path)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from appliance.answers.stored import applied_answers
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.perf.bench import Sample

from .common import EXIT_OK, make_context


def add(sub: Any) -> None:
    bn = sub.add_parser("bench", help="measure tokens/s of the running stack through nginx")
    bn.add_argument("--json", action="store_true")
    bn.add_argument("--tokens", type=int, default=64, help="tokens generated per request")
    bn.add_argument("--repetitions", type=int, default=3)
    bn.set_defaults(handler=cmd_bench)
    tn = sub.add_parser("tune", help="measure thread counts and propose the fastest")
    tn.add_argument("--apply", dest="keep_best", action="store_true",
                    help="apply the best thread count (default: restore the current one)")
    tn.add_argument("--json", action="store_true")
    tn.set_defaults(handler=cmd_tune)


def cmd_bench(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    from appliance.perf.bench import bench_local

    def show(n: int, s: Sample) -> None:
        if not args.json:
            print(f"  run {n + 1}: {s.gen_tps:6.1f} tok/s generation, {s.prompt_tps or 0:7.1f} "
                  f"tok/s prompt, first token {s.ttft_ms:6.1f} ms ({s.prompt_tokens} prompt, "
                  f"{s.gen_tokens} generated tokens)")

    result = bench_local(layout, show, repetitions=args.repetitions, tokens=args.tokens)
    out = result.to_json()
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['model']} on {out['threads']} threads: {out['generation_tokens_per_s']} "
              f"tok/s generation (+/- {result.generation.stdev:.1f}), "
              f"{out['prompt_tokens_per_s']} tok/s prompt, first token {out['ttft_ms']} ms")
    return EXIT_OK


def cmd_tune(args: argparse.Namespace, layout: Layout, site: Site) -> int:
    from appliance.perf.tuning import autotune

    ctx = make_context(layout, site, quiet=True)

    def show(threads: int, tps: float) -> None:
        if not args.json:
            print(f"  {threads:3d} threads: {tps:7.1f} tok/s", flush=True)

    result = autotune(applied_answers(layout, site), ctx, keep_best=args.keep_best,
                      on_result=show)
    if args.json:
        print(json.dumps({"best_threads": result.best, "measured": result.measured,
                          "stopped_early": result.stopped_early, "applied": args.keep_best}))
    else:
        done = "applied" if args.keep_best else "run 'wizard tune --apply' to apply it"
        print(f"best: {result.best} threads ({result.measured[result.best]:.1f} tok/s); {done}")
    return EXIT_OK
