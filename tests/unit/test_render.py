from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from appliance.answers.schema import parse
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.keys.store import KeyStore
from appliance.plan.engines import LlamaServer, LocalAI
from appliance.plan.gguf import GGUFInfo
from appliance.plan.render.keys import render_key_names, render_key_policy
from appliance.plan.render.nginx import NginxInputs, render_nginx_conf
from appliance.plan.render.nginx_limits import BODY_LIMIT_MB
from appliance.plan.resolve import Resolved

GOLDEN = Path(__file__).parent.parent / "golden"
NOW = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def resolved(template: str | None = None, **answers: object) -> Resolved:
    a = parse({"engine": "localai", "model": {"id": "phi-3-mini-4k-instruct-q4"},
               "threads": 4, **answers})
    info = GGUFInfo("phi3", "Phi3", 4096, None if template else "{{ jinja }}", 32, 32, 3072, 32)
    return Resolved(answers=a, model_id="phi-3-mini-4k-instruct-q4",
                    model_path="/opt/slm-appliance/models/Phi-3-mini-4k-instruct-q4.gguf",
                    gguf=info, sha256=None, threads=4, chat_template=template,
                    memory_estimate=0, catalog=None)


def nginx_inputs(**kw: str) -> NginxInputs:
    base = dict(https="0.0.0.0:443", http="0.0.0.0:80", engine="127.0.0.1:8080",
                readiness_path="/health", cert="/c.pem", key="/k.pem", key_map="/keys.conf",
                webroot="/w", pid="/run/nginx.pid", log_dir="/var/log/nginx",
                temp_dir="/var/lib/nginx", user="www-data")
    return NginxInputs(**{**base, **kw})


def write_key_files(folder: Path, secret: str) -> dict[str, str]:
    """The product's two http-level key includes for one default key, no named keys; returns
    them as the ``key_map``/``key_policy`` fields of :class:`NginxInputs`."""
    files = {"key_map": folder / "keys.conf", "key_policy": folder / "key-policy.conf"}
    files["key_map"].write_text(render_key_names(secret, KeyStore()))
    files["key_policy"].write_text(render_key_policy(KeyStore()))
    return {field: str(path) for field, path in files.items()}


def _location(conf: str, header: str) -> str:
    start = conf.index(header)
    return conf[start:conf.index("\n        }", start)]


def test_stream_location_has_every_unbuffering_directive() -> None:
    conf = render_nginx_conf(nginx_inputs())
    stream = _location(conf, "location ~ ^/v1/(")
    for directive in ("proxy_buffering off;", "proxy_cache off;", "gzip off;"):
        assert directive in stream
    assert "proxy_buffering off" not in _location(conf, "location /v1/ {")
    assert "proxy_http_version 1.1;" in conf and "proxy_set_header Connection" not in conf
    health = _location(conf, "location = /health {")
    api = conf.replace(health, "")
    timeouts = [int(t) for t in re.findall(r"proxy_(?:read|send)_timeout (\d+)s;", api)]
    assert timeouts and min(timeouts) >= 600
    # proxy_set_header only at server level: a location-level one would drop the others.
    assert len(re.findall(r"^\s*proxy_set_header", conf, re.M)) == 1


