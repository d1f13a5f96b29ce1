"""OpenNebula context as a change, not as the state.

one-apps runs ``configure`` at every boot with the VM's whole CONTEXT, and the marketplace
dialog puts every user input into it. Applying that as the state would undo, at the next
reboot, whatever the operator changed since in the wizard or with ``wizard --apply``. So a
``ONEAPP_SLM_*`` value is applied only when it differs from the value applied from context
last time, recorded beside the applied answers (a sha256 per variable: the record never holds
a key). Wizard and ``--apply`` changes therefore persist until the operator edits that
variable in the VM's context; an empty or removed variable means "keep".

A catalog model the image does not contain is downloaded first (resumable, sha256-checked,
progress in the configure log) while the model already there keeps serving; if it cannot be
downloaded, the rest of the context is applied, the current model keeps serving, a warning
says why, and the variable stays unrecorded so the next boot tries again. Configure never
ends with nothing serving because of a model choice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from appliance.answers.catalog import CatalogModel, fetch_model, load_catalog
from appliance.answers.context import PREFIX, answers_from_env
from appliance.answers.schema import Answers
from appliance.apply.run import apply_answers
from appliance.apply.runtime import Context, Event
from appliance.apply.transaction import ApplyResult
from appliance.errors import DownloadError
from appliance.host.download import Progress
from appliance.host.files import atomic_write
from appliance.host.paths import Layout
from appliance.plan.state import load_state

MODEL_VAR = "ONEAPP_SLM_MODEL_ID"


def fingerprint(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def context_values(env: Mapping[str, str]) -> dict[str, str]:
    """The ONEAPP_SLM_* variables that carry a value (empty means keep)."""
    return {k: v.strip() for k, v in env.items() if k.startswith(PREFIX) and v.strip()}


def load_record(layout: Layout) -> dict[str, str]:
    try:
        data = json.loads(layout.map(layout.context_record).read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def changes(values: Mapping[str, str], record: Mapping[str, str]) -> dict[str, str]:
    """The values that differ from what was applied from context last time."""
    return {k: v for k, v in values.items() if record.get(k) != fingerprint(v)}


def save_record(layout: Layout, record: Mapping[str, str]) -> None:
    body = json.dumps(dict(sorted(record.items())), indent=1) + "\n"
    atomic_write(layout.map(layout.context_record), body.encode(), 0o600)


@dataclass
class ContextResult:
    result: ApplyResult
    applied: dict[str, str]
    """The variables this boot applied (changed since the last time), values as given."""


def missing_model(answers: Answers, layout: Layout) -> CatalogModel | None:
    """The catalog model the answers name when its file is not in the models folder."""
    m = answers.model
    entry = load_catalog().get(m.id) if m.id and not m.path else None
    if entry is None or layout.map(f"{layout.models_dir}/{entry.file}").is_file():
        return None
    return entry


def apply_context(env: Mapping[str, str], base: Answers, ctx: Context, *,
                  acme: bool = True) -> ContextResult:
    """Apply what changed in the context since last time on top of ``base`` (the applied
    answers); invalid changes raise AnswersError naming the variable, nothing changed."""
    values = context_values(env)
    record = load_record(ctx.layout)
    changed = changes(values, record)
    answers = answers_from_env(changed, base)
    warnings: list[str] = []
    entry = missing_model(answers, ctx.layout)
    if entry is not None:
        answers = _fetch_or_keep(entry, answers, base, ctx, warnings)
    result = apply_answers(answers, ctx, "context", acme=acme)
    result.warnings[:0] = warnings
    new = {k: fingerprint(v) for k, v in values.items()}
    if warnings:  # the model was refused: unrecorded, so the next boot tries again
        new.pop(MODEL_VAR, None)
        new.update({k: record[k] for k in (MODEL_VAR,) if k in record})
    save_record(ctx.layout, new)
    return ContextResult(result, changed)


def _fetch_or_keep(entry: CatalogModel, answers: Answers, base: Answers, ctx: Context,
                   warnings: list[str]) -> Answers:
    """Download a catalog model the image lacks, the current (or baked default) model serving
    meanwhile; if that fails, keep the current model and say why."""
    fallback = answers.replace(model=base.model)
    if not load_state(ctx.layout) and missing_model(fallback, ctx.layout) is None:
        # First boot: serve the baked default now, not after a long download.
        apply_answers(fallback, ctx, "context (the image's model while downloading)", acme=False)

    shown = [-1]

    def progress(p: Progress) -> None:  # every 5 %: a readable configure log
        step = int((p.fraction or 0) * 20)
        if step > shown[0]:
            shown[0] = step
            ctx.emit(Event("download", "running", f"{entry.id}: {p.done >> 20} of "
                           f"{(p.total or entry.size) >> 20} MiB"
                           + (f", {p.eta_s:.0f} s left" if p.eta_s is not None else "")))

    try:
        ctx.emit(Event("download", "running", f"{entry.id} is not in this image: downloading"))
        fetch_model(ctx.layout, ctx.site, entry, progress)
        ctx.emit(Event("download", "done", entry.id))
        return answers
    except DownloadError as exc:
        warnings.append(f"{MODEL_VAR}: {entry.id} is not in this image and could not be "
                        f"downloaded ({exc}); {base.model.id or base.model.path} keeps serving "
                        "(fix: give the VM network access to the catalog URL, or choose a model "
                        "the image contains; the next boot tries again)")
        return fallback
