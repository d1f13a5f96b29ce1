"""Review's plain-words lines, the engine strategy and the failure cause line (pure)."""

from __future__ import annotations

from typing import Any

from appliance.apply.causes import cause_line, with_cause
from appliance.apply.summary import slot_share, summarize
from appliance.plan.strategy import (
    EngineFacts,
    EngineStep,
    Strategy,
    choose,
    expected_gap,
    load_times,
    remember_load,
)

MIB = 1 << 20


def state(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model_id": "smollm2", "engine": "llama-server", "threads": 2,
        "endpoint": "https://10.0.0.5/v1", "tls_mode": "self-signed", "tls_served_sha256": "aa",
        "answers": {"model": {"context_size": 2048}, "parallel": 2,
                    "listen": {"https": "0.0.0.0:443", "http": "0.0.0.0:80"},
                    "tls": {"mode": "self-signed", "domain": None}}}
    for key, value in kw.items():
        if key in ("context_size",):
            base["answers"]["model"][key] = value
        elif key in ("parallel",):
            base["answers"][key] = value
        else:
            base[key] = value
    return base


SWITCH = EngineStep(Strategy.SWITCH)


def texts(lines: list[Any]) -> list[str]:
    return [str(line) for line in lines]


def test_model_and_threads_lead_the_summary() -> None:
    lines = summarize(state(), state(model_id="gemma3", threads=1), SWITCH, base_model=True,
                      nginx="reload")
    assert texts(lines)[:2] == ["Model smollm2 -> gemma3 (base model: no chat template)",
                                "Threads 2 -> 1"]
    assert lines[0].notice
    assert "Engine: switched with no downtime" in texts(lines)[2]
    assert "Certificate: unchanged (self-signed)" in texts(lines)
    assert "API key: unchanged" in texts(lines)


def test_restart_announces_the_gap_and_why() -> None:
    step = EngineStep(Strategy.RESTART, 3, "both engines need ~40 MiB more RAM")
    lines = summarize(state(), state(threads=1), step)
    line = next(x for x in lines if x.text.startswith("Engine restart"))
    assert line.text == ("Engine restart: up to ~3 s of 503 with Retry-After (both engines "
                         "need ~40 MiB more RAM)")
    assert line.notice


def test_nothing_to_change_is_one_line() -> None:
    lines = summarize(state(), state(), EngineStep(Strategy.KEEP), files_change=False)
    assert texts(lines) == ["Nothing changes: this configuration already runs"]


def test_parallel_shows_the_slot_share() -> None:
    lines = texts(summarize(state(), state(parallel=4), EngineStep(Strategy.SWITCH)))
    assert "Parallel requests 2 -> 4 (4 slots x 512 tokens each)" in lines
    assert slot_share(4096, 1) == "1 slot x 4096 tokens"


def test_pending_lets_encrypt_keeps_the_address() -> None:
    after = state()
    after["answers"]["tls"] = {"mode": "letsencrypt", "domain": "llm.invalid"}
    lines = texts(summarize(state(), after, EngineStep(Strategy.KEEP),
                            pending_domain="llm.invalid"))
    assert "Certificate: unchanged (self-signed)" in lines
    assert any("llm.invalid: requested after the apply" in x for x in lines)
    assert not any(x.startswith("Endpoint") for x in lines)


def test_back_to_self_signed_and_new_endpoint() -> None:
    before = state(tls_mode="letsencrypt", endpoint="https://llm.example.com/v1")
    lines = texts(summarize(before, state(tls_served_sha256="bb"), EngineStep(Strategy.KEEP),
                            nginx="reload", key_changed=True))
    assert "Endpoint https://llm.example.com/v1 -> https://10.0.0.5/v1 (clients need the new " \
           "address)" in lines
    assert "API key: new key (clients need it)" in lines
    assert any(x.startswith("Certificate: self-signed again") for x in lines)
    assert "nginx: reloads (open connections and streams finish)" in lines


def test_first_apply_lists_what_is_set_up() -> None:
    lines = texts(summarize({}, state(), EngineStep(Strategy.START), key_changed=True,
                            nginx="start"))
    assert lines[:2] == ["Model smollm2", "Engine llama-server"]
    assert "Engine: starts (it is not running now)" in lines
    assert "Certificate: self-signed" in lines and "API key: created" in lines


