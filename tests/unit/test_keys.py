"""Named keys: the store's rules, the nginx include files, the usage summary (pure, fast)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import subprocess
from pathlib import Path

import pytest

from appliance.answers.schema import defaults
from appliance.errors import AnswersError
from appliance.host.paths import Layout
from appliance.keys import store as ks
from appliance.keys.usage import NO_KEY, summarize
from appliance.plan.render.keys import (
    TOKENS_FILTER,
    USAGE_JS,
    date_before_regex,
    render_key_limits,
    render_key_names,
    render_key_policy,
)

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
DEFAULT_SECRET = "D" * 43


def _store(*names: str, **limits: int) -> ks.KeyStore:
    s = ks.KeyStore()
    for n in names:
        s = ks.add_key(s, n, ks.new_secret(), NOW, default_secret=DEFAULT_SECRET, **limits)
    return s


def test_secret_is_32_random_bytes_urlsafe() -> None:
    a, b = ks.new_secret(), ks.new_secret()
    assert a != b and len(a) >= 43 and re.fullmatch(r"[A-Za-z0-9_-]+", a)


@pytest.mark.parametrize("name", ["", "Alice", "a b", "../etc", "a/b", "x" * 33, "-lead",
                                  "default", "include", "é", "a;b", "a$b"])
def test_invalid_names_are_refused_and_nothing_changes(name: str) -> None:
    s = _store("ci")
    with pytest.raises(AnswersError) as e:
        ks.add_key(s, name, ks.new_secret(), NOW, default_secret=DEFAULT_SECRET)
    assert e.value.exit_code == 2 and "name" in str(e.value)
    assert s.names() == ["ci"]


def test_a_name_holding_part_of_a_secret_is_refused() -> None:
    with pytest.raises(AnswersError, match="part of an API key"):
        ks.add_key(ks.KeyStore(), "d" * 10, ks.new_secret(), NOW, default_secret="d" * 40)


def test_duplicate_unknown_and_default_are_clear_errors() -> None:
    s = _store("ci")
    with pytest.raises(AnswersError, match="exists already"):
        ks.add_key(s, "ci", ks.new_secret(), NOW)
    with pytest.raises(AnswersError, match="no key named 'bob'"):
        ks.revoke_key(s, "bob")
    with pytest.raises(AnswersError, match="rotate"):
        ks.revoke_key(s, "default")


@pytest.mark.parametrize(("kw", "field"), [({"rpm": 0}, "--rpm"), ({"concurrent": -1},
                                           "--concurrent"), ({"expires": "2026-13-01"},
                                           "--expires"), ({"expires": "2026-12-01"},
                                           "--expires"), ({"expires": "1/2/2027"}, "--expires")])
def test_limits_and_expiry_are_checked(kw: dict[str, object], field: str) -> None:
    with pytest.raises(AnswersError, match=re.escape(field)):
        ks.add_key(ks.KeyStore(), "ci", ks.new_secret(), NOW, **kw)  # type: ignore[arg-type]


def test_rotate_keeps_limits_revoke_removes(tmp_path: Path) -> None:
    s = _store("ci", "ide", rpm=5)
    old = s.get("ci")
    r = ks.rotate_key(s, "ci", "new" * 15)
    new = r.get("ci")
    assert old and new and new.secret == "new" * 15 and new.rpm == 5 and new.created == old.created
    assert ks.revoke_key(r, "ci").names() == ["ide"]


def test_store_round_trips_and_a_damaged_store_is_an_error(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    s = _store("ci", rpm=5)
    path = layout.map(layout.keys_file)
    path.parent.mkdir(parents=True)
    path.write_bytes(s.to_json())
    assert ks.load_store(layout) == s
    path.write_text("{not json")
    with pytest.raises(AnswersError, match=r"keys\.json"):
        ks.load_store(layout)


def test_public_view_never_has_the_secret() -> None:
    k = _store("ci").keys[0]
    assert k.secret not in json.dumps(k.public())


@pytest.mark.parametrize("day", ["2026-12-31", "2027-01-01", "2030-10-09", "2100-02-28",
                                 "2026-12-02", "2099-09-19"])
def test_date_before_regex_is_string_order(day: str) -> None:
    rx = re.compile("^" + date_before_regex(day))
    d0 = dt.date(2026, 1, 1)
    for n in itertools.chain(range(0, 800, 3), range(26000, 27000, 97)):
        other = (d0 + dt.timedelta(days=n)).isoformat()
        assert bool(rx.match(other + "T00:00:00+00:00")) == (other < day), other


def test_key_names_map_is_exact_and_case_sensitive() -> None:
    s = _store("ci")
    text = render_key_names(DEFAULT_SECRET, s)
    secret = s.keys[0].secret
    assert f'"~^{re.escape(secret)}$" ci;' in text
    assert f'"~^{DEFAULT_SECRET}$" default;' in text
    with pytest.raises(ValueError):
        render_key_names("bad key\n", s)


def test_policy_has_no_secret_and_zones_per_limit_value() -> None:
    s = ks.KeyStore()
    for name, rpm, conc in (("a", 5, None), ("b", 5, 1), ("c", None, 2)):
        s = ks.add_key(s, name, ks.new_secret(), NOW, rpm=rpm, concurrent=conc,
                       expires="2027-01-01" if name == "c" else None)
    policy, limits = render_key_policy(s), render_key_limits(s)
    for k in s.keys:
        assert k.secret not in policy + limits
    assert policy.count("limit_req_zone") == 1 and "rate=5r/m" in policy
    assert "limit_conn_zone $slm_conn_1 zone=slm_conn_1" in policy
    assert "limit_conn_zone $slm_conn_2 zone=slm_conn_2" in policy
    assert "limit_req zone=slm_rpm_5 burst=4 nodelay;" in limits
    assert "limit_conn slm_conn_2 2;" in limits
    assert '"~^c\\|(?:' in policy  # c expires
    assert "Retry-After $slm_limit_retry" in limits and "error_page 429" in limits


def _line(key: str, status: int, when: str = "2026-12-01T10:00:00+00:00",
          tokens: tuple[str, str] = ("", "")) -> str:
    return json.dumps({"time": when, "key": key, "status": str(status), "duration": "0.500",
                       "bytes_sent": "100", "upstream_time": "0.4", "tokens_in": tokens[0],
                       "tokens_out": tokens[1]})


def test_usage_sums_per_key_and_honours_since() -> None:
    lines = [_line("ci", 200), _line("ci", 429), _line("", 401), "old format line\n",
             _line("ide", 200, "2026-11-01T10:00:00+00:00")]
    u = summarize(lines)
    assert u.keys["ci"].requests == 2 and u.keys["ci"].errors == 1
    assert u.keys["ci"].rate_limited == 1 and u.keys["ci"].busy_seconds == 1.0
    assert u.keys[NO_KEY].requests == 1 and u.skipped_lines == 1
    later = summarize(lines, dt.datetime(2026, 11, 15, tzinfo=dt.UTC))
    assert "ide" not in later.keys and later.keys["ci"].requests == 2
    assert u.keys["ci"].completion_tokens is None  # never reported: unknown, not zero


def test_usage_sums_tokens_where_the_engine_reported_them() -> None:
    u = summarize([_line("ci", 200, tokens=("31", "12")), _line("ci", 200, tokens=("5", "")),
                   _line("ci", 429)])
    assert (u.keys["ci"].prompt_tokens, u.keys["ci"].completion_tokens) == (36, 12)


def test_policy_with_njs_logs_tokens() -> None:
    policy = render_key_policy(ks.KeyStore(), "/etc/nginx/slm-usage.js")
    assert "js_import slm_usage from /etc/nginx/slm-usage.js;" in policy
    assert '"tokens_in":"$slm_tokens_in"' in policy and "js_var $slm_tokens_out;" in policy
    assert "tokens_in" not in render_key_policy(ks.KeyStore())


def test_every_key_feature_passes_nginx_t(tmp_path: Path) -> None:
    """The three include files with expiry, both limits and several keys, in the real config."""
    from appliance.plan.render.nginx import render_nginx_conf
    from appliance.tls.selfsigned import make_selfsigned
    from tests.unit.test_render import nginx_inputs

    s = ks.KeyStore()
    for name, kw in (("ci-bot", {"rpm": 60, "concurrent": 1}), ("ide_1", {"rpm": 1}),
                     ("old", {"expires": "2027-02-28"}), ("x", {"concurrent": 3})):
        s = ks.add_key(s, name, ks.new_secret(), NOW, **kw)  # type: ignore[arg-type]
    for d in ("logs", "temp", "w"):
        (tmp_path / d).mkdir()
    pair = make_selfsigned(["localhost"], NOW)
    (tmp_path / "c.pem").write_bytes(pair.cert_pem)
    (tmp_path / "k.pem").write_bytes(pair.key_pem)
    njs = "/usr/lib/nginx/modules/ngx_http_js_module.so"
    js = str(tmp_path / "usage.js") if Path(njs).is_file() else None
    (tmp_path / "usage.js").write_text(USAGE_JS)
    files = {"names.conf": render_key_names(DEFAULT_SECRET, s),
             "policy.conf": render_key_policy(s, js), "limits.conf": render_key_limits(s)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    conf = render_nginx_conf(nginx_inputs(
        https="127.0.0.1:1443", http="127.0.0.1:1080", cert=str(tmp_path / "c.pem"),
        key=str(tmp_path / "k.pem"), key_map=str(tmp_path / "names.conf"),
        key_policy=str(tmp_path / "policy.conf"), key_limits=str(tmp_path / "limits.conf"),
        pid=str(tmp_path / "pid"), log_dir=str(tmp_path / "logs"),
        temp_dir=str(tmp_path / "temp"), webroot=str(tmp_path / "w"), user="root",
        js_module=njs if js else None, token_filter=TOKENS_FILTER if js else ""))
    (tmp_path / "nginx.conf").write_text(conf)
    p = subprocess.run(["nginx", "-t", "-q", "-c", str(tmp_path / "nginx.conf"),
                        "-p", f"{tmp_path}/"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "limit_req zone=slm_rpm_1 nodelay;" in files["limits.conf"]


def test_key_commands_need_a_configured_appliance(tmp_path: Path) -> None:
    """Before the first apply a key command would configure everything: it refuses."""
    from appliance.apply.runtime import Context
    from appliance.errors import SetupError
    from appliance.host.facts import Facts
    from appliance.host.site import Site
    from appliance.keys import manage

    facts = Facts(2, 2, frozenset(), 1 << 30, "vm")
    ctx = Context(Layout(tmp_path), Site(), facts, services=None)  # type: ignore[arg-type]
    with pytest.raises(SetupError, match="nothing is configured"):
        manage.add(defaults(), ctx, "ci")
    assert not list(tmp_path.iterdir())


def test_report_lists_key_names_and_warns_about_context_keys() -> None:
    from appliance.plan.render.report import ReportInputs, render_report

    text = render_report(ReportInputs(
        endpoint="https://vm/v1", api_key_file="/etc/slm-appliance/api_key", ca_file=None,
        model_id="m", engine="llama-server", threads=2, context_size=2048, parallel=1,
        tls_mode="self-signed", tls_domain=None, tls_not_after="2027-01-01T00:00:00Z",
        memory_estimate_mib=100, named_keys=("ci-bot", "ide")))
    assert "named = ci-bot, ide" in text and "visible to anyone" in text
    assert "Sunstone" in ks.CONTEXT_KEY_NOTE and "wizard key add" in ks.CONTEXT_KEY_NOTE
