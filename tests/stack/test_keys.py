"""Named keys on the real stack (nginx + llama-server + SmolLM2): every key works, a revoke
takes effect in one apply while a stream under that key finishes, limits answer 429 JSON with
Retry-After, usage counts match, no secret leaks, bad commands change nothing. The engine
never restarts."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from appliance.keys.usage import NO_KEY
from tests.conftest import Stack, tree_hashes, wizard

pytestmark = pytest.mark.stack
SECRET_FILES = ("etc/slm-appliance/api_key", "etc/slm-appliance/keys.json",
                "etc/nginx/slm-api-key.conf", "etc/slm-appliance/client-setup.txt")
"""0600 files that exist to hold keys (the wizard's Done step saves the client set-up)."""


def _stream_body(tokens: int) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "Tell a long story."}], "stream": True,
            "max_tokens": tokens, "ignore_eos": True, "temperature": 0}


@dataclass
class Keys:
    stack: Stack
    secrets: dict[str, str] = field(default_factory=dict)
    revoked: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    """Secrets replaced by a rotation: refused, and never to be found anywhere either."""
    sent: Counter[str] = field(default_factory=Counter)
    limited: Counter[str] = field(default_factory=Counter)
    """429s received per key: nginx counts each as rate limited."""
    numbers: dict[str, float] = field(default_factory=dict)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return wizard("--root", str(self.stack.root), *args)

    def add(self, name: str, *opts: str) -> str:
        p = self.cli("key", "add", name, *opts)
        assert p.returncode == 0, p.stdout + p.stderr
        secret = p.stdout.splitlines()[1].strip()
        self.secrets[name] = secret
        return secret

    def auth(self, name: str) -> dict[str, str]:
        secret = self.stack.key() if name == "default" else self.secrets[name]
        return {"Authorization": f"Bearer {secret}"}

    def stream_tokens(self, seconds: float = 15) -> int:
        """Enough tokens to stream for at least ``seconds`` even if the engine gets three times
        faster than measured now (a shared machine's load drops), within one slot's context."""
        if "tokens" not in self.numbers:
            with self.stack.client(timeout=300) as c:
                r = c.post("/v1/chat/completions", headers=self.auth("default"),
                           json={**_stream_body(16), "stream": False})
            self.sent["default"] += 1
            rate = float(r.json()["timings"]["predicted_per_second"])
            self.numbers["tokens"] = max(48, min(900, int(3 * rate * seconds)))
        return int(self.numbers["tokens"])

    def get(self, name: str, path: str = "/v1/models") -> httpx.Response:
        with self.stack.client() as c:
            r = c.get(path, headers=self.auth(name))
        self.sent[NO_KEY if r.status_code == 401 else name] += 1  # how nginx logs it
        self.limited[name] += r.status_code == 429
        return r


class Stream(threading.Thread):
    """A chat stream in the background: status, events seen, whether [DONE] came."""

    def __init__(self, keys: Keys, name: str, tokens: int) -> None:
        super().__init__(daemon=True)
        self.keys, self.name, self.tokens = keys, name, tokens
        self.status = 0
        self.events = 0
        self.done = False
        self.started = threading.Event()
        self.finished_at = 0.0
        self.body = ""

    def run(self) -> None:
        with self.keys.stack.client(timeout=300) as c, c.stream(
                "POST", "/v1/chat/completions", json=_stream_body(self.tokens),
                headers=self.keys.auth(self.name)) as r:
            self.status = r.status_code
            for line in r.iter_lines():
                self.body += line + "\n"
                if line.startswith("data: "):
                    self.events += 1
                    self.started.set()
                    self.done = self.done or line == "data: [DONE]"
        self.keys.sent[self.name] += 1
        self.keys.limited[self.name] += self.status == 429
        self.started.set()
        self.finished_at = time.monotonic()


@pytest.fixture(scope="module")
def keys(stack: Stack) -> Iterator[Keys]:
    stack.baseline()
    k = Keys(stack)
    yield k
    for name in list(k.secrets):
        if name not in k.revoked:
            k.cli("key", "revoke", name)


def _engine_pid(stack: Stack) -> int | None:
    return stack.services.pid(stack.engine_unit())  # engine changes alternate two instances


