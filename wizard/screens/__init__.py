"""One screen per wizard step. Screens import nothing from the app: they read it through
``base.Host`` and post ``messages``."""

from __future__ import annotations

from .apply import ApplyScreen
from .base import StepScreen
from .done import DoneScreen
from .key import KeyScreen
from .model import ModelScreen
from .performance import PerformanceScreen
from .review import ReviewScreen
from .status import StatusScreen
from .tls import TLSScreen

SCREENS: dict[str, type[StepScreen]] = {
    "status": StatusScreen, "model": ModelScreen, "performance": PerformanceScreen,
    "tls": TLSScreen, "key": KeyScreen, "review": ReviewScreen, "apply": ApplyScreen,
    "done": DoneScreen}
