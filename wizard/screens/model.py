from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label, ProgressBar, Static

from .base import StepScreen, human_bytes


class ModelScreen(StepScreen):
    STEP = "model"
    AUTO_FOCUS = "#models"

    def body(self) -> Iterable[Widget]:
        cpu = self.wizard.session.cpu()
        yield Static(f"Choose the model (this VM: {human_bytes(cpu.mem_total)} RAM, "
                     f"{human_bytes(cpu.disk_free)} disk free). RAM need = weights + KV cache "
                     "at the context below.", classes="hint")
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        with Horizontal(classes="row"):
            yield Label("Context tokens")
            yield Input(str(self.draft.model.context_size), id="context", type="integer")
        with Horizontal(classes="row"):
            yield Label("Or a GGUF path")
            yield Input(self.draft.model.path or "", id="path",
                        placeholder="/opt/slm-appliance/models/custom.gguf")
        with Horizontal(classes="row"):
            yield Label("Or download URL")
            yield Input(id="url", placeholder="https://.../model.gguf")
        with Horizontal(classes="row"):
            yield Label("  with sha256")
            yield Input(id="sha", placeholder="64 hex characters")
        with Horizontal(classes="row"):
            yield Button("Download", id="download")
            yield ProgressBar(id="progress", show_eta=True)
        yield Static("", id="note")

    def on_mount(self) -> None:
        table = self.query_one("#models", DataTable)
        table.add_columns("Model", "Size", "Trained ctx", "RAM need", "Fits", "On disk")
        self._fill()
        self.query_one("#progress", ProgressBar).display = False

    def _fill(self) -> None:
        table = self.query_one("#models", DataTable)
        table.clear()
        try:
            ctx = int(self.query_one("#context", Input).value or 0)
        except ValueError:
            ctx = self.draft.model.context_size
        current = 0
        for n, row in enumerate(self.wizard.session.models(ctx or 4096)):
            table.add_row(row.id, human_bytes(row.size), str(row.trained_context),
                          human_bytes(row.memory), "yes" if row.fits else "[red]no[/]",
                          "yes" if row.on_disk else "download", key=row.id)
            if row.id == self.draft.model.id:
                current = n
        table.move_cursor(row=current)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "context":
            self._fill()

    def _selected(self) -> str:
        table = self.query_one("#models", DataTable)
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    @on(Button.Pressed, "#download")
    def _start_download(self) -> None:
        """The URL + sha256 when given, else the selected catalog model."""
        url = self.query_one("#url", Input).value.strip()
        sha = self.query_one("#sha", Input).value.strip()
        what = url or self._selected()
        self.query_one("#progress", ProgressBar).display = True
        self._note(f"Downloading {what}...")
        self.run_worker(lambda: self._download(what, url, sha), thread=True,
                        exit_on_error=False)

    def _download(self, what: str, url: str, sha: str) -> None:
        session = self.wizard.session

        def progress(p: Any) -> None:
            self.app.call_from_thread(self._progress, p)

        try:
            if url:
                path = session.download_url(url, sha, progress)
                self.app.call_from_thread(self._set_path, str(path))
            else:
                session.download(what, progress)
        except Exception as exc:  # shown to the operator, never a crash
            self.app.call_from_thread(self._note, f"[red]{exc}[/]")
            return
        self.app.call_from_thread(self._note, f"[green]{what}: downloaded, sha256 verified[/]")
        self.app.call_from_thread(self._fill)

    def _set_path(self, path: str) -> None:
        self.query_one("#path", Input).value = path
        self._verified = (path, self.query_one("#sha", Input).value.strip().lower())

    def _progress(self, p: Any) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=p.total, progress=p.done)
        eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
        self._note(f"{human_bytes(p.done)} of {human_bytes(p.total or 0)} at "
                   f"{human_bytes(int(p.speed))}/s{eta}")

    def _note(self, text: str) -> None:
        self.query_one("#note", Static).update(text)

    def leave(self) -> bool:
        raw = self.query_one("#context", Input).value.strip()
        if not raw.isdigit():
            self._note("[red]Context tokens must be a whole number, e.g. 4096[/]")
            return False
        path = self.query_one("#path", Input).value.strip() or None
        model_id = None if path else self._selected()
        verified = getattr(self, "_verified", (None, None))
        sha = verified[1] if path and verified[0] == path else None  # checked again on apply
        model = replace(self.draft.model, id=model_id, path=path, context_size=int(raw),
                        sha256=sha)
        self.wizard.draft = self.draft.replace(model=model)
        return True
