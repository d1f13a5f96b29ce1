"""A real boot (separate target: scripts/test-image.sh; ~7 min warm, ~25 min cold).

Debian 12 from debootstrap, provisioned by the appliance's install stage, booted under QEMU (KVM
when /dev/kvm exists) with the HTTPS port forwarded to loopback only: a streamed completion with
the API key; the same key and certificate after a reboot; and with the minimal qemu64 CPU model
the engine still answers (slower) instead of dying with SIGILL.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.image.vm import API_KEY, MODEL, VM, build_image

pytestmark = [
    pytest.mark.image,
    pytest.mark.skipif(os.environ.get("SLM_IMAGE_TEST") != "1",
                       reason="the VM boot test runs with scripts/test-image.sh"),
    pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or not shutil.which("debootstrap"),
                       reason="needs qemu-system-x86 and debootstrap"),
]
TIMINGS: dict[str, float] = {}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("vm")
    start = time.monotonic()
    build_image(work)
    TIMINGS["build image"] = time.monotonic() - start
    yield work
    print("\nVM test timings (s): " + json.dumps({k: round(v, 1) for k, v in TIMINGS.items()}))


def served_fingerprint(port: int) -> str:
    import hashlib
    import socket

    ctx = ssl._create_unverified_context()  # the test reads the certificate; it cannot
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw) as s:  # pin it before it exists
        return hashlib.sha256(s.getpeercert(binary_form=True) or b"").hexdigest()


def wait_ready(vm: VM, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        assert vm.proc is not None and vm.proc.poll() is None, vm.console.read_text()[-3000:]
        try:
            r = httpx.get(f"https://127.0.0.1:{vm.port}/health", verify=False, timeout=5)
            if r.status_code == 200:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(2)
    raise AssertionError("not ready:\n" + vm.console.read_text(errors="replace")[-4000:])


def streamed_completion(port: int) -> tuple[list[float], str]:
    body = {"model": MODEL, "stream": True, "max_tokens": 32,
            "messages": [{"role": "user", "content": "What is the capital of France?"}]}
    times, text = [], ""
    start = time.monotonic()
    with httpx.Client(verify=False, timeout=300) as c, c.stream(
            "POST", f"https://127.0.0.1:{port}/v1/chat/completions", json=body,
            headers={"Authorization": f"Bearer {API_KEY}"}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data: {"):
                delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
                if delta:
                    times.append(time.monotonic() - start)
                    text += delta
    return times, text


def boot_and_check(image: Path, cpu: str, label: str) -> tuple[str, float]:
    vm = VM(image, cpu=cpu)
    start = time.monotonic()
    vm.start()
    try:
        wait_ready(vm, 1800)
        TIMINGS[f"{label}: boot to ready ({'kvm' if vm.kvm else 'tcg'})"] = \
            time.monotonic() - start
        with httpx.Client(verify=False) as c:
            url = f"https://127.0.0.1:{vm.port}/v1/models"
            assert c.get(url).status_code == 401
            assert c.get(url, headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        times, text = streamed_completion(vm.port)
        assert len(times) > 5 and text.strip(), text
        assert times[0] < times[-1]
        tps = (len(times) - 1) / (times[-1] - times[0])
        TIMINGS[f"{label}: tokens/s"] = tps
        return served_fingerprint(vm.port), tps
    finally:
        vm.stop()


def test_boot_reboot_and_minimal_cpu(image: Path) -> None:
    first, _ = boot_and_check(image, "host", "first boot")
    again, _ = boot_and_check(image, "host", "reboot")
    assert again == first  # the same certificate (and the key still opens /v1)
    _, slow = boot_and_check(image, "qemu64", "qemu64")
    assert slow > 0  # answered instead of SIGILL
