"""Model downloads: free-space check, resume with HTTP Range, sha256 while streaming, progress,
and a rename only after the digest matches, so a partial file never replaces a model."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from appliance.errors import DownloadError

from .paths import Layout

CHUNK = 1 << 20
HEADROOM = 256 << 20  # keep some disk free for logs and the OS


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None
    speed: float  # bytes/s over the whole transfer
    eta_s: float | None

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None


def download(client: httpx.Client, url: str, dest: Path, sha256: str, size: int | None = None,
             on_progress: Callable[[Progress], None] | None = None,
             clock: Callable[[], float] = time.monotonic) -> Path:
    """Fetch ``url`` into ``dest`` (``dest.part`` while incomplete); resumable."""
    sha256 = sha256.lower()
    if dest.exists():
        raise DownloadError(f"{dest} already exists: remove it first or choose another name")
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if size is not None:
        free = shutil.disk_usage(dest.parent).free
        need = size - have + HEADROOM
        if free < need:
            raise DownloadError(f"not enough disk space in {dest.parent}: {need >> 20} MiB "
                                f"needed, {free >> 20} MiB free")
    digest = hashlib.sha256()
    if have:
        with open(part, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
    headers = {"Range": f"bytes={have}-"} if have else {}
    start, fetched = clock(), 0
    try:
        with client.stream("GET", url, headers=headers, follow_redirects=True) as r:
            if r.status_code == 416 and size is not None and have >= size:
                pass  # already complete
            elif have and r.status_code == 200:
                raise DownloadError("the server does not support resuming (no HTTP Range); "
                                    f"delete {part} to start over")
            elif r.status_code not in (200, 206):
                raise DownloadError(f"{url}: HTTP {r.status_code}")
            else:
                length = r.headers.get("content-length")
                total = have + int(length) if length else size
                with open(part, "ab") as f:
                    for block in r.iter_bytes():  # as received: a cut keeps what came
                        f.write(block)
                        digest.update(block)
                        fetched += len(block)
                        if on_progress:
                            elapsed = max(clock() - start, 1e-6)
                            speed = fetched / elapsed
                            left = (total - have - fetched) / speed if total and speed else None
                            on_progress(Progress(have + fetched, total, speed, left))
                    f.flush()
                    os.fsync(f.fileno())
    except httpx.HTTPError as exc:
        raise DownloadError(f"download interrupted after {(have + fetched) >> 20} MiB "
                            f"({type(exc).__name__}); run it again to resume") from None
    got = digest.hexdigest()
    if got != sha256:
        part.unlink(missing_ok=True)
        raise DownloadError(f"sha256 mismatch for {url}: got {got[:16]}..., expected "
                            f"{sha256[:16]}...; the partial file was removed")
    os.chmod(part, 0o644)
    os.replace(part, dest)
    return dest


def fetch_gguf(layout: Layout, url: str, sha256: str,
               on_progress: Callable[[Progress], None] | None = None, name: str | None = None,
               size: int | None = None) -> Path:
    """Any GGUF by URL and sha256 into the models folder; returns its appliance path."""
    if not url.startswith(("https://", "http://")):
        raise DownloadError(f"{url}: only http(s) URLs can be downloaded here")
    if not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise DownloadError("give the file's sha256 (64 hexadecimal characters)")
    name = name or url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*\.gguf", name):
        raise DownloadError(f"{name!r} is not a .gguf file name")
    path = f"{layout.models_dir}/{name}"
    with httpx.Client(timeout=60) as client:
        download(client, url, layout.map(path), sha256, size, on_progress)
    return Path(path)

