"""Configuration errors.

Exception
└── ConfigError          a setting is missing, malformed or out of range; one line, names the key
"""

from __future__ import annotations


class ConfigError(Exception):
    """A bad configuration value. ``str()`` is the single line shown to the user at start-up."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"config error: {key}: {problem}")
