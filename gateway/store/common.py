"""Helpers shared by the user and group repositories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

__all__ = [
    "ListQuery",
    "Page",
    "etag",
    "iso",
    "meta",
    "meta_of",
    "team_check",
    "total_of_page",
    "utcnow",
]


def team_check(column: Any, team_pk: Any) -> Any:
    """``column = team_pk`` as a check on rows another index found, never as the index
    to search: ``team_pk + 0`` is not an indexed expression. Without it, SQLite (which
    keeps no statistics unless told to) answered ``team_pk = ? AND id IN (100 ids)``
    by reading every user of the team, which made adding 100 members to a group of a
    100,000-user team take 40 ms instead of 4."""
    return (column + 0) == team_pk


def utcnow() -> datetime:
    """Now, in UTC, to the millisecond (the precision ``meta`` shows)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: datetime | str) -> str:
    """``2026-11-28T22:36:38.123Z``: UTC to the millisecond (a naive value is UTC).

    Cut from ``isoformat()``'s ``YYYY-MM-DDTHH:MM:SS[.ffffff][+HH:MM]``: a page of 100
    users shows 200 of these, and the plain form is the cheapest the standard library
    makes (``timespec`` and dropping the zone each cost more than the slicing). Text
    is a timestamp as SQLite stores it, ``YYYY-MM-DD HH:MM:SS[.ffffff]`` in UTC (what a
    list page reads), cut the same way."""
    if type(value) is str:
        head, _, fraction = value.partition(".")
        return f"{head[:10]}T{head[11:19]}.{(fraction + '000')[:3]}Z"
    assert isinstance(value, datetime)
    if value.tzinfo is not None and value.tzinfo is not UTC and value.utcoffset():
        value = value.astimezone(UTC)
    text = value.isoformat()
    if len(text) > 19 and text[19] == ".":
        return text[:23] + "Z"
    return text[:19] + ".000Z"


def etag(version: int) -> str:
    return f'W/"{version}"'


def meta(resource_type: str, row: Any, location: str) -> dict[str, Any]:
    """``meta`` of a stored resource's row (anything with its columns as attributes)."""
    return meta_of(resource_type, row.created, row.last_modified, row.version, location)


def meta_of(
    resource_type: str,
    created: datetime | str,
    last_modified: datetime | str,
    version: int,
    location: str,
) -> dict[str, Any]:
    shown = iso(created)
    return {
        "resourceType": resource_type,
        "created": shown,
        # One instant for a resource just created: formatted once.
        "lastModified": shown if last_modified is created else iso(last_modified),
        "location": location,
        "version": etag(version),
    }


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A parsed list/search request (RFC 7644 §3.4.2)."""

    filter: Any = None  # gateway.scim.filter.Node | None
    sort_by: Any = None  # gateway.scim.filter.AttrPath | None
    descending: bool = False
    start_index: int = 1
    count: int = 100


@dataclass(frozen=True, slots=True)
class Page:
    total: int
    resources: list[Any]
    """The resources: dicts, or JSON already written (``orjson.Fragment``, see
    :func:`gateway.store.users.render_users`)."""
    start_index: int


def page_total(conn: Connection, table: Any, where: list[Any], query: ListQuery, shown: int) -> int:
    """``totalResults`` for a page of ``shown`` rows: counted only when the page
    itself cannot tell (it is full, or it is empty past the first index)."""
    return total_of_page(
        query,
        shown,
        lambda: int(
            conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        ),
    )


def total_of_page(query: ListQuery, shown: int, count: Callable[[], int]) -> int:
    """``totalResults`` from the page when it can tell, else from ``count()``."""
    if query.count and 0 < shown < query.count:
        return query.start_index - 1 + shown
    if query.count and shown == 0 and query.start_index == 1:
        return 0
    return count()
