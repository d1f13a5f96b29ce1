"""The model catalog (``catalog.yaml``) and memory estimates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from appliance.host.download import Progress, fetch_gguf
from appliance.host.paths import Layout
from appliance.host.site import Site

OVERHEAD_BYTES = 256 * 1024 * 1024  # compute buffers, runtime; measured RSS minus weights+KV
SLOT_BYTES = 4 * 1024 * 1024
"""Each request slot beyond the first (sampling and output buffers): llama-server RSS grew by
3.3 MiB (SmolLM2, 49k vocabulary) and 4.1 MiB (Gemma 3, 262k) per slot from 1 to 16 slots.
The KV cache does not grow: the context is split between the slots."""


@dataclass(frozen=True)
class CatalogModel:
    id: str
    name: str
    file: str
    url: str
    sha256: str
    size: int
    trained_context: int
    license: str
    kv_bytes_per_token: int
    chat_template: str | None = None

    def memory_estimate(self, context_size: int) -> int:
        """Bytes of RAM the engine needs: weights + f16 KV cache at ``context_size`` + overhead."""
        return estimate_memory(self.size, self.kv_bytes_per_token, context_size)


def estimate_memory(file_size: int, kv_bytes_per_token: int, context_size: int,
                    parallel: int = 1) -> int:
    return (file_size + kv_bytes_per_token * context_size + OVERHEAD_BYTES
            + SLOT_BYTES * max(0, parallel - 1))


@cache
def load_catalog() -> dict[str, CatalogModel]:
    text = resources.files("appliance.answers").joinpath("catalog.yaml").read_text(encoding="utf-8")
    entries = yaml.safe_load(text)["models"]
    return {e["id"]: CatalogModel(**e) for e in entries}


def fetch_model(layout: Layout, site: Site, entry: CatalogModel,
                on_progress: Callable[[Progress], None] | None = None) -> Path:
    """A catalog model into the models folder (resumable, sha256-checked), from the site's
    mirror when it has one (``model_mirror``: air-gapped sites), else its catalog URL."""
    url = f"{site.model_mirror.rstrip('/')}/{entry.file}" if site.model_mirror else entry.url
    return fetch_gguf(layout, url, entry.sha256, on_progress, entry.file, entry.size)
