"""The audit log: every provisioning change of a team, as an operator reads it back.

:func:`record_audit` is one of the gateway's recorders: it runs inside the
transaction of the write that made the changes, so a change and its record commit
together or not at all. Each record says when, which key (id and name) through
which adapter, the request id, the change in words ("deactivated user
alice@example.com"), the resource, and what changed, with the values of sensitive
attributes (passwords, secrets, tokens, certificates) redacted and anything
shaped like a SCIM API key masked.

Records are kept ``[audit] retention_days`` days; :func:`purge_audit` deletes older
ones (at startup and hourly, by the delivery worker).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select

from plugins import ProvisioningEvent

from .keys import redact
from .logging_setup import is_sensitive as secret_named
from .logging_setup import on_sensitive_marked
from .scim.schemas import GROUP, USER, Attribute
from .store.common import team_check
from .store.db import Database, kept_names, scratch
from .store.fast import Prepared
from .store.query import groups, users
from .store.tables import AuditRecord, Team
from .teams import TeamError

__all__ = [
    "REDACTED",
    "AuditPage",
    "AuditRecordInfo",
    "describe",
    "list_audit",
    "parse_since",
    "purge_audit",
    "record_audit",
    "redact_changes",
]

audit_records = AuditRecord.__table__  # type: ignore[attr-defined]
teams = Team.__table__  # type: ignore[attr-defined]

REDACTED = "[redacted]"

_INSERT_RECORD = Prepared(insert(audit_records))


def _never_returned(attributes: Iterable[Attribute]) -> set[str]:
    names: set[str] = set()
    for attr in attributes:
        if attr.returned == "never":
            names.add(attr.name.lower())
        names |= _never_returned(attr.sub_attributes)
    return names


_NEVER_RETURNED = frozenset(
    name
    for rt in (USER, GROUP)
    for schema in (rt.schema, *(ext for ext, _required in rt.extensions))
    for name in _never_returned(schema.attributes)
)


@functools.lru_cache(maxsize=4096)
def is_sensitive(name: str) -> bool:
    """Whether values of the attribute ``name`` are kept out of records (asked for
    every key of every event's changes: a 100-member add records 100 events, hence
    the cache, which :func:`~gateway.logging_setup.mark_sensitive` clears)."""
    short = name.rsplit(":", 1)[-1].rsplit(".", 1)[-1].lower()
    return short in _NEVER_RETURNED or short == "x509certificates" or secret_named(name)


on_sensitive_marked(is_sensitive.cache_clear)


_SCALARS = (type(None), bool, int, float)


def redact_changes(value: Any) -> Any:
    """``value`` with sensitive attributes' values replaced and keys masked.

    Only values are hidden: a list of attribute *names* (``{"attributes":
    ["password"]}``) says that the password changed, which the record should say.
    """
    # The leaves of every event's changes first, by their exact type: the checks
    # below (``Mapping`` is an ABC) cost more than the leaves' own handling.
    if type(value) is str:
        return redact(value)
    if type(value) in _SCALARS:
        return value
    if type(value) is dict:
        # Every event's changes: a membership's three ids, an update's attribute names.
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = k if type(k) is str else str(k)
            if is_sensitive(key):
                out[key] = REDACTED
            elif type(v) is str:
                out[key] = redact(v)
            else:
                out[key] = v if type(v) in _SCALARS else redact_changes(v)
        return out
    if isinstance(value, Mapping):
        return redact_changes(dict(value))
    if isinstance(value, list | tuple):
        return [redact_changes(v) for v in value]
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


# --- describing a change in words ------------------------------------------------------


WRITE_TEAMS = "write_teams"
"""Key of :func:`~gateway.store.db.scratch` under which the write being recorded names
its team's pk by slug (see :meth:`gateway.app.Gateway.record`), sparing each recorder
a lookup."""

_MEMBER_KINDS = ("member.added", "member.removed")
_CHUNK = 500


def _names_by_id(id_col: Any, name_col: Any, table: Any) -> Prepared:
    return Prepared(
        select(id_col, name_col).where(
            team_check(table.c.team_pk, bindparam("team_pk")),
            id_col.in_(bindparam("ids", expanding=True)),
        )
    )


_USER_NAMES = _names_by_id(users.c.id, users.c.user_name, users)
_GROUP_NAMES = _names_by_id(groups.c.id, groups.c.display_name, groups)


class Names:
    """The names a write's events mention (userNames, group displayNames), looked up
    together in the write's transaction: one query per kind of resource, not one per
    event. A 100-member PATCH records 100 events.

    What the write itself read or wrote is not looked up: the userNames of the members
    it added and the displayNames of the groups it changed, kept by the store
    (:func:`~gateway.store.db.kept_names`) as they are now in it."""

    def __init__(self, conn: Connection, team_pk: int, events: Iterable[ProvisioningEvent]):
        wanted: dict[str, set[str]] = {"User": set(), "Group": set()}
        for event in events:
            if not event.display and event.resource_type in wanted:
                wanted[event.resource_type].add(event.resource_id)
            if event.kind in _MEMBER_KINDS:
                member_type = "Group" if event.changes.get("member_type") == "Group" else "User"
                wanted[member_type].add(str(event.changes.get("member", "")))
        self.users: dict[str, str | None] = {}
        self.groups: dict[str, str | None] = {}
        # Most writes name what they changed (a create, a PATCH): nothing to look up.
        if wanted["User"]:
            self.users = self._lookup(conn, _USER_NAMES, team_pk, wanted["User"], "User")
        if wanted["Group"]:
            self.groups = self._lookup(conn, _GROUP_NAMES, team_pk, wanted["Group"], "Group")

    @staticmethod
    def _lookup(
        conn: Connection, stmt: Prepared, team_pk: int, ids: set[str], resource_type: str
    ) -> dict[str, str | None]:
        """The names of ``ids``: those the write kept (:func:`kept_names`), then the
        others as the database has them."""
        known = kept_names(conn, resource_type, team_pk)
        found = {i: known[i] for i in ids if i in known}
        wanted = sorted(ids - found.keys())
        for i in range(0, len(wanted), _CHUNK):
            rows = stmt.rows(conn, {"team_pk": team_pk, "ids": wanted[i : i + _CHUNK]})
            found.update({row[0]: row[1] for row in rows})
        return found

    def of(self, resource_type: str, resource_id: str) -> str | None:
        if resource_type == "User":
            return self.users.get(resource_id)
        if resource_type == "Group":
            return self.groups.get(resource_id)
        return None


def resource_display(
    conn: Connection, team_pk: int, event: ProvisioningEvent, names: Names | None = None
) -> str | None:
    """The resource's name: the event's, else looked up in the write's transaction."""
    if event.display:
        return event.display
    names = names or Names(conn, team_pk, [event])
    return names.of(event.resource_type, event.resource_id)