def test_named_keys_and_default_work_and_revoke_takes_one_apply(keys: Keys) -> None:
    pid = _engine_pid(keys.stack)
    assert pid
    t0 = time.monotonic()
    keys.add("alice")
    keys.numbers["add_s"] = time.monotonic() - t0
    keys.add("bob")
    for name in ("alice", "bob", "default"):
        assert keys.get(name).status_code == 200, name
    stream = Stream(keys, "alice", keys.stream_tokens())
    stream.start()
    assert stream.started.wait(120) and stream.status == 200
    t0 = time.monotonic()
    revoke = subprocess.Popen([sys.executable, "-m", "wizard", "--root", str(keys.stack.root),
                               "key", "revoke", "alice"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    while (r := keys.get("alice")).status_code == 200 and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    first_401 = time.monotonic()
    keys.numbers["revoke_to_401_s"] = first_401 - t0
    # The revoke is live (new workers answer 401) while the stream runs on an old worker. Not
    # asked: that it outlives the command too, which waits up to 5 s for the old workers.
    in_flight = stream.is_alive()
    out, err = revoke.communicate(timeout=120)
    revoked_at = time.monotonic()
    keys.numbers["revoke_command_s"] = revoked_at - t0
    assert revoke.returncode == 0, out + err
    keys.revoked.append("alice")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert keys.get("alice").status_code == 401
    assert keys.get("bob").status_code == 200
    assert keys.get("default").status_code == 200
    assert in_flight, "the stream ended before the revoke took effect: make it longer"
    stream.join(300)
    assert stream.done and stream.status == 200, stream.body[-500:]
    assert stream.finished_at > first_401
    assert _engine_pid(keys.stack) == pid
    print(f"\nkey add {keys.numbers['add_s']:.2f} s; revoke: first 401 after "
          f"{keys.numbers['revoke_to_401_s']:.2f} s, command done after "
          f"{keys.numbers['revoke_command_s']:.2f} s (waits for the streaming old worker)")


def test_rpm_limit_answers_429_json_with_retry_after(keys: Keys) -> None:
    keys.add("rl", "--rpm", "5")
    codes = [keys.get("rl").status_code for _ in range(6)]
    assert codes == [200] * 5 + [429], codes
    r = keys.get("rl")
    assert r.status_code == 429
    assert r.headers["retry-after"] == "12"
    err = r.json()["error"]
    assert err["code"] == "rate_limit_exceeded" and "5 requests per minute" in err["message"]
    assert keys.get("bob").status_code == 200


def test_concurrent_limit_answers_429_and_other_keys_are_unaffected(keys: Keys) -> None:
    pid = _engine_pid(keys.stack)
    keys.add("one", "--concurrent", "1")
    first = Stream(keys, "one", keys.stream_tokens())
    first.start()
    assert first.started.wait(120) and first.status == 200
    second = Stream(keys, "one", 8)
    second.run()
    assert second.status == 429, second.body
    assert json.loads(second.body)["error"]["code"] == "rate_limit_exceeded"
    other = Stream(keys, "bob", 8)
    other.run()
    assert other.status == 200 and other.done
    assert first.is_alive()
    first.join(300)
    assert first.done
    # The slot is free again once nginx has finished the request, a moment after the client
    # read its end: a client asking again at once may still get a 429 (with Retry-After).
    deadline = time.monotonic() + 5
    while (r := keys.get("one")).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert r.status_code == 200, r.text
    assert _engine_pid(keys.stack) == pid


def test_usage_counts_match_the_requests_sent(keys: Keys) -> None:
    p = keys.cli("usage", "--json")
    assert p.returncode == 0, p.stderr
    used = json.loads(p.stdout)["keys"]
    for name in ("alice", "bob", "rl", "one"):
        assert used[name]["requests"] == keys.sent[name], (name, used[name], keys.sent)
    assert used["rl"]["rate_limited"] == keys.limited["rl"] == 2
    assert used["one"]["rate_limited"] == keys.limited["one"] >= 1
    # Tokens as the engine reported them (njs copies them into the log): bob streamed 8.
    assert used["bob"]["completion_tokens"] == 8 and used["bob"]["prompt_tokens"] > 0
    assert used["alice"]["completion_tokens"] == keys.stream_tokens()
    assert used["rl"]["completion_tokens"] is None  # only /v1/models: no tokens
    assert used["default"]["requests"] >= keys.sent["default"]
    listing = json.loads(keys.cli("key", "list", "--json").stdout)
    assert [r["name"] for r in listing][:1] == ["default"]
    assert {r["name"]: r["requests"] for r in listing}["bob"] == keys.sent["bob"]


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_rotate_gives_a_new_secret_and_refuses_the_old(keys: Keys) -> None:
    pid = _engine_pid(keys.stack)
    for name in ("bob", "default"):
        old = keys.stack.key() if name == "default" else keys.secrets[name]
        p = keys.cli("key", "rotate", name)
        assert p.returncode == 0, p.stdout + p.stderr
        new = p.stdout.splitlines()[1].strip()
        keys.retired.append(old)
        if name == "default":
            assert keys.stack.key() == new
        else:
            keys.secrets[name] = new
        assert new != old and keys.get(name).status_code == 200
        with keys.stack.client() as c:
            assert c.get("/v1/models", headers=_bearer(old)).status_code == 401
        keys.sent[NO_KEY] += 1
    assert _engine_pid(keys.stack) == pid


def test_a_key_from_context_works_and_the_operator_is_told_it_is_visible(keys: Keys) -> None:
    old = keys.stack.key()
    secret = "c" * 43
    env = {**os.environ, "ONEAPP_SLM_API_KEY": secret}
    p = subprocess.run([sys.executable, "-m", "wizard", "--root", str(keys.stack.root),
                        "context", "--no-acme"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "warning: a key set through ONEAPP_SLM_API_KEY is visible" in p.stdout
    assert keys.stack.key() == secret and keys.get("default").status_code == 200
    assert keys.get("bob").status_code == 200  # named keys untouched
    report = (keys.stack.root / "etc/one-appliance/config").read_text()
    assert "Sunstone" in report and "named = bob, rl, one" in report
    keys.retired.append(old)


def test_an_expired_key_is_refused_like_a_revoked_one(keys: Keys) -> None:
    """nginx compares the expiry with its own clock: no apply is needed on the day. The CLI
    refuses past dates, so the store is edited by hand here, then any apply renders it."""
    path = keys.stack.root / "etc/slm-appliance/keys.json"
    store = json.loads(path.read_text())
    secret = "x" * 43
    today = dt.datetime.now(dt.UTC).date().isoformat()
    store["keys"].append({"name": "old", "secret": secret, "created": "2026-01-01T00:00:00Z",
                          "expires": today, "rpm": None, "concurrent": None})
    path.write_text(json.dumps(store))
    keys.stack.baseline()
    keys.secrets["old"] = secret
    with keys.stack.client() as c:
        r = c.get("/v1/models", headers=keys.auth("old"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert keys.get("bob").status_code == 200
    used = json.loads(keys.cli("usage", "--json").stdout)["keys"]
    assert used["old"]["errors"] == used["old"]["requests"] == 1  # logged under its name
    listing = {r["name"]: r for r in json.loads(keys.cli("key", "list", "--json").stdout)}
    assert listing["old"]["expires"] == today and listing["old"]["expired"]


def test_no_secret_in_logs_processes_listings_or_report(keys: Keys) -> None:
    secrets = [*keys.secrets.values(), *keys.retired, keys.stack.key()]
    root = keys.stack.root
    outputs = [keys.cli("key", "list").stdout, keys.cli("key", "list", "--json").stdout,
               keys.cli("usage", "--json").stdout, keys.cli("status").stdout]
    for p in root.rglob("*"):
        rel = str(p.relative_to(root))
        if p.is_file() and not rel.startswith(SECRET_FILES) and p.stat().st_size < 50 << 20:
            outputs.append(rel + "\n" + p.read_bytes().decode(errors="replace"))
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            outputs.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))
        except OSError:
            continue
    assert any("alice" in o for o in outputs)  # the names are there
    for secret in secrets:
        leaks = [o.splitlines()[0][:80] for o in outputs if secret in o]
        assert not leaks, leaks
    for rel in SECRET_FILES:
        if (root / rel).exists():
            assert (root / rel).stat().st_mode & 0o777 == 0o600, rel


@pytest.mark.parametrize("args", [("add", "Bad Name"), ("add", "../x"), ("add", "bob"),
                                  ("add", "default"), ("revoke", "nobody"),
                                  ("revoke", "default"), ("add", "ok", "--rpm", "0"),
                                  ("rotate", "nobody")])
def test_bad_key_commands_exit_2_and_change_nothing(keys: Keys, args: tuple[str, ...]) -> None:
    before = tree_hashes(keys.stack.root)
    p = keys.cli("key", *args)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "nothing was changed" in p.stderr and "fix:" in p.stderr
    assert tree_hashes(keys.stack.root) == before
