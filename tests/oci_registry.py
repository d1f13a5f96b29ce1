"""A loopback OCI registry standing in for quay.io (nothing here reaches the internet).

Built from the documented registry v2 behaviour (distribution spec, and what quay.io does):
``/v2/<repo>/manifests/<digest>`` and ``/blobs/<digest>`` answer 401 with a
``WWW-Authenticate: Bearer realm=...,service=...`` challenge until the client presents the
anonymous token from ``realm``; blobs are served through a redirect (quay.io sends clients
to its CDN) and honour ``Range``. It serves a LocalAI-style backend image: an index pointing
at a linux/amd64 manifest whose layers put ``run.sh`` at the top (``FROM scratch`` image).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_stub import serve_http

TOKEN = "anonymous-pull-token"
REPO = "go-skynet/local-ai-backends"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer(files: dict[str, bytes], modes: dict[str, int] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid = len(data), (modes or {}).get(name, 0o644), 1000
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


@dataclass
class Image:
    """index -> manifest -> config + layers, every blob addressed by its sha256."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    index_digest: str = ""
    manifest_digest: str = ""

    @classmethod
    def backend(cls) -> Image:
        img = cls()
        run_sh = b"#!/bin/sh\nexec \"$(dirname \"$0\")/llama-cpp-fallback\" \"$@\"\n"
        layers = [layer({"run.sh": run_sh, "llama-cpp-fallback": b"\x7fELF stand-in",
                         "lib/ld.so": b"\x7fELF stand-in", "stale.txt": b"old"},
                        {"run.sh": 0o755, "llama-cpp-fallback": 0o755}),
                  layer({".wh.stale.txt": b"", "metadata.json": b'{"name": "llama-cpp"}'})]
        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": img.add(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": img.add(b), "size": len(b)} for b in layers],
        }).encode()
        img.manifest_digest = img.add(manifest)
        index = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "digest": img.manifest_digest, "size": len(manifest),
                           "platform": {"architecture": "amd64", "os": "linux"}}],
        }).encode()
        img.index_digest = img.add(index)
        return img

    def add(self, data: bytes) -> str:
        d = digest(data)
        self.blobs[d] = data
        return d

    def layer_digests(self) -> list[str]:
        manifest: dict[str, Any] = json.loads(self.blobs[self.manifest_digest])
        return [entry["digest"] for entry in manifest["layers"]]


@dataclass
class Registry:
    image: Image
    port: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def _handler(reg: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            reg.requests.append((self.path, dict(self.headers)))
            path = self.path.split("?")[0]
            if path == "/token":
                return self._send(200, json.dumps({"token": TOKEN}).encode())
            if path.startswith("/cdn/"):
                return self._blob(path.removeprefix("/cdn/"))
            prefix = f"/v2/{REPO}/"
            if not path.startswith(prefix):
                return self._send(404, b"{}")
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="http://{reg.host}/token",'
                                 f'service="{reg.host}",scope="repository:{REPO}:pull"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            kind, _, ref = path.removeprefix(prefix).partition("/")
            if kind == "blobs":
                self.send_response(307)
                self.send_header("Location", f"http://{reg.host}/cdn/{ref}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if kind == "manifests" and ref in reg.image.blobs:
                media = json.loads(reg.image.blobs[ref]).get("mediaType", "")
                return self._send(200, reg.image.blobs[ref], media)
            return self._send(404, b"{}")

        def _blob(self, ref: str) -> None:
            data = reg.image.blobs.get(ref)
            if data is None:
                return self._send(404, b"{}")
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes="):
                start = int(rng.removeprefix("bytes=").rstrip("-"))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                data = data[start:]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return None

        def _send(self, code: int, body: bytes, media: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", media)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextmanager
def serve(image: Image) -> Iterator[Registry]:
    reg = Registry(image)
    with serve_http(_handler(reg)) as port:
        reg.port = port
        yield reg
