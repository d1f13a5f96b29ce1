"""Boot a copy of the artifact `packer build` produced (scripts/test-image.sh, not CI) with an
OpenNebula context CD, as OpenNebula would: one-context contextualizes, one-apps'
net-90-service-appliance runs configure + bootstrap. One VM disk across the tests, in order:
first boot, reboot, changed context, invalid context, qemu64 CPU, then a 2000-token stream."""

from __future__ import annotations

import configparser
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.image import build
from tests.image.vm import VM, context_iso
from tests.lifecycle import onegate
from tests.lifecycle.onegate import OneGate

pytestmark = pytest.mark.image

READY_TIMEOUT = 2400
WATCHED = ("/etc/slm-appliance /etc/nginx /etc/systemd/system /etc/profile.d "
           "/etc/one-appliance/config")
KEY_FILE = "/etc/slm-appliance/api_key"  # the report's api_key_file, checked below
CONTEXT = {"ONEAPP_SLM_ENGINE_THREADS": "2", "ONEAPP_SLM_ENGINE_PARALLEL": "1",
           "ONEAPP_SLM_MODEL_CONTEXT": "4096"}


@pytest.fixture(scope="module")
def gate() -> Iterator[OneGate]:
    with onegate.serve() as g:
        yield g


@pytest.fixture(scope="module")
def vm(artifact: Path, work: Path, gate: OneGate) -> Iterator[VM]:
    disk = work / "vm-disk.qcow2"
    shutil.copy(artifact, disk)  # a copy: the artifact itself is never booted
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    machine = VM(work, disk, key, gate)
    yield machine
    machine.stop()


def boot(vm: VM, timings: build.Timings, label: str, cpu: str = "host",
         **context: str) -> str:
    """Power on with a fresh context CD; wait for this boot's configure/bootstrap result and,
    on success, for READY=YES reported to OneGate by one-apps' net-99-report-ready."""
    vm.stop()
    vm.gate.vm.clear()
    iso = context_iso(vm.work / f"context-{vm.boots + 1}.iso",
                      (vm.ssh_key.with_suffix(".pub")).read_text().strip(), vm.gate.port,
                      onegate.TOKEN, onegate.VMID, {**CONTEXT, **context})
    start = time.monotonic()
    vm.start(iso, cpu)
    vm.wait_ssh(READY_TIMEOUT)
    deadline = start + READY_TIMEOUT
    while time.monotonic() < deadline:
        vm.alive()
        # The status file outlives reboots: only a write during this boot counts. The key
        # comes with it, so that /v1/models is asked the moment READY shows, not after SSH.
        status, _, key = vm.sh("b=$(date -d \"$(uptime -s)\" +%s); f=/etc/one-appliance/status; "
                               "{ [ $(stat -c %Y $f) -ge $b ] && cat $f; echo; }; "
                               f"cat {KEY_FILE} 2>/dev/null || true",
                               check=False).partition("\n")
        status, STATE.key = status.strip(), key.strip() or STATE.key
        if status == "bootstrap_success" and vm.gate.vm.get("READY") != "YES":
            pass  # net-99 reports right after (configure_success is only half-way)
        elif status == "bootstrap_success" or status in ("configure_failure",
                                                           "bootstrap_failure"):
            if status == "bootstrap_success":
                timings.measure(f"{label}: boot to READY ({'kvm' if vm.kvm else 'tcg'})", start)
            return status
        time.sleep(1)
    raise AssertionError("no configure/bootstrap result:\n" + vm.tail())


def report(vm: VM) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(interpolation=None)
    cp.read_string(vm.sh("cat /etc/one-appliance/config"))
    return cp


def api(vm: VM, key: str, path: str = "/v1/models") -> httpx.Response:
    return httpx.get(f"https://127.0.0.1:{vm.https}{path}", verify=False, timeout=30,
                     headers={"Authorization": f"Bearer {key}"} if key else {})


