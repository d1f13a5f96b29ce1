"""Step 3 (Speed): threads and parallel slots, a benchmark through nginx, and thread auto-tune."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, ProgressBar, Static

from .base import FieldLabel, StepScreen, field_error, field_row, human_bytes, plural
from .drafts import speed_values
from .fields import scalar
from .speed_text import bench_summary, busy_warning, slot_hint, tune_summary


class PerformanceScreen(StepScreen):
    STEP = "performance"
    AUTO_FOCUS = "#threads"

    def body(self) -> Iterable[Widget]:
        cpu = self.host.session.cpu()
        flags = "  ".join(f"{name} {'yes' if have else '[red]no[/]'}" for name, have in
                          (("AVX", cpu.avx), ("AVX2", cpu.avx2), ("AVX-512", cpu.avx512)))
        yield Static(f"[b]CPU[/] {cpu.model}: {plural(cpu.physical, 'core')}, "
                     f"{cpu.logical} logical; {flags}; RAM {human_bytes(cpu.mem_total)}")
        if cpu.warning:
            yield Static(cpu.warning, classes="warning")
        yield field_row("Threads",
                        Input(str(self.draft.get("threads", "")), id="threads",
                              placeholder="auto or a number", compact=True),
                        FieldLabel("Parallel slots"),
                        Input(str(self.draft.get("parallel", "")), id="parallel", compact=True))
        yield field_error("threads")
        yield field_error("parallel")
        yield Static("", id="slots", classes="hint")
        with Horizontal(classes="row"):
            yield Button("Benchmark", id="bench", compact=True)
            yield Button("Auto-tune threads", id="tune", compact=True)
            yield ProgressBar(id="progress", show_eta=False)
        yield Static("", id="busy")
        yield DataTable(id="results", zebra_stripes=True)
        yield Static("Benchmark measures the running stack through nginx; auto-tune restarts "
                     "the engine with each candidate and keeps your current setting until you "
                     "apply.", id="note", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#progress", ProgressBar).display = False
        self._slots()

    def values(self) -> dict[str, Any]:
        return speed_values(self.query_one("#threads", Input).value,
                            self.query_one("#parallel", Input).value)

    @on(Input.Changed, "#parallel")
    def _slots(self) -> None:
        context = (self.draft.get("model") or {}).get("context_size")
        parallel = scalar(self.query_one("#parallel", Input).value)
        self.query_one("#slots", Static).update(slot_hint(context, parallel))

    # -- measuring ---------------------------------------------------------------------------
    def _start(self, button: str, total: int, *columns: str) -> None:
        self._button = button
        for b in self.query("#bench, #tune").results(Button):
            b.disabled = True
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=total, progress=0)
        bar.display = True
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns)
        cores = self.host.session.cpu().logical
        self.query_one("#busy", Static).update(
            busy_warning(self.host.session.load_average(), cores) or "")

    def _end(self, text: str) -> None:
        self.query_one("#note", Static).update(text)
        self.query_one("#progress", ProgressBar).display = False
        for b in self.query("#bench, #tune").results(Button):
            b.disabled = False
        self.query_one(f"#{self._button}", Button).focus()  # Enter measures again, not Back

    def _row(self, *cells: str) -> None:
        self.query_one("#results", DataTable).add_row(*cells)
        self.query_one("#progress", ProgressBar).advance(1)

    @on(Button.Pressed, "#bench")
    def _bench(self) -> None:
        runs = 3
        self._start("bench", runs, "Run", "Generation tok/s", "Prompt tok/s", "First token ms")
        self._note_progress(f"Measuring through nginx: a warm-up, then {plural(runs, 'run')}...")
        call = self.app.call_from_thread

        def sample(n: int, s: Any) -> None:
            call(self._row, f"{n + 1} of {runs}", f"{s.gen_tps:.1f}",
                 f"{s.prompt_tps or 0:.1f}", f"{s.ttft_ms:.0f}")

        self.work(lambda: self.host.session.benchmark(sample, repetitions=runs),
                  lambda r: self._end(bench_summary(r)),
                  lambda error: self._end(f"[red]Benchmark failed:[/] {error}"), group="speed")

    @on(Button.Pressed, "#tune")
    def _tune(self) -> None:
        from appliance.perf.tuning import thread_candidates

        cpu = self.host.session.cpu()
        candidates = thread_candidates(cpu.physical, cpu.logical)
        self._start("tune", len(candidates), "Candidate", "Threads", "Generation tok/s")
        call = self.app.call_from_thread
        seen: list[int] = []

        def measuring(k: int) -> None:
            if k < len(candidates):
                self._note_progress(f"Candidate {k + 1} of {len(candidates)}: "
                                    f"{plural(candidates[k], 'thread')} (restarts the engine, "
                                    "then measures)...")

        def result(threads: int, tps: float) -> None:
            seen.append(threads)
            n = len(seen)
            self._row(f"{n} of {len(candidates)}", str(threads), f"{tps:.1f}")
            measuring(n)

        measuring(0)
        self.work(lambda: self.host.session.autotune(
            self._answers(), lambda t, tps: call(result, t, tps)), self._tuned,
            lambda error: self._end(f"[red]Auto-tune failed:[/] {error}"), group="speed")

    def _answers(self) -> Any:
        """Auto-tune restarts the engine from what is applied (never from an unchecked draft)."""
        return self.host.applied

    def _tuned(self, result: Any) -> None:
        self.query_one("#threads", Input).value = str(result.best)
        self._end(tune_summary(result))

    def _note_progress(self, text: str) -> None:
        self.query_one("#note", Static).update(text)
