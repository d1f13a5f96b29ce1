"""Errors the operator sees, as a small typed tree.

    ApplianceError            anything we report without a traceback
    ├── AnswersError          invalid input: carries every FieldError (exit 2)
    ├── SetupError            the machine lacks something (binary, sandbox not set up)
    ├── ApplyError            apply failed and was rolled back (carries step + log tail)
    │   └── LockedError       another apply holds the lock
    ├── ServiceError          a service would not start/stop/reload
    └── AcmeError             no certificate this time (carries the AcmeFailure; exit 3)
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

    def __init__(self, errors: list[FieldError], source: str = "answers") -> None:
        self.errors = errors
        self.source = source
        lines = [f"{source}: {len(errors)} problem(s), nothing was changed:"]
        lines += [f"  - {e}" for e in errors]
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


class LockedError(ApplyError):
    """Another apply is running."""

    def __init__(self, lock_path: str) -> None:
        super().__init__("lock", f"another apply is running (lock {lock_path})", rolled_back=True)


class AcmeError(ApplianceError):
    """A certificate could not be obtained; the previous one keeps serving (exit 3)."""

    exit_code = 3

    def __init__(self, failure: AcmeFailure) -> None:
        self.failure = failure
        super().__init__(failure.message)
