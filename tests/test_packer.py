"""The image definition: `packer validate` and `packer fmt -check` (Debian's Packer 1.6.6, the
strongest offline check it offers), and shellcheck on every shell script we ship."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.lifecycle.framework import one_apps_dir

ROOT = Path(__file__).parent.parent
PACKER = ROOT / "packer"
ENV = {**os.environ, "CHECKPOINT_DISABLE": "1"}
FRAMEWORK = ["appliances/service.sh", "appliances/lib/common.sh", "appliances/lib/functions.sh",
             "appliances/scripts/net-90-service-appliance",
             "appliances/scripts/net-99-report-ready"]


@pytest.mark.skipif(not shutil.which("packer"), reason="packer is not installed")
def test_packer_validate_and_fmt(tmp_path: Path) -> None:
    one_apps = one_apps_dir()  # the vendored framework; else stand-ins (validate only checks
    if one_apps is None:       # that the provisioners' source files exist)
        one_apps = tmp_path / "one-apps"
        for rel in FRAMEWORK:
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


def _sshd() -> tuple[Path, dict[str, str]] | None:
    """Debian's sshd, unpacked (not installed: no service starts) by scripts/setup.sh."""
    unpacked = Path(os.environ.get("SLM_CACHE", Path.home() / ".cache/slm-appliance")) / "openssh"
    sshd = unpacked / "usr/sbin/sshd"
    if not sshd.exists():
        return None
    return sshd, {**os.environ, "LD_LIBRARY_PATH": str(unpacked / "usr/lib/x86_64-linux-gnu")}


def test_image_sshd_refuses_passwords_and_root_passwords(tmp_path: Path) -> None:
    """reset_sshd (service install, as one-apps' 81-configure-ssh.sh) against Debian's own
    sshd_config plus the cloud-init drop-in that enables passwords, checked by `sshd -T`. sshd
    needs its privilege-separation user and /run/sshd: both exist only inside a private user
    and mount namespace (unshare), so the host is untouched."""
    found = _sshd()
    if found is None or not shutil.which("unshare"):
        pytest.skip("no unpacked sshd (scripts/setup.sh) or no unshare")
    sshd, env = found
    etc = tmp_path / "ssh"
    (etc / "sshd_config.d").mkdir(parents=True)
    default = (sshd.parent.parent / "share/openssh/sshd_config").read_text()
    (etc / "sshd_config").write_text(default.replace("/etc/ssh/", f"{etc}/"))
    (etc / "sshd_config.d/50-cloud-init.conf").write_text("PasswordAuthentication yes\n")
    keygen = sshd.parent.parent / "bin/ssh-keygen"
    subprocess.run([str(keygen) if keygen.exists() else "ssh-keygen", "-q", "-t", "ed25519",
                    "-N", "", "-f", str(etc / "host")], check=True)
    passwd = tmp_path / "passwd"
    passwd.write_text(Path("/etc/passwd").read_text() + "sshd:x:64999:65534::/run/sshd:/bin/no\n")
    sshd_t = (f"unshare -rm sh -c 'mount --bind {passwd} /etc/passwd && mount -t tmpfs tmpfs /run"
              f" && mkdir /run/sshd && {sshd} -T -f {etc}/sshd_config -h {etc}/host'")
    script = (f". {ROOT}/packer/appliance/slm-appliance.sh; "
              "msg() { echo \"$*\"; [ \"$1\" != error ]; }; ")
    before = subprocess.run(["bash", "-c", script + f"check_sshd {sshd_t}"], env=env,
                            capture_output=True, text=True)
    assert before.returncode == 1 and "passwordauthentication yes" in before.stdout
    after = subprocess.run(["bash", "-c", script + f"reset_sshd && check_sshd {sshd_t}"],
                           env={**env, "SLM_SSHD_DIR": str(etc)}, capture_output=True, text=True)
    assert after.returncode == 0, after.stdout + after.stderr
    assert not (etc / "sshd_config.d/50-cloud-init.conf").exists()
