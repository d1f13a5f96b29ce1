"""Step 2: the model and its context size, or a GGUF by path or by URL + sha256."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from textual import on
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, ProgressBar, Static

from .base import StepScreen, field_error, field_row, human_bytes
from .drafts import model_values
from .fields import scalar

CHOSEN = "▶"
BASE_HINT = ("[yellow]Base model[/]: not tuned to chat, so chat answers ramble; clients should "
             "set max_tokens.")


class ModelScreen(StepScreen):
    STEP = "model"
    AUTO_FOCUS = "#models"

    def body(self) -> Iterable[Widget]:
        cpu = self.host.session.cpu()
        model = self.draft.get("model") or {}
        yield Static(f"Choose the model (this VM: {human_bytes(cpu.mem_total)} RAM, "
                     f"{human_bytes(cpu.disk_free)} disk free). RAM need = weights + KV cache "
                     "at the context below.", classes="hint")
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        yield field_error("models")
        yield Static("", id="model-hint")
        yield field_row("Context tokens",
                        Input(str(model.get("context_size", "")), id="context", compact=True))
        yield field_error("context")
        yield field_row("Or a GGUF path", Input(
            model.get("path") or "", id="path",
            placeholder="/opt/slm-appliance/models/custom.gguf", compact=True))
        yield field_error("path")
        yield field_row("Or download URL",
                        Input(id="url", placeholder="https://.../model.gguf", compact=True))
        yield field_row("with sha256",
                        Input(id="sha", placeholder="64 hex characters", compact=True))
        yield field_error("sha")
        with Horizontal(classes="row"):
            yield Button("Download", id="download", compact=True)
            yield ProgressBar(id="progress", show_eta=True)
        yield Static("", id="note")

    def on_mount(self) -> None:
        table = self.query_one("#models", DataTable)
        self._name_column = table.add_columns("Model", "Size", "Trained ctx", "RAM need",
                                              "Fits", "On disk")[0]
        self._verified: tuple[str | None, str | None] = (None, None)
        self._fill()
        self.query_one("#progress", ProgressBar).display = False

    def _fill(self) -> None:
        table = self.query_one("#models", DataTable)
        table.clear()
        ctx = scalar(self.query_one("#context", Input).value)
        chosen = (self.draft.get("model") or {}).get("id")
        self._base = {}
        current = 0
        rows = self.host.session.models(ctx if isinstance(ctx, int) and ctx > 0 else 4096)
        for n, row in enumerate(rows):
            self._base[row.id] = getattr(row, "base_model", False)
            table.add_row(f"  {row.id}", human_bytes(row.size), str(row.trained_context),
                          human_bytes(row.memory), "yes" if row.fits else "[red]no[/]",
                          "yes" if row.on_disk else "download", key=row.id)
            if row.id == chosen:
                current = n
        table.move_cursor(row=current, scroll=False)  # never scroll an error out of view
        self._mark()

    @on(DataTable.RowHighlighted, "#models")
    def _mark(self) -> None:
        """The chosen row carries a ▶ as text, not only the cursor's colour."""
        table = self.query_one("#models", DataTable)
        if not table.row_count:
            return
        chosen = self._selected()
        for key in table.rows:
            mark = CHOSEN if key.value == chosen else " "
            table.update_cell(key, self._name_column, f"{mark} {key.value}")
        self.query_one("#model-hint", Static).update(BASE_HINT if self._base.get(chosen) else "")

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "context":
            self._fill()

    def _selected(self) -> str:
        table = self.query_one("#models", DataTable)
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def values(self) -> dict[str, Any]:
        before = self.draft.get("model") or {}
        known = dict([(before.get("path"), before.get("sha256")), self._verified])
        return model_values(self._selected(), self.query_one("#path", Input).value,
                            self.query_one("#context", Input).value, known)

    # -- downloads ---------------------------------------------------------------------------
    @on(Button.Pressed, "#download")
    def _start_download(self) -> None:
        """The URL + sha256 when given, else the selected catalog model."""
        url = self.query_one("#url", Input).value.strip()
        sha = self.query_one("#sha", Input).value.strip()
        what = url or self._selected()
        self.query_one("#progress", ProgressBar).display = True
        self.query_one("#download", Button).disabled = True
        self._note(f"Downloading {what}...")
        self.work(lambda: self._download(what, url, sha), lambda path: self._downloaded(
            what, path, sha), lambda error: self._note(f"[red]Download failed:[/] {error}"),
            group="download")

    def _download(self, what: str, url: str, sha: str) -> Path | None:
        session = self.host.session

        def progress(p: Any) -> None:
            self.app.call_from_thread(self._progress, p)

        if url:
            return session.download_url(url, sha, progress)
        session.download(what, progress)
        return None

    def _downloaded(self, what: str, path: Path | None, sha: str) -> None:
        if path is not None:
            self.query_one("#path", Input).value = str(path)
            self._verified = (str(path), sha.lower())
        self._note(f"[green]{what}: downloaded, sha256 verified[/]")
        self._fill()

    def _progress(self, p: Any) -> None:
        bar = self.query_one("#progress", ProgressBar)
        bar.update(total=p.total, progress=p.done)
        eta = f", {p.eta_s:.0f} s left" if p.eta_s is not None else ""
        self.query_one("#note", Static).update(
            f"{human_bytes(p.done)} of {human_bytes(p.total or 0)} at "
            f"{human_bytes(int(p.speed))}/s{eta}")

    def _note(self, text: str) -> None:
        self.query_one("#note", Static).update(text)
        self.query_one("#download", Button).disabled = False