def stream(vm: VM, key: str, model: str, max_tokens: int, **extra: object) -> list[float]:
    body = {"model": model, "stream": True, "max_tokens": max_tokens, **extra,
            "messages": [{"role": "user", "content": "Tell me about the history of Paris."}]}
    times: list[float] = []
    start = time.monotonic()
    with httpx.Client(verify=False, timeout=httpx.Timeout(30, read=600)) as c, c.stream(
            "POST", f"https://127.0.0.1:{vm.https}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {key}"}) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("data: {"):
                choice = json.loads(line[6:])["choices"][0]
                if choice["delta"].get("content"):
                    times.append(time.monotonic() - start)
    return times


def fingerprint(vm: VM) -> str:
    ctx = ssl._create_unverified_context()  # the test reads the certificate to compare it
    with socket.create_connection(("127.0.0.1", vm.https), timeout=10) as raw, \
            ctx.wrap_socket(raw) as s:
        return hashlib.sha256(s.getpeercert(binary_form=True) or b"").hexdigest()


def files(vm: VM) -> dict[str, str]:
    """Every configuration file: content hash and modification time (a rewrite shows)."""
    out = vm.sh(f"find {WATCHED} -type f -exec sh -c "
                "'for f; do echo \"$f $(sha256sum < \"$f\" | cut -c1-16) $(stat -c %Y \"$f\")\"; "
                "done' _ {} +")
    return dict(line.split(" ", 1) for line in out.splitlines())


def starts(vm: VM, unit: str) -> int:
    """How many times systemd started the unit during this boot."""
    return int(vm.sh(f"journalctl -b -u {unit} -o cat | grep -c '^Started' || true").strip())


def engine(vm: VM) -> tuple[str, str]:
    # An engine change switches between two instances (llama-server[-b].service): the one
    # with a main PID serves.
    pids = vm.sh("systemctl show -p MainPID --value llama-server.service "
                 "llama-server-b.service").split()
    pid = next((p for p in pids if p != "0"), "0")
    return pid, vm.sh(f"tr '\\0' ' ' < /proc/{pid}/cmdline")


class State:
    """What the first boot saw, compared by the later boots."""

    key = cert = ""
    model = build.MODEL  # so that the later tests also run on their own (given node ids)
    files: dict[str, str] = {}  # noqa: RUF012
    engine: tuple[str, str] = ("", "")


STATE = State()


def test_first_boot(vm: VM, timings: build.Timings) -> None:
    assert boot(vm, timings, "first boot") == "bootstrap_success", vm.sh(
        "cat /var/log/one-appliance/*.log", check=False)
    ready, key = time.monotonic(), STATE.key
    while (models := api(vm, key)).status_code != 200:  # within 5 s of READY
        assert time.monotonic() - ready < 5, models.text
        time.sleep(0.5)
    timings.values["first boot: READY to /v1/models answering (s)"] = round(
        time.monotonic() - ready, 2)
    rep = report(vm)
    assert rep["Connection info"]["api_key_file"] == KEY_FILE
    assert key == vm.sh(f"cat {KEY_FILE}").strip()
    assert vm.gate.vm["ONEAPP_SLM_ENDPOINT"] == rep["Connection info"]["endpoint"]
    assert not any(key in v for v in vm.gate.vm.values())  # the key is never published
    model = rep["Connection info"]["model"]
    assert model == build.MODEL
    assert [m["id"] for m in models.json()["data"]] == [model]
    assert api(vm, "").status_code == 401
    assert api(vm, "wrong-" + key).status_code == 401
    times = stream(vm, key, model, 32)
    assert len(times) > 5 and times[0] < times[-1]
    timings.values["first boot: tokens/s"] = round((len(times) - 1) / (times[-1] - times[0]), 1)
    # A terminal for the output (the banner needs one) but not for the input: root's first
    # interactive login with a terminal on both starts the wizard, which would wait here.
    banner = vm.sh("script -qc 'bash -lic true 0</dev/null' /dev/null < /dev/null",
                   check=False)
    assert rep["Connection info"]["endpoint"] in banner, banner
    assert rep["Connection info"]["api_key_file"] in banner, banner
    STATE.key, STATE.model, STATE.cert = key, model, fingerprint(vm)
    STATE.files, STATE.engine = files(vm), engine(vm)
    assert "--threads 2" in STATE.engine[1] or "-t 2" in STATE.engine[1], STATE.engine


