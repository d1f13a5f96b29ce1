from __future__ import annotations

import struct
from pathlib import Path

import pytest

from appliance.errors import GGUFError
from appliance.host.paths import Layout
from appliance.host.sandbox import install_models
from appliance.plan.gguf import read_info


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    layout = Layout(tmp_path_factory.mktemp("m"))
    install_models(layout)
    return layout.map(layout.models_dir)


def test_smollm2_header(models: Path) -> None:
    info = read_info(models / "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert (info.architecture, info.context_length) == ("llama", 8192)
    assert info.chat_template and "im_start" in info.chat_template
    assert info.kv_bytes_per_token == 30 * 3 * (64 + 64) * 2


def test_gemma_base_model_has_no_template(models: Path) -> None:
    info = read_info(models / "gemma3-270m-q4_k_m.gguf")
    assert (info.architecture, info.context_length, info.chat_template) == ("gemma3", 32768, None)


def _header(kvs: bytes, n: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, 0, n) + kvs


def _kv_str(key: str, value: str) -> bytes:
    k, v = key.encode(), value.encode()
    return struct.pack("<Q", len(k)) + k + struct.pack("<I", 8) + struct.pack("<Q", len(v)) + v


def test_synthetic_header_and_skipped_arrays(tmp_path: Path) -> None:
    tokens = struct.pack("<Q", 6) + b"tokens" + struct.pack("<IIQ", 9, 8, 2)
    tokens += struct.pack("<Q", 1) + b"a" + struct.pack("<Q", 2) + b"bb"
    ctx = struct.pack("<Q", 19) + b"phi3.context_length" + struct.pack("<II", 4, 4096)
    data = _header(_kv_str("general.architecture", "phi3") + tokens + ctx, 3)
    (tmp_path / "x.gguf").write_bytes(data)
    info = read_info(tmp_path / "x.gguf")
    assert (info.architecture, info.context_length) == ("phi3", 4096)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "bad magic"), (b"GGML" + b"\0" * 20, "bad magic"),
    (b"GGUF" + struct.pack("<I", 9) + b"\0" * 16, "unsupported GGUF version"),
    (_header(b"", 0), "no general.architecture"),
    (_header(_kv_str("general.architecture", "llama")[:20], 1), "truncated")])
def test_broken_headers(tmp_path: Path, data: bytes, message: str) -> None:
    (tmp_path / "x.gguf").write_bytes(data)
    with pytest.raises(GGUFError, match=message):
        read_info(tmp_path / "x.gguf")