def test_rendered_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    for d in ("logs", "temp", "w"):
        (tmp_path / d).mkdir()
    from appliance.tls.selfsigned import make_selfsigned

    pair = make_selfsigned(["localhost"], NOW)
    (tmp_path / "c.pem").write_bytes(pair.cert_pem)
    (tmp_path / "k.pem").write_bytes(pair.key_pem)
    conf = render_nginx_conf(nginx_inputs(
        https="127.0.0.1:1443", http="[::1]:1080", cert=str(tmp_path / "c.pem"),
        key=str(tmp_path / "k.pem"), **write_key_files(tmp_path, "k" * 40),
        pid=str(tmp_path / "pid"), log_dir=str(tmp_path / "logs"),
        temp_dir=str(tmp_path / "temp"), webroot=str(tmp_path / "w"), user="root",
        readiness_path="/readyz"))
    (tmp_path / "nginx.conf").write_text(conf)
    p = subprocess.run(["nginx", "-t", "-q", "-c", str(tmp_path / "nginx.conf"),
                        "-p", f"{tmp_path}/"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_llama_server_command_is_explicit() -> None:
    r = resolved(engine="llama-server", parallel=2)
    argv = LlamaServer().argv(r, Layout(Path("/")), Site())
    cmd = " ".join(argv)
    for part in ("--host 127.0.0.1", "--port 8080", "--ctx-size 4096", "--threads 4",
                 "--parallel 2", "--no-webui", "--metrics", "--no-slots", "--offline",
                 "--alias phi-3-mini-4k-instruct-q4", "--cache-ram 256"):
        assert part in cmd
    assert "--chat-template" not in cmd
    r = resolved(template="gemma", engine="llama-server")
    assert "--no-jinja --chat-template gemma" in " ".join(LlamaServer().argv(r, Layout(Path("/")),
                                                                          Site()))


# LocalAI cannot run here: its files are checked against golden copies and its documented
# schema (shared/reference/engines.md A1/A2, LocalAI v3.12.1 core/config/model_config.go).
MODEL_CONFIG_FIELDS = {"name", "backend", "parameters", "context_size", "threads", "f16", "mmap",
                       "mmlock", "template", "stopwords", "options", "known_usecases"}
TEMPLATE_FIELDS = {"chat", "chat_message", "completion", "use_tokenizer_template"}
LLAMA_CPP_OPTIONS = {"use_jinja", "cache_ram", "parallel"}
ENV_VARS = {"LOCALAI_ADDRESS", "LOCALAI_MODELS_PATH", "LOCALAI_BACKENDS_SYSTEM_PATH",
            "LOCALAI_BACKENDS_PATH", "LOCALAI_CONFIG_DIR", "LOCALAI_THREADS",
            "LOCALAI_CONTEXT_SIZE", "LOCALAI_LOAD_TO_MEMORY", "LOCALAI_DISABLE_WEBUI",
            "LOCALAI_DISABLE_GALLERY_ENDPOINT", "LOCALAI_DISABLE_RUNTIME_SETTINGS",
            "LOCALAI_AUTOLOAD_GALLERIES", "LOCALAI_AUTOLOAD_BACKEND_GALLERIES",
            "LOCALAI_GALLERIES", "LOCALAI_BACKEND_GALLERIES", "LOCALAI_PARALLEL_REQUESTS",
            "LOCALAI_WATCHDOG_BUSY", "LOCALAI_WATCHDOG_BUSY_TIMEOUT", "LOCALAI_WATCHDOG_IDLE",
            "LOCALAI_LOG_LEVEL", "LOCALAI_UPLOAD_LIMIT"}


@pytest.mark.parametrize(("name", "template"), [("tokenizer", None), ("gemma", "gemma")])
def test_localai_model_yaml_matches_golden_and_schema(name: str, template: str | None) -> None:
    text = LocalAI().model_yaml(resolved(template), Layout(Path("/")))
    golden = GOLDEN / f"localai-model-{name}.yaml"
    assert text == golden.read_text()
    doc = yaml.safe_load(text)
    assert set(doc) <= MODEL_CONFIG_FIELDS
    assert set(doc["template"]) <= TEMPLATE_FIELDS
    assert doc["backend"] == "llama-cpp" and doc["context_size"] == 4096
    model = doc["parameters"]["model"]
    assert not model.startswith("/") and ".." not in model  # LocalAI's Validate() rules
    options = dict(o.split(":", 1) for o in doc["options"])
    assert set(options) <= LLAMA_CPP_OPTIONS and options["cache_ram"] == "256"
    if template is None:
        assert doc["template"] == {"use_tokenizer_template": True}
        assert options["use_jinja"] == "true"  # not auto-added when the template is set by us


def test_localai_env_matches_golden_and_is_locked_down() -> None:
    text = LocalAI().env(resolved(), Layout(Path("/")))
    assert text == (GOLDEN / "localai.env").read_text()
    env = dict(line.split("=", 1) for line in text.splitlines() if line and line[0] != "#")
    assert set(env) <= ENV_VARS
    assert env["LOCALAI_ADDRESS"] == "127.0.0.1:8080"
    assert env["LOCALAI_DISABLE_WEBUI"] == "true"
    assert env["LOCALAI_AUTOLOAD_GALLERIES"] == env["LOCALAI_AUTOLOAD_BACKEND_GALLERIES"] == "false"
    assert env["LOCALAI_THREADS"] == "4"
    assert env["LOCALAI_UPLOAD_LIMIT"] == str(BODY_LIMIT_MB)  # MB, as nginx's body limit
    assert "API_KEY" not in text and "EXTERNAL" not in text


def test_localai_unit_loads_env_and_runs_from_its_own_folder(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    model = layout.map("/opt/slm-appliance/models/Phi-3-mini-4k-instruct-q4.gguf")
    model.parent.mkdir(parents=True)
    model.write_bytes(b"GGUF")
    files = {f.path: f for f in LocalAI().files(resolved(), layout, Site())}
    unit = files["/etc/systemd/system/local-ai.service"].content.decode()  # type: ignore[union-attr]
    assert f"EnvironmentFile={tmp_path}/etc/localai.env" in unit
    assert "ExecStart=/usr/local/bin/local-ai run" in unit and "User=slm" in unit
    assert files["/etc/localai.env"].mode == 0o640
