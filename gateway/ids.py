"""Identifiers the gateway assigns: users', groups' and provisioning events' ``id``.

Each is a UUID of version 7 (RFC 9562, section 5.7): 48 bits of Unix time in
milliseconds, then 74 random bits, in the usual 36-character form. SCIM leaves an
``id``'s form to the service provider (RFC 7643, section 3.1); clients treat it as an
opaque string, and nothing in the gateway reads the time back out of it.

Why not version 4: every table keeps a unique index on ``id`` (and the audit an index
that leads with the user's id), and a random id lands each insert on a random page of
that index. Ids that begin with the time land together at the end of it, so a SQLite
group commit writes fewer pages to the write-ahead log (``python -m bench.inprocess a
10000 --concurrency 16 --commits``: 53-59 µs of commit per create with version 4 ids,
30-32 with version 7, docs/performance.md item 32); on PostgreSQL a random insert
dirties a random index page, and each page's first change after a checkpoint writes
the whole page to its WAL.

The time an id shows is the resource's creation, which ``meta.created`` shows anyway.
74 random bits keep ids unguessable enough for what they are, a name that is only
ever resolved inside the caller's own team.
"""

from __future__ import annotations

import os
import time

__all__ = ["new_id"]


def new_id() -> str:
    """A new UUID, version 7, as ``xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx``."""
    raw = bytearray((time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10))
    raw[6] = 0x70 | (raw[6] & 0x0F)  # version 7
    raw[8] = 0x80 | (raw[8] & 0x3F)  # the variant of RFC 9562
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