def _member(names: Names, changes: Mapping[str, Any]) -> str:
    member_id = str(changes.get("member", ""))
    if changes.get("member_type") == "Group":
        return f"group {names.of('Group', member_id) or member_id}"
    return f"user {names.of('User', member_id) or member_id}"


def _pair(value: Any) -> tuple[Any, Any]:
    """``[old, new]`` as a pair (``None`` for what is missing)."""
    items = list(value) if isinstance(value, list | tuple) else []
    return (items[0] if items else None, items[1] if len(items) > 1 else None)


def _names(value: Any) -> str:
    return ", ".join(str(v) for v in value) if isinstance(value, list | tuple) else ""


def describe(event: ProvisioningEvent, display: str | None, names: Names) -> str:
    """The change in words, e.g. ``added user bob@example.com to group Admins``."""
    changes = event.changes
    noun = event.resource_type.lower()
    name = display or event.resource_id
    kind = event.kind
    if kind in ("member.added", "member.removed"):
        verb, prep = ("added", "to") if kind == "member.added" else ("removed", "from")
        return f"{verb} {_member(names, changes)} {prep} group {name}"
    if kind == "group.renamed":
        old, new = _pair(changes.get("displayName"))
        return f"renamed group {old} to {new}"
    if kind == "role.changed":
        old, new = _pair(changes.get("role"))
        return f"changed the role of user {name} from {old or 'none'} to {new or 'none'}"
    verb = kind.split(".", 1)[-1]
    text = f"{verb} {noun} {name}"
    if kind.endswith(".updated") and _names(changes.get("attributes")):
        text += f" ({_names(changes.get('attributes'))})"
    if kind == "user.deleted" and changes.get("tombstone"):
        text += " (kept as a tombstone)"
    if changes.get("restored_from"):
        text += f" (restored from {changes['restored_from']})"
    if changes.get("reason"):
        text += f" ({changes['reason']})"
    return text


def _subject_user(event: ProvisioningEvent) -> str | None:
    if event.resource_type == "User":
        return event.resource_id
    if event.kind.startswith("member.") and event.changes.get("member_type", "User") == "User":
        member = event.changes.get("member")
        return str(member) if member else None
    return None


def team_pk_of(conn: Connection, slug: str) -> int:
    known: dict[str, int] | None = scratch(conn).get(WRITE_TEAMS)
    if known is not None and slug in known:
        return known[slug]
    pk: int | None = conn.execute(select(teams.c.pk).where(teams.c.slug == slug)).scalar()
    if pk is None:
        raise TeamError(f"No team {slug!r}.", status=404)
    return pk


def team_and_names(
    conn: Connection,
    team: str,
    events: list[ProvisioningEvent],
    seen: dict[str, tuple[int, Names]],
) -> tuple[int, Names]:
    """The team's pk and the names its events (of ``events``) mention: looked up at its
    first event, then kept in ``seen`` for the rest (a 100-member PATCH records 100)."""
    found = seen.get(team)
    if found is None:
        team_pk = team_pk_of(conn, team)
        found = seen[team] = (team_pk, Names(conn, team_pk, [e for e in events if e.team == team]))
    return found


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:  # every event's (routes.common.Ctx.events_of)
        return value
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def audit_rows(conn: Connection, events: list[ProvisioningEvent]) -> list[dict[str, Any]]:
    """The audit records of one write's events (the write's own connection)."""
    teams: dict[str, tuple[int, Names]] = {}
    rows = []
    for event in events:
        team_pk, names = team_and_names(conn, event.team, events, teams)
        display = resource_display(conn, team_pk, event, names)
        rows.append(
            {
                "team_pk": team_pk,
                "occurred_at": _utc(event.occurred_at),
                "kind": event.kind,
                "action": redact(describe(event, display, names)),
                "resource_type": event.resource_type,
                "resource_id": event.resource_id,
                "resource_display": redact(display) if display else None,
                "user_id": _subject_user(event),
                "changes": redact_changes(event.changes),
                "key_id": event.key_id,
                "key_name": event.key_name,
                "adapter": event.adapter,
                "request_id": event.request_id,
            }
        )
    return rows


