"""A session with fixed data, so screen snapshots do not depend on this machine.

Flows are tested against the real stack (test_pilot.py); this only freezes what screens show.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.answers.schema import Answers, parse
from appliance.answers.stored import Repaired
from appliance.apply.runtime import Event
from appliance.apply.transaction import ApplyResult
from appliance.host.facts import Facts
from appliance.host.paths import Layout
from appliance.host.site import Site
from appliance.perf.bench import BenchResult, Sample
from appliance.session import ClientSetup, CpuInfo, ModelRow, Review, Session
from wizard.app import WizardApp

FACTS = Facts(logical_cpus=8, physical_cores=4, cpu_flags=frozenset({"avx", "avx2"}),
              mem_total=16 << 30, hostname="llm-vm", addresses=("127.0.0.1", "10.0.0.5"),
              cpu_model="Intel Xeon (Icelake)")
STATUS = {"configured": True, "endpoint": "https://10.0.0.5/v1",
          "api_key_file": "/etc/slm-appliance/api_key",
          "ca_file": "/etc/slm-appliance/tls/selfsigned.crt",
          "model": "phi-3-mini-4k-instruct-q4", "engine": "llama-server", "threads": 4,
          "context_size": 4096, "parallel": 1, "tls_mode": "self-signed",
          "tls_not_after": "2036-11-23T10:00:00Z", "tls_domain": None, "acme": None,
          "services": {"llama-server.service": True, "nginx.service": True}, "ready": True}
KEYS = [{"name": "default", "created": "2026-11-23T10:00:00Z", "expires": None, "rpm": None,
         "concurrent": None, "expired": False, "requests": 412,
         "last_used": "2026-11-30T17:02:11+00:00"},
        {"name": "ci-bot", "created": "2026-11-24T09:00:00Z", "expires": "2027-06-30", "rpm": 60,
         "concurrent": 1, "expired": False, "requests": 96,
         "last_used": "2026-11-30T16:40:02+00:00"}]
DIFF = """--- /etc/systemd/system/llama-server.service (current)
+++ /etc/systemd/system/llama-server.service (new)
@@ -9 +9 @@
-ExecStart=/usr/local/bin/llama-server --threads 4 --parallel 1
+ExecStart=/usr/local/bin/llama-server --threads 3 --parallel 1
"""


class FakeSession(Session):
    def __init__(self) -> None:
        super().__init__(Layout(Path("/")), Site(), FACTS, lambda emit: None)  # type: ignore

    def status(self) -> dict[str, Any]:
        return dict(STATUS)

    def answers(self) -> Answers:
        return parse({"threads": 4})

    def start(self) -> Repaired:
        return Repaired(self.answers())

    def cpu(self) -> CpuInfo:
        return CpuInfo(FACTS.cpu_model, 4, 8, True, True, False, 16 << 30, 40 << 30)

    def models(self, context_size: int) -> list[ModelRow]:
        return [
            ModelRow("phi-3-mini-4k-instruct-q4", "Phi-3 mini", 2393231072, 4096, 4271 << 20,
                     True, True, "MIT"),
            ModelRow("smollm2-135m-instruct-q4_1", "SmolLM2", 98362432, 8192, 400 << 20,
                     True, False, "Apache-2.0"),
            ModelRow("gemma3-270m-q4_k_m", "Gemma 3 270M", 253113024, 32768, 600 << 20, True,
                     False, "Gemma", True)]

    def api_key(self) -> str:
        return "Zq3vJ0nT5m1rK8sW2yB6cD9fH4gL7pXaUeIoQwErTyU"

    def keys(self) -> list[dict[str, Any]]:
        return [dict(r) for r in KEYS]

    def add_key(self, name: str, rpm: int | None = None, concurrent: int | None = None,
                expires: str | None = None) -> str:
        return "Nk4vJ0nT5m1rK8sW2yB6cD9fH4gL7pXaUeIoQwEr-_0"

    def revoke_key(self, name: str) -> None:
        pass

    def review(self, answers: Answers) -> Review:
        return Review(DIFF, ["daemon-reload", "restart llama-server.service"],
                      ["/etc/systemd/system/llama-server.service", "/etc/one-appliance/config"],
                      [])

    def apply(self, answers: Answers, emit: Callable[[Event], None]) -> ApplyResult:
        for e in (Event("write", "running"), Event("write", "done"),
                  Event("restart llama-server.service", "running"),
                  Event("restart llama-server.service", "done"), Event("verify", "done")):
            emit(e)
        return ApplyResult([], ["restart llama-server.service"], None, False)  # type: ignore

    def benchmark(self, on_sample: Callable[[int, Any], None], repetitions: int = 3,
                  tokens: int = 64) -> Any:
        samples = [Sample(410.0 + n, 180, 95.0, 64, 11.5 + n / 10, 11.4, "engine")
                   for n in range(3)]
        for n, s in enumerate(samples):
            on_sample(n, s)
        return BenchResult("phi-3-mini-4k-instruct-q4", 4, samples)

    def dns_check(self, answers: Answers) -> list[tuple[str, bool, str]]:
        return [("resolves", True, "203.0.113.7"),
                ("points here", False, "llm.example.com resolves to 203.0.113.7, not to this "
                 "VM (10.0.0.5)")]

    def load_average(self) -> float:
        return 0.25

    def client_setup(self) -> ClientSetup:
        from appliance.clients import Access, client_snippets, exit_summary

        access = Access(STATUS["endpoint"], STATUS["model"], self.api_key(),
                        STATUS["api_key_file"], STATUS["ca_file"], "10.0.0.5")
        saved = "/etc/slm-appliance/client-setup.txt"
        return ClientSetup(access, client_snippets(access), saved,
                           exit_summary(access, True, saved), True)

    def autotune(self, answers: Answers, on_result: Callable[[int, float], None]) -> Any:
        from appliance.perf.tuning import TuneResult

        measured = {4: 11.8, 3: 12.4, 2: 9.9, 5: 11.0}
        for t, tps in measured.items():
            on_result(t, tps)
        return TuneResult(3, measured, True)


class FailingSession(FakeSession):
    """Every worker's call fails the way a real one can; ``fail`` names which."""

    def __init__(self, *fail: str) -> None:
        super().__init__()
        self.fail = set(fail)

    def _maybe(self, what: str, exc: Exception) -> None:
        if what in self.fail:
            raise exc

    def status(self) -> dict[str, Any]:
        self._maybe("status", OSError(13, "Permission denied"))
        return super().status()

    def start(self) -> Repaired:
        from appliance.errors import FieldError

        if "answers" in self.fail:  # a hand-edited file: that value starts from its default
            return Repaired(parse({}), [FieldError(
                "parallel", "0 is out of range 1-16", "use 1-16 concurrent request slots")],
                "/var/lib/slm-appliance/answers.applied.yaml")
        return super().start()

    def dns_check(self, answers: Answers) -> list[tuple[str, bool, str]]:
        self._maybe("dns", TimeoutError("the resolver did not answer within 5 s"))
        return super().dns_check(answers)

    def benchmark(self, on_sample: Callable[[int, Any], None], repetitions: int = 3,
                  tokens: int = 64) -> Any:
        from appliance.perf.bench import BenchError

        self._maybe("bench", BenchError("HTTP 503 from /v1/chat/completions: Loading model"))
        return super().benchmark(on_sample, repetitions, tokens)

    def autotune(self, answers: Answers, on_result: Callable[[int, float], None]) -> Any:
        self._maybe("tune", RuntimeError("engine exited with status 1"))
        return super().autotune(answers, on_result)

    def download(self, model_id: str, on_progress: Callable[[Any], None]) -> Path:
        from appliance.host.download import DownloadError

        self._maybe("download", DownloadError("sha256 mismatch: the file was removed"))
        return Path("/opt/slm-appliance/models/x.gguf")

    def apply(self, answers: Answers, emit: Callable[[Event], None]) -> ApplyResult:
        from appliance.errors import LockedError

        self._maybe("lock", LockedError(4242))
        return super().apply(answers, emit)

    def client_setup(self) -> ClientSetup:
        self._maybe("done", OSError(28, "No space left on device"))
        return super().client_setup()


def fake_app() -> WizardApp:
    return WizardApp(FakeSession())
