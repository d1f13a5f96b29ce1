"""The image definition: `packer validate` and `packer fmt -check` (Debian's Packer 1.6.6, the
strongest offline check it offers), and shellcheck on every shell script we ship."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

PACKER = Path(__file__).parent.parent / "packer"
ENV = {**os.environ, "CHECKPOINT_DISABLE": "1"}
FRAMEWORK = ["appliances/service.sh", "appliances/lib/common.sh", "appliances/lib/functions.sh",
             "appliances/scripts/net-90-service-appliance",
             "appliances/scripts/net-99-report-ready"]


@pytest.mark.skipif(not shutil.which("packer"), reason="packer is not installed")
def test_packer_validate_and_fmt(tmp_path: Path) -> None:
    one_apps = tmp_path / "one-apps"
    for rel in FRAMEWORK:  # stand-ins: validate checks that provisioner sources exist
        (one_apps / rel).parent.mkdir(parents=True, exist_ok=True)
        (one_apps / rel).write_text("#!/bin/bash\n")
    (tmp_path / "dist").mkdir()
    p = subprocess.run(["packer", "validate", "-var", f"base_image={tmp_path}/base.qcow2",
                        "-var", f"one_apps_dir={one_apps}", "-var", f"dist_dir={tmp_path}/dist",
                        "slm-appliance.pkr.hcl"], cwd=PACKER, env=ENV, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    p = subprocess.run(["packer", "fmt", "-check", "slm-appliance.pkr.hcl"], cwd=PACKER,
                       env=ENV, capture_output=True, text=True)
    assert p.returncode == 0, "run: packer fmt packer/slm-appliance.pkr.hcl"


def test_packer_rejects_a_bad_variable(tmp_path: Path) -> None:
    if not shutil.which("packer"):
        pytest.skip("packer is not installed")
    p = subprocess.run(["packer", "validate", "-var", "disk_size=lots", "-var",
                        "base_image=x", "-var", "one_apps_dir=/nonexistent",
                        "slm-appliance.pkr.hcl"], cwd=PACKER, env=ENV, capture_output=True,
                       text=True)
    assert p.returncode != 0


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_shellcheck() -> None:
    root = Path(__file__).parent.parent
    scripts = sorted(str(p) for p in [*root.glob("packer/**/*.sh"), *root.glob("scripts/*.sh"),
                                      *root.glob("tests/**/*.sh"), root / ".ci/run"])
    p = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout
