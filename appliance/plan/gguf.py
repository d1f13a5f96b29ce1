"""Read the few GGUF header keys we need without loading vocabularies (milliseconds, stdlib only).

Big arrays (token lists, scores, merges) are skipped by seeking, as LocalAI's
``SkipLargeMetadata`` does; numpy-based readers walk every element (over a second for Phi-3).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from appliance.errors import GGUFError

MAGIC = b"GGUF"
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
            10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_KEYS = 100_000
_MAX_STRING = 16 * 1024 * 1024  # chat templates are a few KB; refuse absurd lengths


@dataclass(frozen=True)
class GGUFInfo:
    architecture: str
    name: str | None
    context_length: int | None
    chat_template: str | None
    block_count: int | None
    head_count_kv: int | None
    embedding_length: int | None
    head_count: int | None
    key_length: int | None = None
    value_length: int | None = None

    @property
    def kv_bytes_per_token(self) -> int | None:
        """f16 K+V bytes per token of context, if the header has the shape."""
        if not (self.block_count and self.embedding_length and self.head_count):
            return None
        kv_heads = self.head_count_kv or self.head_count
        head_dim = self.embedding_length // self.head_count
        k = self.key_length or head_dim
        v = self.value_length or head_dim
        return self.block_count * kv_heads * (k + v) * 2


def _read(f: BinaryIO, fmt: str) -> object:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise GGUFError("truncated header")
    return struct.unpack(fmt, data)[0]


def _read_str(f: BinaryIO) -> str:
    n = int(_read(f, "<Q"))  # type: ignore[call-overload]
    if n > _MAX_STRING:
        raise GGUFError("string too long in header")
    data = f.read(n)
    if len(data) != n:
        raise GGUFError("truncated header")
    return data.decode("utf-8", errors="replace")


def _skip_or_read(f: BinaryIO, vtype: int, keep: bool) -> object:
    if vtype in _SCALARS:
        return _read(f, _SCALARS[vtype])
    if vtype == _STRING:
        if keep:
            return _read_str(f)
        n = int(_read(f, "<Q"))  # type: ignore[call-overload]
        f.seek(n, 1)
        return None
    if vtype == _ARRAY:
        etype = int(_read(f, "<I"))  # type: ignore[call-overload]
        count = int(_read(f, "<Q"))  # type: ignore[call-overload]
        if etype in _SCALARS:
            f.seek(count * struct.calcsize(_SCALARS[etype]), 1)
        else:
            for _ in range(count):
                _skip_or_read(f, etype, keep=False)
        return None
    raise GGUFError(f"unknown metadata value type {vtype}")


def read_info(path: Path) -> GGUFInfo:
    """Architecture, trained context, chat template and KV shape from a GGUF header."""
    wanted_suffixes = (".context_length", ".block_count", ".attention.head_count_kv",
                       ".embedding_length", ".attention.head_count", ".attention.key_length",
                       ".attention.value_length")
    values: dict[str, object] = {}
    try:
        with open(path, "rb") as f:
            if f.read(4) != MAGIC:
                raise GGUFError("not a GGUF file (bad magic)")
            version = int(_read(f, "<I"))  # type: ignore[call-overload]
            if version not in (2, 3):
                raise GGUFError(f"unsupported GGUF version {version}")
            _read(f, "<Q")
            n_kv = int(_read(f, "<Q"))  # type: ignore[call-overload]
            if n_kv > _MAX_KEYS:
                raise GGUFError("implausible metadata count")
            for _ in range(n_kv):
                key = _read_str(f)
                vtype = int(_read(f, "<I"))  # type: ignore[call-overload]
                keep = key in ("general.architecture", "general.name", "tokenizer.chat_template")
                keep = keep or key.endswith(wanted_suffixes)
                value = _skip_or_read(f, vtype, keep)
                if keep:
                    values[key] = value
    except OSError as exc:
        raise GGUFError(f"cannot read: {exc.strerror}") from None
    arch = values.get("general.architecture")
    if not isinstance(arch, str):
        raise GGUFError("no general.architecture in header")

    def num(suffix: str) -> int | None:
        v = values.get(f"{arch}.{suffix}")
        return int(v) if isinstance(v, int) and not isinstance(v, bool) else None

    name = values.get("general.name")
    template = values.get("tokenizer.chat_template")
    return GGUFInfo(
        architecture=arch,
        name=name if isinstance(name, str) else None,
        context_length=num("context_length"),
        chat_template=template if isinstance(template, str) and template.strip() else None,
        block_count=num("block_count"),
        head_count_kv=num("attention.head_count_kv"),
        embedding_length=num("embedding_length"),
        head_count=num("attention.head_count"),
        key_length=num("attention.key_length"),
        value_length=num("attention.value_length"),
    )
