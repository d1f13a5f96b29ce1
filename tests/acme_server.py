"""pebble + pebble-challtestsrv (Debian) on loopback, as a real ACME server for the tests."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx

from appliance.tls.selfsigned import make_selfsigned
from tests.ports import Block, reserve, wait_for

PEBBLE = (53, 55, 400, 401, 444)
"""challtestsrv DNS +53 and management +55, pebble ACME +400, management +401, tls-alpn +444."""


@dataclass
class Pebble:
    directory: str
    ca_file: Path
    management: str
    procs: list[subprocess.Popen[bytes]]
    log: BinaryIO
    ports: Block

    def root_pem(self) -> str:
        """pebble makes a new root at every start; fetch the current one."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        return httpx.get(f"{self.management}/roots/0", verify=ctx).text

    def stop(self) -> None:
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=10)
        self.log.close()
        self.ports.release()


def start_pebble(workdir: Path, http_port: int, nonce_reject: int = 0) -> Pebble:
    if not shutil.which("pebble"):
        raise RuntimeError("pebble is not installed (apt-get install pebble)")
    workdir.mkdir(parents=True, exist_ok=True)
    ports = reserve(PEBBLE)
    dns, mgmt_dns, acme, mgmt = (ports.port(n) for n in (53, 55, 400, 401))
    pair = make_selfsigned(["localhost", "127.0.0.1"], dt.datetime.now(dt.UTC))
    (workdir / "cert.pem").write_bytes(pair.cert_pem)
    (workdir / "key.pem").write_bytes(pair.key_pem)
    config = {"pebble": {
        "listenAddress": f"127.0.0.1:{acme}", "managementListenAddress": f"127.0.0.1:{mgmt}",
        "certificate": str(workdir / "cert.pem"), "privateKey": str(workdir / "key.pem"),
        "httpPort": http_port, "tlsPort": ports.port(444), "ocspResponderURL": "",
        "externalAccountBindingRequired": False}}
    (workdir / "pebble.json").write_text(json.dumps(config))
    log = open(workdir / "pebble.log", "ab")  # noqa: SIM115 (lives as long as the server)
    dns_srv = subprocess.Popen(
        ["pebble-challtestsrv", "-dns01", f"127.0.0.1:{dns}", "-http01", "", "-https01", "",
         "-tlsalpn01", "", "-management", f"127.0.0.1:{mgmt_dns}", "-defaultIPv4", "127.0.0.1",
         "-defaultIPv6", ""], stdout=log, stderr=log)
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": str(nonce_reject),
           "PEBBLE_AUTHZREUSE": "0"}
    pebble = subprocess.Popen(["pebble", "-config", str(workdir / "pebble.json"), "-dnsserver",
                               f"127.0.0.1:{dns}", "-strict=false"], stdout=log, stderr=log,
                              env=env)
    server = Pebble(f"https://127.0.0.1:{acme}/dir", workdir / "cert.pem",
                    f"https://127.0.0.1:{mgmt}", [pebble, dns_srv], log, ports)
    try:
        _wait_until_both_answer(server, mgmt_dns, workdir / "pebble.log")
    except RuntimeError:
        server.stop()
        raise
    return server


def _wait_until_both_answer(server: Pebble, mgmt_dns: int, log: Path) -> None:
    """Ready means: pebble's directory lists newNonce over TLS with its own certificate, and
    challtestsrv's management API takes a (harmless, already made) setting."""
    def dead() -> str | None:
        if any(p.poll() is not None for p in server.procs):
            return log.read_text(errors="replace")[-2000:]
        return None

    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    wait_for(lambda: "newNonce" in httpx.get(server.directory, verify=ctx, timeout=2).json(),
             "pebble", alive=dead)
    wait_for(lambda: httpx.post(f"http://127.0.0.1:{mgmt_dns}/set-default-ipv4",
                                json={"ip": "127.0.0.1"}, timeout=2).status_code == 200,
             "pebble-challtestsrv", alive=dead)