def record_audit(conn: Connection, events: list[ProvisioningEvent]) -> None:
    """The recorder: store the events' audit records in the write's transaction."""
    rows = audit_rows(conn, events)
    if rows:
        _INSERT_RECORD.many(conn, rows)


def purge_audit(db: Database, retention_days: int, *, now: datetime | None = None) -> int:
    """Delete records older than the retention period; returns how many."""
    cutoff = _utc(now or datetime.now(UTC)) - timedelta(days=retention_days)

    def work(conn: Connection) -> int:
        result = conn.execute(delete(audit_records).where(audit_records.c.occurred_at < cutoff))
        return int(result.rowcount or 0)

    return db.call(work, write=True)


# --- reading it back -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRecordInfo:
    id: int
    team: str
    occurred_at: datetime
    kind: str
    action: str
    resource_type: str
    resource_id: str
    resource_display: str | None
    user_id: str | None
    changes: dict[str, Any]
    key_id: str | None
    key_name: str | None
    adapter: str | None
    request_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "team": self.team,
            "occurred_at": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "kind": self.kind,
            "action": self.action,
            "resource": {
                "type": self.resource_type,
                "id": self.resource_id,
                "display": self.resource_display,
            },
            "user_id": self.user_id,
            "changes": self.changes,
            "key": {"id": self.key_id, "name": self.key_name},
            "adapter": self.adapter,
            "request_id": self.request_id,
        }


@dataclass(frozen=True, slots=True)
class AuditPage:
    total: int
    start_index: int
    records: list[AuditRecordInfo]

    def to_dict(self) -> dict[str, Any]:
        return {
            "totalResults": self.total,
            "startIndex": self.start_index,
            "itemsPerPage": len(self.records),
            "records": [r.to_dict() for r in self.records],
        }


def list_audit(
    db: Database,
    slug: str,
    *,
    user_id: str | None = None,
    since: datetime | None = None,
    start_index: int = 1,
    count: int = 100,
) -> AuditPage:
    """A page of the team's records, newest first (``start_index`` is 1-based)."""
    start_index = max(1, start_index)
    count = max(0, count)
    if user_id is not None and "\x00" in user_id:
        user_id = ""  # no id holds NUL (which PostgreSQL refuses in a query): no match

    def work(conn: Connection) -> AuditPage:
        row = conn.execute(select(teams.c.pk).where(teams.c.slug == slug)).first()
        if row is None:
            raise TeamError(
                f"No team {slug!r}. Create it with: scim-gateway teams create {slug}", status=404
            )
        where = [audit_records.c.team_pk == row.pk]
        if user_id is not None:
            where.append(audit_records.c.user_id == user_id)
        if since is not None:
            where.append(audit_records.c.occurred_at >= _utc(since))
        total = conn.execute(
            select(func.count()).select_from(audit_records).where(*where)
        ).scalar_one()
        rows: Sequence[Row[Any]] = ()
        if start_index <= total and count:  # (an offset past the end may not fit an integer)
            rows = conn.execute(
                select(audit_records)
                .where(*where)
                .order_by(audit_records.c.pk.desc())
                .offset(start_index - 1)
                .limit(count)
            ).all()
        records = [
            AuditRecordInfo(
                id=r.pk,
                team=slug,
                occurred_at=_utc(r.occurred_at),
                kind=r.kind,
                action=r.action,
                resource_type=r.resource_type,
                resource_id=r.resource_id,
                resource_display=r.resource_display,
                user_id=r.user_id,
                changes=dict(r.changes or {}),
                key_id=r.key_id,
                key_name=r.key_name,
                adapter=r.adapter,
                request_id=r.request_id,
            )
            for r in rows
        ]
        return AuditPage(int(total), start_index, records)

    return db.call(work)


_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``2024-05-01``, ``2024-05-01T12:00:00Z`` (UTC unless a zone is given), or a
    duration back from now: ``90m``, ``12h``, ``7d``, ``2w``."""
    text = text.strip()
    match = _RELATIVE.match(text.lower())
    try:
        if match is not None:
            delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
            return (now or datetime.now(UTC)) - delta
        value = datetime.fromisoformat(text)
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ValueError(
            f"{text!r} is not a time: use an ISO 8601 date or time (2024-05-01, "
            "2024-05-01T12:00:00Z) or a duration back from now (90m, 12h, 7d, 2w)."
        ) from None
