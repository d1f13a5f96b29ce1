"""LocalAI's llama-cpp backend, pinned by digest: pulled from an OCI registry on the build host,
unpacked into LocalAI's backends path in the image, with nothing fetched at run time.

LocalAI (>= 3.2) ships no llama.cpp: the backend is an OCI image (``quay.io/go-skynet/
local-ai-backends:vX.Y.Z-cpu-llama-cpp``, ``FROM scratch`` + ``run.sh`` at its top), which a
plain ``curl`` of the reference cannot fetch. ``pull`` speaks the registry API (anonymous
bearer token, manifest by digest, blobs), verifies every byte against the pinned digest, and
writes an OCI image layout folder; ``unpack`` checks the same digests again and extracts the
layers into ``<backends>/llama-cpp``, which LocalAI lists as a system backend because
``run.sh`` sits at its top. A partial blob download resumes with a Range request.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from appliance.errors import SetupError


def _error(message: str, fix: str) -> SetupError:
    return SetupError(f"{message} (fix: {fix})")

MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"))
INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
REF = re.compile(r"^(?P<registry>[^/]+)/(?P<repo>[^@:]+(?:/[^@:]+)*)(?::[^@]+)?"
                 r"@(?P<digest>sha256:[0-9a-f]{64})$")
CHUNK = 1 << 20
# Python's own extraction checks where it has them (3.11.4+), on top of _safe_members.
_FILTER: dict[str, Any] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    digest: str  # sha256:<hex> of the manifest (or index) bytes: pins every layer

    @classmethod
    def parse(cls, text: str) -> Reference:
        m = REF.match(text)
        if not m:
            raise _error(f"{text!r} is not pinned by digest",
                             "write it as REGISTRY/REPO[:TAG]@sha256:<64 hex digits>")
        return cls(m["registry"], m["repo"], m["digest"])


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return "sha256:" + h.hexdigest()


class Registry:
    """The registry v2 API with the anonymous token dance (quay.io, Docker Hub, ghcr.io)."""

    def __init__(self, ref: Reference, client: httpx.Client, scheme: str = "https") -> None:
        self.ref, self.client = ref, client
        self.base = f"{scheme}://{ref.registry}/v2/{ref.repository}"
        self.headers: dict[str, str] = {}

    def get(self, path: str, **headers: str) -> httpx.Response:
        r = self.client.get(f"{self.base}/{path}", headers={**self.headers, **headers},
                            follow_redirects=True)
        if r.status_code == 401 and "Authorization" not in self.headers:
            self.headers["Authorization"] = f"Bearer {self._token(r)}"
            r = self.client.get(f"{self.base}/{path}", headers={**self.headers, **headers},
                                follow_redirects=True)
        return r

    def _token(self, challenge: httpx.Response) -> str:
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge.headers.get("www-authenticate", "")))
        if "realm" not in params:
            raise _error(f"{self.ref.registry} wants credentials it does not describe",
                             "check the registry name")
        query = {"scope": f"repository:{self.ref.repository}:pull"}
        if "service" in params:
            query["service"] = params["service"]
        r = self.client.get(params["realm"], params=query)
        r.raise_for_status()
        body = r.json()
        return str(body.get("token") or body.get("access_token"))

    def manifest(self, digest: str) -> tuple[dict[str, Any], bytes]:
        r = self.get(f"manifests/{digest}", Accept=MANIFEST_TYPES)
        if r.status_code != 200:
            raise _error(f"{self.ref.registry}: manifest {digest} -> HTTP {r.status_code}",
                             "check the pinned digest and that the registry is reachable")
        if _sha256(r.content) != digest:
            raise _error(f"manifest {digest} does not match its digest",
                             "the registry served other bytes: do not use this image")
        return json.loads(r.content), r.content

    def blob(self, digest: str, dest: Path) -> None:
        """Download a blob to dest, resuming dest.part, and verify its digest."""
        if dest.exists() and _file_digest(dest) == digest:
            return
        part = dest.with_name(dest.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        with self.client.stream("GET", f"{self.base}/blobs/{digest}", follow_redirects=True,
                                headers={**self.headers,
                                         **({"Range": f"bytes={have}-"} if have else {})}) as r:
            if r.status_code not in (200, 206):
                raise _error(f"blob {digest} -> HTTP {r.status_code}",
                                 "retry; the download resumes where it stopped")
            with part.open("ab" if r.status_code == 206 else "wb") as f:
                for block in r.iter_bytes(CHUNK):
                    f.write(block)
        if _file_digest(part) != digest:
            part.unlink()
            raise _error(f"blob {digest} does not match its digest",
                             "the download was corrupted or tampered with: retry")
        part.replace(dest)


def _platform_manifest(index: dict[str, Any]) -> str:
    for m in index.get("manifests", []):
        p = m.get("platform", {})
        if p.get("os") == "linux" and p.get("architecture") == "amd64":
            return str(m["digest"])
    raise _error("the image index has no linux/amd64 manifest", "pin an amd64 image")


def pull(ref: Reference, layout: Path, client: httpx.Client, scheme: str = "https") -> None:
    """Write an OCI image layout (oci-layout, index.json, blobs/sha256/*) pinned by ref."""
    reg = Registry(ref, client, scheme)
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    manifest, top = reg.manifest(ref.digest)
    (blobs / ref.digest.split(":")[1]).write_bytes(top)
    digest, raw = ref.digest, top
    if manifest.get("mediaType") in INDEX_TYPES or "manifests" in manifest:
        digest = _platform_manifest(manifest)
        manifest, raw = reg.manifest(digest)
        (blobs / digest.split(":")[1]).write_bytes(raw)
    for d in [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]:
        reg.blob(d, blobs / d.split(":")[1])
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}\n')
    (layout / "index.json").write_text(json.dumps({
        "schemaVersion": 2, "manifests": [{"digest": ref.digest, "size": len(top)}]}))


def _verified(layout: Path, digest: str) -> Path:
    path = layout / "blobs" / "sha256" / digest.split(":")[1]
    if not path.is_file() or _file_digest(path) != digest:
        raise _error(f"{layout}: blob {digest} is missing or does not match its digest",
                         "pull the backend again (python -m appliance.host.oci pull)")
    return path


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    members = []
    for m in tar.getmembers():
        name = PurePosixPath(m.name)
        if name.is_absolute() or ".." in name.parts or m.isdev():
            raise _error(f"backend layer has an unsafe entry {m.name!r}", "do not use it")
        if m.issym() and (PurePosixPath(m.linkname).is_absolute() or ".." in
                          PurePosixPath(m.linkname).parts):
            continue  # links leaving the folder are dropped (FROM scratch images need none)
        if name.name.startswith(".wh."):  # OCI whiteout: a lower layer's file is deleted
            target = dest / name.parent / name.name.removeprefix(".wh.")
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else \
                target.unlink(missing_ok=True)
            continue
        m.uid = m.gid = 0
        m.uname = m.gname = "root"
        members.append(m)
    return members


def unpack(layout: Path, digest: str, dest: Path) -> None:
    """Extract the image pinned by digest into dest; refuse it unless run.sh is at the top."""
    manifest = json.loads(_verified(layout, digest).read_bytes())
    if "manifests" in manifest:
        manifest = json.loads(_verified(layout, _platform_manifest(manifest)).read_bytes())
    work = dest.with_name(dest.name + ".new")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True, mode=0o755)
    for layer in manifest["layers"]:
        with tarfile.open(_verified(layout, layer["digest"])) as tar:  # gzip or plain
            tar.extractall(work, members=_safe_members(tar, work), **_FILTER)
    if not (work / "run.sh").is_file():
        shutil.rmtree(work)
        raise _error("the backend image has no run.sh at its top",
                         "pin a LocalAI backend image (…-cpu-llama-cpp)")
    (work / "run.sh").chmod(0o755)
    shutil.rmtree(dest, ignore_errors=True)
    work.replace(dest)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m appliance.host.oci", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("pull", help="REF@sha256:... into an OCI layout folder")
    pl.add_argument("reference")
    pl.add_argument("layout", type=Path)
    up = sub.add_parser("unpack", help="an OCI layout folder into a backend folder")
    up.add_argument("layout", type=Path)
    up.add_argument("digest")
    up.add_argument("dest", type=Path)
    args = p.parse_args(argv)
    try:
        if args.command == "pull":
            with httpx.Client(timeout=60) as client:
                pull(Reference.parse(args.reference), args.layout, client)
        else:
            unpack(args.layout, args.digest, args.dest)
    except (SetupError, httpx.HTTPError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
