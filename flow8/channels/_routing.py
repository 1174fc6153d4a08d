"""Matching an http request to a channel route: method + path, where a ``{name}`` segment
of the route's path matches any one segment and becomes ``params[name]``.

Routes are compiled once per channel revision (the listener is restarted when its channel
changes), so a request costs one pass over the split path per route.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

import attrs

from flow8.services.channels import Route


@attrs.frozen
class _Compiled:
    route: Route
    segments: tuple[str, ...]
    params: tuple[int, ...]  # indexes of {param} segments


@attrs.frozen
class Match:
    route: Route
    params: dict[str, str]


class MethodNotAllowed(Exception):
    """The path matches a route, the method does not (405)."""


def _split(path: str) -> tuple[str, ...]:
    return tuple(s for s in path.split("/") if s)


@attrs.frozen
class Router:
    compiled: tuple[_Compiled, ...]

    @classmethod
    def of(cls, routes: Sequence[Route]) -> Router:
        compiled = []
        for route in routes:
            segments = _split(route.path)
            params = tuple(
                i for i, s in enumerate(segments) if s.startswith("{") and s.endswith("}")
            )
            compiled.append(_Compiled(route, segments, params))
        return cls(tuple(compiled))

    def match(self, method: str, path: str) -> Match | None:
        """The route for ``method path`` (None: no route has that path; MethodNotAllowed:
        one has, for another method)."""
        parts = _split(path)
        path_matched = False
        for c in self.compiled:
            if len(c.segments) != len(parts):
                continue
            params: dict[str, str] = {}
            for i, (want, got) in enumerate(zip(c.segments, parts, strict=True)):
                if i in c.params:
                    params[want[1:-1]] = unquote(got)
                elif want != got:
                    break
            else:
                if c.route.http_method.upper() == method:
                    return Match(c.route, params)
                path_matched = True
        if path_matched:
            raise MethodNotAllowed(method)
        return None
