"""Cursor pagination: pages in id order, each naming where the next one starts.

A cursor is the last id of a page, base64url-encoded: opaque to callers, stable while rows
are added (new rows come after it) or deleted (a missing id is simply passed over), and one
indexed range query per page however deep it goes, unlike an offset.
"""

import base64
import binascii

from django.db.models import QuerySet
from ninja import Schema

from api.exceptions import Invalid

PAGE_SIZE = 50
PAGE_SIZE_MAX = 100


class Page[T](Schema):
    items: list[T]
    next_cursor: str | None = None


def cursor_make(pk: int) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def cursor_read(cursor: str) -> int:
    """The id a cursor stands for; Invalid if it is not one this API made."""
    try:
        value = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii"))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        value = -1
    if value < 0:
        raise Invalid("The cursor is not one this API gave out.", errors=[{"field": "cursor", "message": "unknown"}])
    return value


def filtered(queryset: QuerySet, **lookups) -> QuerySet:
    """`queryset` narrowed by each lookup the caller gave (a None value: not asked for)."""
    given = {lookup: value for lookup, value in lookups.items() if value is not None}
    return queryset.filter(**given) if given else queryset


def paginate(queryset: QuerySet, *, cursor: str | None, limit: int, values: tuple[str, ...] = ()) -> dict:
    """One page of `queryset` after `cursor`, in id order, and the cursor of the next page (None at the end).

    With `values` (which must hold "id"), the rows are dicts of those fields: no model instances to build.
    """
    if cursor:
        queryset = queryset.filter(pk__gt=cursor_read(cursor))
    queryset = queryset.order_by("pk")
    rows = list((queryset.values(*values) if values else queryset)[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1]["id"] if values and rows else rows[-1].pk if rows else None
    return {"items": rows, "next_cursor": cursor_make(last) if more else None}
