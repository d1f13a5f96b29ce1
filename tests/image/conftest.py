"""Session fixtures of the image test (scripts/test-image.sh): the one-apps checkout, the base
image, the loopback mirror and the artifact of a cold `packer build`."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.image import build
from tests.image.mirror import Mirror
from tests.image.vm import kvm_works

NEEDS = ("qemu-system-x86_64", "qemu-img", "packer", "debootstrap", "virt-sysprep",
         "genisoimage", "ssh")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = ""
    if os.environ.get("SLM_IMAGE_TEST") != "1":
        reason = "the image build and boot run with scripts/test-image.sh"
    elif missing := [t for t in NEEDS if not shutil.which(t)]:
        reason = "needs " + ", ".join(missing)
    for item in items:
        if reason and "tests/image" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def timings() -> Iterator[build.Timings]:
    t = build.Timings()
    yield t
    out = build.PACKER / "build" / "timings.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(t.values, indent=1) + "\n")
    print("\nimage test timings (s): " + json.dumps(t.values))


@pytest.fixture(scope="session")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image")


@pytest.fixture(scope="session")
def one_apps() -> Path:
    path = Path(os.environ.get("SLM_ONE_APPS", ""))
    assert (path / "appliances/service.sh").is_file(), \
        "set SLM_ONE_APPS to a checkout of OpenNebula/one-apps"
    return path


@pytest.fixture(scope="session")
def accel(work: Path) -> str:
    return "kvm" if kvm_works(work) else "tcg"


@pytest.fixture(scope="session")
def base(one_apps: Path, work: Path, timings: build.Timings) -> tuple[Path, str]:
    start = time.monotonic()
    result = build.base_image(one_apps, work / "base.log")
    timings.measure("base image (cached when its inputs are unchanged)", start)
    return result


@pytest.fixture(scope="session")
def mirror(work: Path) -> Iterator[Mirror]:
    folder = work / "mirror"
    folder.mkdir()
    shutil.copy(build.smollm2_gguf(), folder)
    m = Mirror(folder)
    yield m
    m.close()


@pytest.fixture(scope="session")
def artifact(base: tuple[Path, str], one_apps: Path, mirror: Mirror, accel: str, work: Path,
             timings: build.Timings) -> Path:
    """A cold build: no build folder (inputs, wheels, packer output); a half-downloaded model
    left behind so the fetch must resume. The compiled engine wheel stays cached (15 min)."""
    if os.environ.get("SLM_IMAGE_REUSE") == "1" and build.MANIFEST.exists():
        return build.ARTIFACT
    build.clean_build_dir()
    partial = build.PACKER / "build/downloads" / (build.MODEL_FILE + ".part")
    partial.parent.mkdir(parents=True)
    data = build.smollm2_gguf().read_bytes()
    partial.write_bytes(data[: len(data) // 2])
    start = time.monotonic()
    p = build.packer_build(*base, one_apps, mirror.url, accel, work / "packer-cold.log")
    assert p.returncode == 0, (work / "packer-cold.log").read_text()[-6000:]
    timings.measure(f"packer build, cold ({accel})", start)
    assert mirror.sent.get("/" + build.MODEL_FILE) == len(data) - len(data) // 2  # resumed
    return build.ARTIFACT
