"""HTTP requests, counted by the HTTP layer's middleware as each answer starts."""

from __future__ import annotations

from typing import Any

import attrs
from prometheus_client import CollectorRegistry, Counter, Histogram

# An API answer takes a millisecond or two; a play run with `?wait=` as long as the play.
REQUEST_SECONDS_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
# Methods a route may have; anything else a client sends is counted as "other", so that no
# client can add label values (each is a new series kept for the process's lifetime).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "<unmatched>"  # no route matched the path (a 404, 405 or 413 before routing)


@attrs.define
class RequestMeter:
    """`flow8_http_requests_total{route,method,status}` and
    `flow8_http_request_duration_seconds{route,method,status}`, from the request's arrival to
    the start of its answer. `route` is the route's template (`/api/plays/<playId>`), never
    the path: ids would make a series per play."""

    requests: Counter
    seconds: Histogram
    # (route, method, status) -> its two label children: one dict lookup per request.
    _children: dict[tuple[str | None, str, int], tuple[Any, Any]] = attrs.field(factory=dict)

    @classmethod
    def on(cls, registry: CollectorRegistry) -> RequestMeter:
        labels = ["route", "method", "status"]
        return cls(
            Counter(
                "flow8_http_requests",
                "HTTP requests answered, by route template, method and status.",
                labels,
                registry=registry,
            ),
            Histogram(
                "flow8_http_request_duration_seconds",
                "Time from an HTTP request's arrival to the start of its answer.",
                labels,
                buckets=REQUEST_SECONDS_BUCKETS,
                registry=registry,
            ),
        )

    def observe(self, route: str | None, method: str, status: int, seconds: float) -> None:
        if method not in _METHODS:
            method = "other"
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            values = (route or UNMATCHED, method, str(status))
            children = self._children[key] = (
                self.requests.labels(*values),
                self.seconds.labels(*values),
            )
        children[0].inc()
        children[1].observe(seconds)
