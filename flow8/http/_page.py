"""Pagination: `?page=0&size=25` (size at most 100) -> `{data, total, page, size, pages}`."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import attrs

from flow8.domain import field

MAX_SIZE = 100


@attrs.frozen
class PageQuery:
    page: int = field(default=0, minimum=0, maximum=1_000_000)
    size: int = field(default=25, minimum=1, maximum=MAX_SIZE)


@functools.cache
def page_of(item: type) -> type:
    """The page model for `item`, named `<Item>Page` in the OpenAPI document."""
    return attrs.make_class(
        f"{item.__name__}Page",
        {
            "data": attrs.field(type=list[item]),  # type: ignore[valid-type]
            "total": attrs.field(type=int),
            "page": attrs.field(type=int),
            "size": attrs.field(type=int),
            "pages": attrs.field(type=int),
        },
        frozen=True,
    )


def make_page(item: type, rows: Sequence[Any], total: int, query: PageQuery) -> Any:
    pages = (total + query.size - 1) // query.size
    return page_of(item)(
        data=list(rows), total=total, page=query.page, size=query.size, pages=pages
    )


def slice_page(item: type, rows: Sequence[Any], query: PageQuery) -> Any:
    start = query.page * query.size
    return make_page(item, rows[start : start + query.size], len(rows), query)