def test_sshd_allows_keys_only(vm: VM) -> None:
    sshd = vm.sh("sshd -T")
    assert "passwordauthentication no" in sshd.splitlines()
    assert {"permitrootlogin without-password", "permitrootlogin prohibit-password"} & set(
        sshd.splitlines())


def test_reboot_keeps_everything(vm: VM, timings: build.Timings) -> None:
    assert boot(vm, timings, "reboot") == "bootstrap_success"
    assert fingerprint(vm) == STATE.cert
    assert api(vm, STATE.key).status_code == 200
    assert files(vm) == STATE.files  # nothing rewritten
    pid, args = engine(vm)
    assert pid != STATE.engine[0] and args == STATE.engine[1]
    assert starts(vm, "llama-server.service") == 1  # started by the boot, not restarted
    assert starts(vm, "nginx.service") == 1


def test_changed_context_restarts_only_the_engine(vm: VM, timings: build.Timings) -> None:
    assert boot(vm, timings, "changed context", ONEAPP_SLM_ENGINE_THREADS="1") == \
        "bootstrap_success"
    assert report(vm)["Model"]["threads"] == "1"
    pid, args = engine(vm)
    assert "--threads 1" in args or "-t 1" in args, args
    # the boot, then the new threads beside it (a switch) or in its place (a restart)
    assert starts(vm, "llama-server.service") + starts(vm, "llama-server-b.service") == 2
    assert starts(vm, "nginx.service") == 1
    assert fingerprint(vm) == STATE.cert
    before, after = STATE.files, files(vm)
    changed = {f for f in set(before) | set(after) if before.get(f) != after.get(f)}
    # nginx.conf may name the other engine instance's port after a switch; nothing else of nginx
    assert not {f for f in changed if ("nginx" in f and not f.endswith("nginx.conf"))
                or f.endswith((".pem", ".key", "api_key"))}, changed
    STATE.engine = (pid, args)


def test_invalid_context_fails_configure_and_the_old_stack_serves(
        vm: VM, timings: build.Timings) -> None:
    assert boot(vm, timings, "invalid context", ONEAPP_SLM_ENGINE_THREADS="lots") == \
        "configure_failure"
    log = vm.sh("cat /var/log/one-appliance/configure.log")
    assert "ONEAPP_SLM_ENGINE_THREADS" in log, log
    assert api(vm, STATE.key).status_code == 200
    assert len(stream(vm, STATE.key, STATE.model, 16)) > 3
    assert engine(vm)[1] == STATE.engine[1]


def test_qemu64_cpu_answers(vm: VM, timings: build.Timings) -> None:
    assert boot(vm, timings, "qemu64", cpu="qemu64", ONEAPP_SLM_ENGINE_THREADS="1") == \
        "bootstrap_success"
    times = stream(vm, STATE.key, STATE.model, 32)
    assert len(times) > 5  # answered: no SIGILL
    timings.values["qemu64: tokens/s"] = round((len(times) - 1) / (times[-1] - times[0]), 1)


def test_2000_token_stream_through_nginx(vm: VM, timings: build.Timings) -> None:
    """Last: on an emulated CPU (TCG) this is the longest test by far (tokens/s below 1)."""
    start = time.monotonic()
    times = stream(vm, STATE.key, STATE.model, 2000, ignore_eos=True)
    assert len(times) >= 1990, len(times)
    timings.measure("2000-token stream through nginx", start)
