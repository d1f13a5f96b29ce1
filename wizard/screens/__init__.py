"""One screen per wizard step."""

from __future__ import annotations

from .apply import ApplyScreen
from .done import DoneScreen
from .key import KeyScreen
from .model import ModelScreen
from .performance import PerformanceScreen
from .review import ReviewScreen
from .status import StatusScreen
from .tls import TLSScreen

SCREENS = {"status": StatusScreen, "model": ModelScreen, "performance": PerformanceScreen,
           "tls": TLSScreen, "key": KeyScreen, "review": ReviewScreen, "apply": ApplyScreen,
           "done": DoneScreen}
