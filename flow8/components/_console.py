"""``console/console``: log lines on the play.

Operation ``log`` ``{level, message, data}`` -> the line as kept: ``{level, message, data,
at}``. The line is the step's output (kept with the play) and the console module publishes
it as an event, so a client watching the play sees it as it is written. Nothing is written
to the server's own log: a tenant's lines are the tenant's data.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ._provider import Operation, ProviderEnv

LEVELS = ("debug", "info", "warning", "error")


class ConsoleProvider:
    def __init__(self) -> None:
        self.operations: Mapping[str, Operation] = {"log": self._log}

    async def _log(self, input: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "level": input.get("level", "info"),
            "message": input.get("message", ""),
            "data": input.get("data"),
            "at": round(time.time(), 3),
        }

    async def check(self) -> str:
        return "ready: lines are kept with each play"

    async def aclose(self) -> None:
        return None


def open_console(_config: Mapping[str, Any], _env: ProviderEnv) -> ConsoleProvider:
    return ConsoleProvider()
