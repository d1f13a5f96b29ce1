"""Every kind of bad input: exit 2, a message naming the field and the fix, nothing changed.

Run against the live sandbox so "nothing changed" is checked on a real installation.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Stack, tree_hashes, wizard
from wizard.cli import main

WRONG_SHA = "0" * 64
CASES: list[tuple[str, str, str]] = [
    ("malformed-yaml", "engine: [llama-server\n", "(file): malformed YAML"),
    ("empty-file", "", "(file): the file is empty"),
    ("only-comments", "# nothing\n", "(file): the file is empty"),
    ("not-a-mapping", "- engine\n- model\n", "(file): expected a mapping"),
    ("unknown-key", "modle:\n  id: x\n", "modle: unknown key (fix: did you mean 'model'?"),
    ("unknown-nested-key", "model:\n  contex_size: 2048\n", "model.contex_size: unknown key"),
    ("bad-version", "version: 2\n", "version: unsupported schema version"),
    ("unknown-engine", "engine: vllm\n", "engine: unknown engine 'vllm'"),
    ("engine-not-installed", "engine: localai\n", "engine: localai is not installed"),
    ("id-path-traversal", "model:\n  id: ../../etc/passwd\n", "model.id: invalid model id"),
    ("id-slash", "model:\n  id: phi/3\n", "model.id: invalid model id"),
    ("id-not-in-catalog", "model:\n  id: no-such-model\n", "model.id: 'no-such-model' is not in"),
    ("model-not-mapping", "model: phi3\n", "model: must be a mapping"),
    ("context-not-int", "model:\n  context_size: big\n", "model.context_size: must be a whole"),
    ("context-too-small", "model:\n  context_size: 100\n", "model.context_size: 100 is out of"),
    ("context-over-trained", "model:\n  context_size: 16384\n",
     "model.context_size: 16384 exceeds the model's trained context 8192"),
    ("context-bool", "model:\n  context_size: true\n", "model.context_size: must be a whole"),
    ("threads-zero", "threads: 0\n", "threads: 0 is out of range"),
    ("threads-word", "threads: many\n", "threads: must be a whole number"),
    ("threads-over-cpus", "threads: 999\n", "threads: 999 threads but this VM has"),
    ("parallel-zero", "parallel: 0\n", "parallel: 0 is out of range"),
    ("parallel-starves-slots", "parallel: 16\n", "parallel: 16 slots leave 128 tokens"),
    ("api-key-short", "api_key: short\n", "api_key: an explicit key must be 32-256"),
    ("api-key-number", "api_key: 12345\n", "api_key: must be a string"),
    ("api-key-bad-chars", f"api_key: \"{'a' * 31}$\"\n", "api_key: an explicit key"),
    ("tls-mode", "tls:\n  mode: acme\n", "tls.mode: unknown mode 'acme'"),
    ("letsencrypt-no-domain", "tls:\n  mode: letsencrypt\n", "tls.domain: letsencrypt needs"),
    ("domain-wildcard", "tls:\n  domain: '*.example.com'\n", "tls.domain: wildcards need DNS-01"),
    ("domain-invalid", "tls:\n  domain: not a domain\n", "tls.domain: 'not a domain' is not"),
    ("domain-ip", "tls:\n  domain: 192.0.2.10\n", "tls.domain: '192.0.2.10' is not a valid"),
    ("email", "tls:\n  email: nope\n", "tls.email: 'nope' is not an e-mail"),
    ("acme-http", "tls:\n  acme_directory: http://acme.test/dir\n",
     "tls.acme_directory: must be an https:// URL"),
    ("acme-ca-missing", "tls:\n  acme_ca_bundle: /nowhere/ca.pem\n",
     "tls.acme_ca_bundle: /nowhere/ca.pem does not exist"),
    ("listen-no-port", "listen:\n  https: '443'\n", "listen.https: '443': expected HOST:PORT"),
    ("listen-hostname", "listen:\n  https: localhost:443\n", "listen.https: 'localhost:443'"),
    ("listen-port-range", "listen:\n  http: 0.0.0.0:70000\n", "listen.http: '0.0.0.0:70000'"),
    ("engine-public", "listen:\n  engine: 0.0.0.0:8080\n", "listen.engine: 0.0.0.0 is not a loop"),
    ("ports-conflict", "listen:\n  https: 127.0.0.1:9443\n  http: 127.0.0.1:9443\n",
     "listen.http: port 9443 is also used by listen.https"),
    ("path-relative", "model:\n  path: models/x.gguf\n", "model.path: 'models/x.gguf' is not an"),
    ("path-missing", "model:\n  path: /opt/slm-appliance/models/none.gguf\n",
     "model.path: model file /opt/slm-appliance/models/none.gguf does not exist"),
    ("path-not-gguf", "model:\n  path: /etc/slm-appliance/site.yaml\n",
     "model.path: /etc/slm-appliance/site.yaml is not a usable GGUF: not a GGUF file"),
    ("sha256-format", "model:\n  sha256: xyz\n", "model.sha256: must be 64 hexadecimal"),
    ("sha256-wrong", "model:\n  id: smollm2-135m-instruct-q4_1\n  sha256: '" + WRONG_SHA + "'\n",
     "model.sha256: /opt/slm-appliance/models/SmolLM2-135M-Instruct.Q4_1.gguf has sha256"),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES],
                         ids=[c[0] for c in CASES])
def test_invalid_answers_change_nothing(stack: Stack, tmp_path: Path, text: str, expected: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text(text)
    before = tree_hashes(stack.root)
    for mode in ("--validate", "--apply"):
        code = main(["--root", str(stack.root), mode, str(path)])
        out, err = capsys.readouterr()
        assert code == 2, (mode, out, err)
        assert expected in err, err
        assert "Traceback" not in err + out
        assert "nothing was changed" in err
    assert tree_hashes(stack.root) == before


def test_all_problems_are_reported_at_once(stack: Stack, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("engine: vllm\nthreads: 0\ntls:\n  mode: x\nlisten:\n  engine: 0.0.0.0:1\n")
    assert main(["--root", str(stack.root), "--validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "4 problem(s)" in err
    for field in ("engine:", "threads:", "tls.mode:", "listen.engine:"):
        assert field in err


def test_not_utf8_and_missing_file(stack: Stack, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "answers.yaml"
    path.write_bytes(b"engine: \xff\xfe\n")
    assert main(["--root", str(stack.root), "--apply", str(path)]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    assert main(["--root", str(stack.root), "--apply", str(tmp_path / "none.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_valid_file_validates(stack: Stack, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("threads: 1\nmodel:\n  context_size: 1024\n")
    before = tree_hashes(stack.root)
    assert main(["--root", str(stack.root), "--validate", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    assert tree_hashes(stack.root) == before


def test_a_hand_broken_applied_file_stops_context_not_the_stack(stack: Stack) -> None:
    """What the next boot's configure step meets after a bad hand edit: a refusal naming the
    field and the fix, and the stack still serving what it served."""
    path = stack.layout.map(stack.layout.applied_answers)
    good = path.read_text()
    assert "context_size: 2048" in good
    pids = (stack.services.pid(stack.engine_unit()), stack.services.pid("nginx.service"))
    assert all(pids)
    path.write_text(good.replace("context_size: 2048", "context_size: 0"))
    try:
        before = tree_hashes(stack.root)
        p = wizard("--root", str(stack.root), "context")
        assert p.returncode == 2, p.stdout + p.stderr
        assert "answers.applied.yaml: 1 problem(s), nothing was changed" in p.stderr
        assert "model.context_size: 0 is out of range 256-131072 (fix: use e.g. 4096" in p.stderr
        assert "run 'wizard'" in p.stderr and "Traceback" not in p.stderr
        assert tree_hashes(stack.root) == before
        assert (stack.services.pid(stack.engine_unit()),
                stack.services.pid("nginx.service")) == pids
        with stack.client() as c:
            assert c.get("/v1/models", headers=stack.auth()).status_code == 200
    finally:
        path.write_text(good)
