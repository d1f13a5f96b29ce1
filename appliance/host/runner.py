"""The command runner seam: one place that executes programs (nginx -t, systemctl)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Runner(Protocol):
    def __call__(self, argv: list[str], timeout: float = 60.0) -> Result: ...


def run(argv: list[str], timeout: float = 60.0) -> Result:
    """Run without a shell; never pass secrets in ``argv``."""
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        return Result(127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return Result(124, "", f"{argv[0]}: timed out after {timeout:.0f} s")
    return Result(p.returncode, p.stdout, p.stderr)
