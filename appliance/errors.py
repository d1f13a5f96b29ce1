"""Errors the operator sees, as a small typed tree.

    ApplianceError            anything we report without a traceback
    ├── AnswersError          invalid input: carries every FieldError (exit 2)
    ├── SetupError            the machine lacks something (binary, sandbox not set up)
    ├── LockedError           another apply holds the lock: nothing was started (exit 1)
    ├── ApplyError            apply failed and was rolled back (carries step + log tail)
    ├── ServiceError          a service would not start/stop/reload
    ├── AcmeError             no certificate this time (carries the AcmeFailure; exit 3)
    ├── BenchError            the engine failed during a benchmark request
    └── DownloadError         a model download failed or did not verify
    GGUFError (ValueError)    not a readable GGUF; resolve reports it as a FieldError
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the failure kinds live with the ACME policy; no import at run time
    from appliance.tls.acme_policy import AcmeFailure


@dataclass(frozen=True)
class FieldError:
    """One problem with one answer: where, what is wrong, how to fix it."""

    field: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        text = f"{self.field}: {self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class ApplianceError(Exception):
    """Base for errors shown to the operator as a message, never a traceback."""

    exit_code = 1


class AnswersError(ApplianceError):
    """The answers are invalid; nothing was changed."""

    exit_code = 2

    def __init__(self, errors: list[FieldError], source: str = "answers", hint: str = "") -> None:
        self.errors = errors
        self.source = source
        self.hint = hint
        lines = [f"{source}: {len(errors)} problem(s), nothing was changed:"]
        lines += [f"  - {e}" for e in errors]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


class SetupError(ApplianceError):
    """The machine is missing something the appliance needs."""


class ServiceError(ApplianceError):
    """A service action failed."""


class ApplyError(ApplianceError):
    """Apply failed at ``step``; the previous configuration was restored."""

    def __init__(self, step: str, reason: str, log_tail: str = "", rolled_back: bool = True):
        super().__init__(step, reason)
        self.step = step
        self.reason = reason
        self.log_tail = log_tail
        self.rolled_back = rolled_back

    def __str__(self) -> str:
        state = "previous configuration restored" if self.rolled_back else "ROLLBACK INCOMPLETE"
        msg = f"apply failed at {self.step}: {self.reason} ({state})"
        if self.log_tail:
            msg += "\n--- log ---\n" + self.log_tail.rstrip()
        return msg


class LockedError(ApplianceError):
    """Another apply holds the lock (its pid is in the lock file); this one started nothing."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        holder = f" (pid {pid})" if pid else ""
        super().__init__(f"another apply is running{holder}; nothing was changed")


class AcmeError(ApplianceError):
    """A certificate could not be obtained; the previous one keeps serving (exit 3)."""

    exit_code = 3

    def __init__(self, failure: AcmeFailure) -> None:
        self.failure = failure
        super().__init__(failure.message)


class BenchError(ApplianceError):
    """The engine failed during a benchmark request."""


class DownloadError(ApplianceError):
    """A model download failed or did not match its sha256; no model file was replaced."""


class GGUFError(ValueError):
    """A file is not a readable GGUF (``resolve`` turns it into a FieldError)."""
