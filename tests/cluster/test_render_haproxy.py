"""The LB's HAProxy config: what LLM traffic needs, and real ``haproxy -c`` accepts it."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from appliance.answers.schema import parse
from appliance.errors import AnswersError
from appliance.plan.render.haproxy import (
    HAProxyInputs,
    Server,
    render_acme_lua,
    render_haproxy_cfg,
    render_haproxy_unit,
    render_key_list,
    server_name,
)
from appliance.tls.selfsigned import make_selfsigned


def _inputs(tmp: Path, servers: tuple[Server, ...]) -> HAProxyInputs:
    import datetime as dt

    pair = make_selfsigned(["localhost", "127.0.0.1"], dt.datetime.now(dt.UTC))
    (tmp / "tls.pem").write_bytes(pair.cert_pem + pair.key_pem)
    (tmp / "ca.pem").write_bytes(pair.cert_pem)
    (tmp / "keys.lst").write_text(render_key_list(["A" * 40, "b" * 40]))
    (tmp / "acme.lua").write_text(render_acme_lua(str(tmp / "www")))
    return HAProxyInputs(https="127.0.0.1:18443", http="127.0.0.1:18080",
                         pem=str(tmp / "tls.pem"), key_list=str(tmp / "keys.lst"),
                         backend_ca=str(tmp / "ca.pem"), servers=servers, balance="leastconn",
                         stats_socket=str(tmp / "haproxy.sock"), acme_lua=str(tmp / "acme.lua"))


def test_routing_fits_llm_traffic(tmp_path: Path) -> None:
    cfg = render_haproxy_cfg(_inputs(tmp_path, (Server("b_1", "10.0.0.1:443", 1),
                                                Server("b_2", "10.0.0.2:443", 4))))
    assert "option httpchk" in cfg and "http-check expect status 200" in cfg
    assert "uri /health" in cfg and "balance leastconn" in cfg
    assert "server b_1 10.0.0.1:443 maxconn 1" in cfg and "10.0.0.2:443 maxconn 4" in cfg
    for name in ("client", "server", "queue"):
        assert int(re.search(rf"timeout {name} (\d+)s", cfg).group(1)) >= 900  # type: ignore[union-attr]
    assert "slowstart" in cfg and "retry-on conn-failure" in cfg
    assert "ssl verify required ca-file" in cfg and "verify none" not in cfg
    assert "-m str -f" in cfg and "-m str -i" not in cfg  # the key: exact, case-sensitive
    assert "master-worker" in cfg and "expose-fd listeners" in cfg  # seamless reloads
    assert "option http-buffer-request" not in cfg and "compression" not in cfg


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs Debian's haproxy")
@pytest.mark.parametrize("servers", [(), (Server("vm41", "127.0.0.1:28443", 1),)])
def test_real_haproxy_accepts_it(tmp_path: Path, servers: tuple[Server, ...]) -> None:
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render_haproxy_cfg(_inputs(tmp_path, servers)))
    p = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr


def test_unit_reloads_by_usr2_after_a_check() -> None:
    unit = render_haproxy_unit("/usr/sbin/haproxy", "/etc/haproxy/haproxy.cfg", "/run/h.pid")
    assert "ExecStart=/usr/sbin/haproxy -Ws -f /etc/haproxy/haproxy.cfg" in unit
    assert unit.index("-c -q -f") < unit.index("ExecReload=/bin/kill -USR2 $MAINPID")


def test_names_and_key_list() -> None:
    assert server_name("10.0.0.5:443") == "b_10_0_0_5_443"
    assert server_name("[fd00::5]:443") == "b_fd00_5_443"
    with pytest.raises(ValueError):
        render_key_list(["good_key", "bad key with spaces"])


def test_roles_in_the_schema() -> None:
    assert parse({}).role == "standalone" and parse({}).lb is None
    lb = parse({"role": "lb"}).lb
    assert lb is not None and lb.backends == "onegate" and lb.balance == "leastconn"
    a = parse({"role": "lb", "lb": {"backends": ["10.0.0.1:443", "llm-2.internal:443"],
                                    "backend_ca": "/etc/slm-appliance/backends.pem"}})
    assert a.lb is not None and a.lb.backends == ["10.0.0.1:443", "llm-2.internal:443"]
    with pytest.raises(AnswersError) as err:
        parse({"role": "lb", "lb": {"backends": ["10.0.0.1:443", "nope"], "balance": "rr"}})
    fields = [e.field for e in err.value.errors]
    assert fields == ["lb.backends[1]", "lb.backend_ca", "lb.balance"]
    with pytest.raises(AnswersError) as err:
        parse({"role": "backend", "lb": {"backends": "onegate"}})
    assert err.value.errors[0].field == "lb" and "role: lb" in err.value.errors[0].fix
    with pytest.raises(AnswersError) as err:
        parse({"role": "gateway"})
    assert "standalone, backend, lb" in err.value.errors[0].fix
