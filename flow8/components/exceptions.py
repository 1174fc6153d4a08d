"""What a component raises instead of an answer.

Exception
└── ComponentError               ``.code`` names the kind; ``str()`` is one line starting with it
    ├── ComponentUnavailable     COMPONENT_UNAVAILABLE: a provider's library is not installed
    │                            (names the extra), or its kind is not built yet (``ai``)
    ├── ComponentConfigError     COMPONENT_CONFIG: the config cannot work (a root that is not a
    │                            directory, a database file that does not exist)
    ├── ComponentRefused         COMPONENT_REFUSED: the component would not do what was asked
    │                            (a path escaping its root, a write on a read-only database,
    │                            an identifier that is not one)
    └── ComponentFailed          COMPONENT_FAILED: the outside world failed (connection refused,
        │                        authentication failed, a statement the database rejected)
        └── ComponentRateLimited COMPONENT_RATE_LIMITED: the service still refused after its
                                 client's retries because of a rate limit (an AI API's 429);
                                 ``retry_after``: the seconds it asked to wait, if it said

Messages never quote a secret config field (a password, a key): they may be shown to whoever
wrote the flow, who may not see the component's secrets.
"""

from __future__ import annotations


class ComponentError(Exception):
    """Base of the component errors. ``code`` is stable; ``str()`` is ``"<code>: <detail>"``."""

    code = "COMPONENT_ERROR"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"{self.code}: {detail}")


class ComponentUnavailable(ComponentError):
    code = "COMPONENT_UNAVAILABLE"


class ComponentConfigError(ComponentError):
    code = "COMPONENT_CONFIG"


class ComponentRefused(ComponentError):
    code = "COMPONENT_REFUSED"


class ComponentFailed(ComponentError):
    code = "COMPONENT_FAILED"


class ComponentRateLimited(ComponentFailed):
    code = "COMPONENT_RATE_LIMITED"

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
