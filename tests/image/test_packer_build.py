"""The real `packer build` (scripts/test-image.sh, not CI): cold (the `artifact` fixture), warm,
a manifest that matches the file, and a failure that names its step."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import yaml

from tests.image import build
from tests.image.mirror import Mirror


def digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_manifest(timings: build.Timings) -> None:
    manifest = yaml.safe_load(build.MANIFEST.read_text())
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(build.ARTIFACT)],
                                     check=True, capture_output=True, text=True).stdout)
    sha = subprocess.run(["sha256sum", str(build.ARTIFACT)], check=True, capture_output=True,
                         text=True).stdout.split()[0]
    assert info["format"] == manifest["format"] == "qcow2"
    assert manifest["size"] == info["virtual-size"]
    assert manifest["file_size"] == build.ARTIFACT.stat().st_size
    assert manifest["sha256"] == sha
    assert manifest["md5"] == digest(build.ARTIFACT, "md5")
    timings.values["image virtual size (MiB)"] = info["virtual-size"] / 2**20
    timings.values["image compressed size (MiB)"] = round(manifest["file_size"] / 2**20, 1)


def test_cold_build_manifest_matches_the_file(artifact: Path, timings: build.Timings) -> None:
    check_manifest(timings)


def test_warm_build(artifact: Path, base: tuple[Path, str], one_apps: Path, mirror: Mirror,
                    accel: str, work: Path, timings: build.Timings) -> None:
    """Runs last in scripts/test-image.sh (after the boots): everything cached, a new image."""
    first = build.MANIFEST.read_text()
    start = time.monotonic()
    p = build.packer_build(*base, one_apps, mirror.url, accel, work / "packer-warm.log")
    assert p.returncode == 0, (work / "packer-warm.log").read_text()[-6000:]
    timings.measure(f"packer build, warm ({accel})", start)
    check_manifest(timings)
    assert build.MANIFEST.read_text() != first  # a new artifact, described anew


def test_a_failed_build_names_its_step(base: tuple[Path, str], one_apps: Path, mirror: Mirror,
                                       work: Path) -> None:
    log = work / "packer-bad.log"
    p = build.packer_build(base[0], "0" * 64, one_apps, mirror.url, "tcg", log)
    assert p.returncode != 0
    assert "FAILED at step: verify the base image" in log.read_text()
    p = build.packer_build(*base, one_apps, mirror.url, "tcg", log,
                           {"SLM_MODEL": "no-such-model"})
    assert p.returncode != 0
    assert "FAILED at step: fetch the model (no-such-model)" in log.read_text()
