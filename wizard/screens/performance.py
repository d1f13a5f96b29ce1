from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, Static

from .base import StepScreen, human_bytes


class PerformanceScreen(StepScreen):
    STEP = "performance"
    AUTO_FOCUS = "#threads"

    def body(self) -> Iterable[Widget]:
        cpu = self.wizard.session.cpu()
        flags = "  ".join(f"{name} {'yes' if have else '[red]no[/]'}" for name, have in
                          (("AVX", cpu.avx), ("AVX2", cpu.avx2), ("AVX-512", cpu.avx512)))
        yield Static(f"[b]CPU[/] {cpu.model}: {cpu.physical} cores, {cpu.logical} logical; "
                     f"{flags}; RAM {human_bytes(cpu.mem_total)}")
        if cpu.warning:
            yield Static(cpu.warning, classes="warning")
        with Horizontal(classes="row"):
            yield Label("Threads")
            yield Input(str(self.draft.threads), id="threads", placeholder="auto or a number")
            yield Label("Parallel slots")
            yield Input(str(self.draft.parallel), id="parallel", type="integer")
        with Horizontal(classes="row"):
            yield Button("Benchmark", id="bench")
            yield Button("Auto-tune threads", id="tune")
        yield DataTable(id="results", zebra_stripes=True)
        yield Static("Benchmark measures the running stack; auto-tune restarts the engine "
                     "with each candidate and keeps your current setting until you apply.",
                     id="note", classes="hint")

    def on_mount(self) -> None:
        self.query_one("#results", DataTable).add_columns("Run", "Generation tok/s",
                                                          "Prompt tok/s", "First token ms")

    @on(Button.Pressed, "#bench, #tune")
    def _measure(self, event: Button.Pressed) -> None:
        self.query_one("#results", DataTable).focus()  # the buttons go disabled meanwhile
        for b in self.query("#bench, #tune").results(Button):
            b.disabled = True
        job = self._bench if event.button.id == "bench" else self._tune
        self.run_worker(job, thread=True, exit_on_error=False, exclusive=True)

    def _table(self, *columns: str) -> None:
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        table.add_columns(*columns)

    def _row(self, *cells: str) -> None:
        self.query_one("#results", DataTable).add_row(*cells)

    def _note(self, text: str) -> None:
        self.query_one("#note", Static).update(text)
        for b in self.query("#bench, #tune").results(Button):
            b.disabled = False

    def _bench(self) -> None:
        call = self.app.call_from_thread
        call(self._table, "Run", "Generation tok/s", "Prompt tok/s", "First token ms")
        call(self.query_one("#note", Static).update, "Measuring (warm-up, then 3 runs)...")

        def sample(n: int, s: Any) -> None:
            call(self._row, str(n + 1), f"{s.gen_tps:.1f}", f"{s.prompt_tps or 0:.1f}",
                 f"{s.ttft_ms:.0f}")

        try:
            r = self.wizard.session.benchmark(sample)
        except Exception as exc:
            call(self._note, f"[red]Benchmark failed: {exc}[/]")
            return
        call(self._note, f"[b]{r.generation.mean:.1f} tok/s[/] generation "
             f"(± {r.generation.stdev:.1f}), {r.prompt.mean:.0f} tok/s prompt, first token "
             f"{r.ttft.median:.0f} ms on {r.threads} threads")

    def _tune(self) -> None:
        call = self.app.call_from_thread
        call(self._table, "Threads", "Generation tok/s", "", "")
        call(self.query_one("#note", Static).update, "Trying thread counts...")
        try:
            result = self.wizard.session.autotune(
                self.draft, lambda t, tps: call(self._row, str(t), f"{tps:.1f}", "", ""))
        except Exception as exc:
            call(self._note, f"[red]Auto-tune failed: {exc}[/]")
            return
        call(self.query_one("#threads", Input).__setattr__, "value", str(result.best))
        call(self._note, f"Best: [b]{result.best} threads[/] "
             f"({result.measured[result.best]:.1f} tok/s), set above; review to apply it.")

    def leave(self) -> bool:
        raw_threads = self.query_one("#threads", Input).value.strip() or "auto"
        raw_parallel = self.query_one("#parallel", Input).value.strip() or "1"
        if raw_threads != "auto" and not raw_threads.isdigit():
            self._note("[red]Threads: 'auto' or a whole number[/]")
            return False
        if not raw_parallel.isdigit():
            self._note("[red]Parallel slots: a whole number[/]")
            return False
        threads: int | str = raw_threads if raw_threads == "auto" else int(raw_threads)
        self.wizard.draft = self.draft.replace(threads=threads, parallel=int(raw_parallel))
        return True