def facts(**kw: Any) -> EngineFacts:
    base: dict[str, Any] = dict(changed=True, running=True, twin_blocker="",
                                need_bytes=400 * MIB, shared_bytes=100 * MIB,
                                available_bytes=2000 * MIB, total_bytes=4000 * MIB,
                                model_bytes=100 * MIB, load_s=0.6)
    return EngineFacts(**{**base, **kw})


def test_switch_when_both_fit() -> None:
    assert choose(facts()).strategy is Strategy.SWITCH
    assert choose(facts(changed=False)).strategy is Strategy.KEEP
    assert choose(facts(running=False)).strategy is Strategy.START


def test_restart_in_place_when_ram_is_short() -> None:
    step = choose(facts(available_bytes=300 * MIB))
    assert step.strategy is Strategy.RESTART and step.downtime
    assert step.gap_s == expected_gap(0.6, 100 * MIB) == 3
    assert "300 MiB is available" in step.reason and "~300 MiB more" in step.reason
    # the same model's weights are shared (page cache): only the rest must fit
    assert choose(facts(available_bytes=500 * MIB)).strategy is Strategy.SWITCH
    assert choose(facts(available_bytes=500 * MIB, shared_bytes=0)).strategy is Strategy.RESTART
    assert choose(facts(available_bytes=0)).strategy is Strategy.RESTART


def test_restart_when_the_engine_cannot_run_twice() -> None:
    step = choose(facts(twin_blocker="localai cannot run twice side by side"))
    assert step.strategy is Strategy.RESTART and step.reason.endswith("side by side")


def test_load_times_keep_the_last_few() -> None:
    loads: dict[str, object] = {"m": 0.5}  # an older state: one number
    for took in (1.0, 2.0, 3.0, 4.0):
        loads = remember_load(loads, "m", took)
    assert load_times(loads["m"]) == [1.0, 2.0, 3.0, 4.0]
    assert load_times(None) == []


def test_gap_without_a_measurement_comes_from_the_size() -> None:
    assert expected_gap(None, 2400 * MIB) == 35  # 1 s + 16 s read, doubled, + 1 s
    assert expected_gap(0.0, 0) == 1


LLAMA_CRASH = """--- start 2026-12-01 22:00:00 ---
build: 6500 (abcdef) with cc (Debian 12.2.0-14) 12.2.0 for x86_64-linux-gnu
llama_model_loader: loaded meta data with 33 key-value pairs
llama_context: n_seq_max = 99999999
ggml_backend_cpu_buffer_type_alloc_buffer: failed to allocate buffer of size 16777216000000
llama_init_from_model: failed to initialize the context: failed to allocate compute buffers
[New LWP 4242]
[Thread debugging using libthread_db enabled]
Using host libthread_db library "/lib/x86_64-linux-gnu/libthread_db.so.1".
0x00007f3a1 in __GI___wait4 (pid=4243) at ../sysdeps/unix/sysv/linux/wait4.c:30
#0  0x00007f3a1 in __GI___wait4 (pid=4243)
#1  0x00007f3a2 in ggml_print_backtrace ()
#2  0x00007f3a3 in ggml_abort ()
main: exiting due to model loading error
"""


def test_cause_line_skips_the_backtrace() -> None:
    assert cause_line(LLAMA_CRASH) == ("ggml_backend_cpu_buffer_type_alloc_buffer: failed to "
                                       "allocate buffer of size 16777216000000")
    assert cause_line("load_model: error loading model: bad magic\n#0 0x1 in f ()") == (
        "load_model: error loading model: bad magic")
    assert cause_line("everything is fine\nbye") is None
    assert with_cause("engine stopped", LLAMA_CRASH).startswith("engine stopped: ggml_backend")
    assert with_cause("engine stopped", "") == "engine stopped"


def test_cause_line_of_a_cpp_exception_joins_its_message() -> None:
    log = ("0.00.010.891 W srv  llama_server: security: no API key is set\n[New LWP 3463]\n"
           "30\t../sysdeps/unix/sysv/linux/wait4.c: No such file or directory.\n"
           "#6  0x00007fab in httplib::ThreadPool::ThreadPool(unsigned long) [clone .cold] ()\n"
           "[Inferior 1 (process 3449) detached]\n"
           "terminate called after throwing an instance of 'std::system_error'\n"
           "  what():  Resource temporarily unavailable\n")
    assert cause_line(log) == ("terminate called after throwing an instance of "
                               "'std::system_error': Resource temporarily unavailable")
    assert cause_line("0.00.998.044 E srv    load_model: failed to load model, x.gguf") == (
        "srv    load_model: failed to load model, x.gguf")
