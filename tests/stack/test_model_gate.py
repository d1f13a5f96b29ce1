"""One model is served: a request naming another gets a 400 JSON naming the served one, in
nginx (njs) before any engine sees it; the rest passes through, streams included."""

from __future__ import annotations

import pytest

from tests.conftest import SMOLLM, Stack

pytestmark = pytest.mark.stack
CHAT = {"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4}


def test_another_model_gets_a_400_naming_the_served_one(stack: Stack) -> None:
    if not (stack.root / "etc/nginx/slm-model-gate.js").exists():
        pytest.skip("no njs module (Debian libnginx-mod-http-js; scripts/setup.sh installs it)")
    with stack.client() as c:
        for route, body in (("chat/completions", {**CHAT, "model": "gpt-4o"}),
                            ("completions", {"prompt": "Hi", "model": "llama3", "stream": True}),
                            ("embeddings", {"input": "x", "model": "text-embedding-3-small"})):
            r = c.post(f"/v1/{route}", headers=stack.auth(), json=body)
            assert r.status_code == 400, (route, r.text)
            error = r.json()["error"]
            assert error["code"] == "model_not_found" and error["param"] == "model"
            assert SMOLLM in error["message"] and str(body["model"]) in error["message"]
        # The key is still checked first: no key, no hint about the model.
        assert c.post("/v1/chat/completions", json={**CHAT, "model": "x"}).status_code == 401
        for body in ({**CHAT, "model": SMOLLM}, CHAT):  # the served id, or none: served
            r = c.post("/v1/chat/completions", headers=stack.auth(), json=body)
            assert r.status_code == 200, r.text
        with c.stream("POST", "/v1/chat/completions", headers=stack.auth(),
                      json={**CHAT, "model": SMOLLM, "stream": True}) as r:
            assert r.status_code == 200
            assert any(line == "data: [DONE]" for line in r.iter_lines())
        assert c.get("/v1/models", headers=stack.auth()).json()["data"][0]["id"] == SMOLLM


def test_body_limit_is_the_same_for_the_gate_and_nginx(stack: Stack) -> None:
    big = "x" * (17 << 20)
    with stack.client() as c:
        r = c.post("/v1/chat/completions", headers=stack.auth(),
                   content=b'{"model": "' + big.encode() + b'"}')
    assert r.status_code == 413 and r.json()["error"]["type"] == "invalid_request_error"
