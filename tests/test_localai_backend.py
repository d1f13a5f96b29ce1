"""LocalAI's llama-cpp backend, installed offline and pinned by digest (issue 15): pulled from
a loopback registry standing in for quay.io (tests/oci_registry.py says what it mimics),
unpacked by the appliance script's install step into the backends folder LocalAI reads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from appliance.errors import SetupError
from appliance.host.oci import Reference, pull, unpack
from tests.oci_registry import REPO, Image, serve

APPLIANCE = Path(__file__).parent.parent / "packer" / "appliance" / "slm-appliance.sh"


def _pull(reg_host: str, pin: str, layout: Path) -> None:
    with httpx.Client(timeout=10) as client:
        pull(Reference.parse(f"{reg_host}/{REPO}:v3.12.1-cpu-llama-cpp@{pin}"), layout, client,
             scheme="http")


def test_pull_by_digest_then_install_puts_run_sh_at_the_top(tmp_path: Path) -> None:
    image = Image.backend()
    with serve(image) as reg:
        _pull(reg.host, image.index_digest, tmp_path / "layout")
    assert any(p.startswith("/token") for p, _ in reg.requests)  # the anonymous token dance
    backends = tmp_path / "var/lib/local-ai/backends"
    # The install step of the appliance script, as the image build runs it.
    script = (f". {APPLIANCE}; msg() {{ echo \"$*\"; [ \"$1\" != error ]; }}; "
              f"install_localai_backend {tmp_path}/layout {image.index_digest} "
              f"{backends}/llama-cpp")
    p = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                       env={**os.environ, "SLM_PYTHON": sys.executable})
    assert p.returncode == 0, p.stdout + p.stderr
    folder = backends / "llama-cpp"
    assert (folder / "run.sh").is_file() and os.access(folder / "run.sh", os.X_OK)
    assert sorted(x.name for x in folder.iterdir()) == [
        "lib", "llama-cpp-fallback", "metadata.json", "run.sh"]  # the whiteout removed stale.txt
    assert (folder / "run.sh").stat().st_uid == os.getuid()


def test_a_tampered_blob_is_refused_and_nothing_is_installed(tmp_path: Path) -> None:
    image = Image.backend()
    first = image.layer_digests()[0]
    image.blobs[first] = image.blobs[first][:-1] + bytes([image.blobs[first][-1] ^ 1])
    with serve(image) as reg, pytest.raises(SetupError, match="does not match its digest"):
        _pull(reg.host, image.index_digest, tmp_path / "layout")
    assert not list((tmp_path / "layout/blobs/sha256").glob("*.part"))


def test_an_unpinned_or_wrong_pin_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SetupError, match="not pinned by digest"):
        Reference.parse("quay.io/go-skynet/local-ai-backends:v3.12.1-cpu-llama-cpp")
    image = Image.backend()
    with serve(image) as reg, pytest.raises(SetupError, match="HTTP 404"):
        _pull(reg.host, "sha256:" + "0" * 64, tmp_path / "layout")


def test_unpack_checks_the_digests_again(tmp_path: Path) -> None:
    image = Image.backend()
    with serve(image) as reg:
        _pull(reg.host, image.index_digest, tmp_path / "layout")
    blob = tmp_path / "layout/blobs/sha256" / image.layer_digests()[1].split(":")[1]
    blob.write_bytes(blob.read_bytes() + b"x")
    with pytest.raises(SetupError, match="does not match its digest"):
        unpack(tmp_path / "layout", image.index_digest, tmp_path / "llama-cpp")
    assert not (tmp_path / "llama-cpp").exists()


def test_a_partial_blob_resumes_with_a_range_request(tmp_path: Path) -> None:
    image = Image.backend()
    first = image.layer_digests()[0]
    blobs = tmp_path / "layout/blobs/sha256"
    blobs.mkdir(parents=True)
    (blobs / (first.split(":")[1] + ".part")).write_bytes(image.blobs[first][:100])
    with serve(image) as reg:
        _pull(reg.host, image.index_digest, tmp_path / "layout")
    assert any(h.get("Range") == "bytes=100-" for _, h in reg.requests)
    unpack(tmp_path / "layout", image.index_digest, tmp_path / "llama-cpp")
    assert (tmp_path / "llama-cpp/run.sh").is_file()
