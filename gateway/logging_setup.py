"""Logging: one JSON object per line (or plain text), with secrets scrubbed.

``scim-gateway serve`` installs one handler on the root logger, writing to
stderr, through :func:`dict_config` (uvicorn applies it in every worker process).
Two filters sit on that handler, so they see every record of every library:

- :class:`RequestContextFilter` adds the current request's ``request_id``,
  ``team``, ``key_id`` and ``adapter`` to records logged while it is served;
- :class:`ScrubFilter` removes secrets: anything shaped like a SCIM API key
  (:func:`gateway.keys.redact`), ``Bearer``/``Basic`` credentials and
  ``Authorization`` header values in the message, the exception text and every
  string attribute; attributes whose name marks them sensitive (``password``,
  ``client_secret``, ``token``, ``authorization``, ... see :func:`is_sensitive`)
  are replaced by ``[redacted]`` whatever their value, in nested mappings too.

:func:`write_direct` writes a line without a :class:`logging.LogRecord` when the
record would provably reach that one handler and nothing else (the access log
uses it: a record costs more than the rest of its line).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

import orjson

from .keys import redact

__all__ = [
    "FORMATS",
    "LEVELS",
    "REDACTED",
    "JsonFormatter",
    "RequestContextFilter",
    "ScrubFilter",
    "TextFormatter",
    "configure",
    "dict_config",
    "direct_handler",
    "is_sensitive",
    "mark_sensitive",
    "request_fields",
    "scrub",
    "write_direct",
]

LEVELS = ("critical", "error", "warning", "info", "debug")
FORMATS = ("json", "text")
REDACTED = "[redacted]"

request_fields: ContextVar[Callable[[], Mapping[str, Any]] | None] = ContextVar(
    "scim_gateway_request_fields", default=None
)
"""While a request is served: a function giving the fields every record of it carries."""

_SENSITIVE_WORDS = re.compile(
    r"password|passwd|secret|token|credential|authorization|cookie|api_?key|private_?key", re.I
)
_SENSITIVE_NAMES: set[str] = set()

# Cheap first look: most text holds none of these, and is returned as it is.
_MAYBE_SECRET = re.compile(r"(?i)scimgw_|bearer|basic|authorization")
_CREDENTIAL_RE = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{6,}")
_AUTH_HEADER_RE = re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)[^\r\n\"']+")

# Attributes every LogRecord has (everything else came through ``extra``), and
# uvicorn's copy of its message with terminal colours.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


_DERIVED_CACHES: list[Callable[[], None]] = []
"""The ``cache_clear`` of caches built on :func:`is_sensitive` (the audit log's)."""


def on_sensitive_marked(clear: Callable[[], None]) -> None:
    """Have :func:`mark_sensitive` call ``clear`` too (a cache of what it changes)."""
    _DERIVED_CACHES.append(clear)


def mark_sensitive(*names: str) -> None:
    """Declare more record attribute names whose values are never logged."""
    _SENSITIVE_NAMES.update(name.lower() for name in names)
    is_sensitive.cache_clear()
    for clear in _DERIVED_CACHES:
        clear()


@functools.lru_cache(maxsize=4096)
def is_sensitive(name: str) -> bool:
    """Whether a record attribute (or mapping key) of this name holds a secret: its
    name says password, secret, token, credential, authorization, cookie, API key or
    private key, or it was declared with :func:`mark_sensitive`."""
    return name.lower() in _SENSITIVE_NAMES or _SENSITIVE_WORDS.search(name) is not None


def scrub(text: str) -> str:
    """``text`` without credentials: header values, bearer tokens, key-shaped strings."""
    if text.isascii():
        # What _MAYBE_SECRET looks for, at a fraction of its cost (every access line
        # scrubs its path and request id). Only for ASCII: the pattern's IGNORECASE
        # also matches non-ASCII letters (U+017F for 's', U+212A for 'k') that lower() keeps.
        lower = text.lower()
        if not (
            "scimgw_" in lower or "bearer" in lower or "basic" in lower or "authorization" in lower
        ):
            return text
    elif not _MAYBE_SECRET.search(text):
        return text
    text = _AUTH_HEADER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _CREDENTIAL_RE.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return redact(text)


def _scrub_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if depth > 5:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and is_sensitive(k) else _scrub_value(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub_value(v, depth + 1) for v in value]
    return value


class ScrubFilter(logging.Filter):
    """Removes secrets from a record before any formatter sees it (see the module doc)."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_scrubbed", False):
            return True  # built from values that hold no secret (the access log)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what can be shown
            message = f"{record.msg!s} {record.args!r}"
        record.msg = scrub(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = scrub(record.stack_info)
        attributes = vars(record)
        for name in attributes.keys() - _STANDARD:
            value = attributes[name]
            attributes[name] = REDACTED if is_sensitive(name) else _scrub_value(value)
        return True


class RequestContextFilter(logging.Filter):
    """Adds the fields of the request being served (request id, team, key, adapter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = request_fields.get()
        if fields is not None:
            for name, value in fields().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


_second: tuple[int, str] = (-1, "")


def _timestamp(record: logging.LogRecord) -> str:
    """``2026-11-29T00:55:23.813Z``: UTC, milliseconds. The part up to the second is
    kept from the previous record: a busy gateway logs many records per second."""
    return _timestamp_at(record.created)


def _timestamp_at(created: float) -> str:
    global _second
    whole = int(created)
    second, prefix = _second
    if whole != second:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (whole, prefix)
    return f"{prefix}.{int((created - whole) * 1000):03d}Z"


class _LineFormatter(logging.Formatter):
    """A formatter that can also write a line from its fields, without a record."""

    def format_fields(
        self, created: float, levelno: int, name: str, message: str, fields: Mapping[str, Any]
    ) -> str:
        """What :meth:`format` gives for a record of logger ``name`` made at ``created``
        whose message is ``message`` and whose own attributes (its ``extra``) are
        ``fields``, with no exception or stack: the line, without the record."""
        level = logging.getLevelName(levelno)
        return self._plain(_timestamp_at(created), level, name, message, fields)

    def _plain(
        self, timestamp: str, level: str, name: str, message: str, fields: Mapping[str, Any]
    ) -> str:
        """The line of a record without exception or stack."""
        raise NotImplementedError


class JsonFormatter(_LineFormatter):
    """One JSON object per record: timestamp, level, logger, message, then the
    record's own fields (request_id, team, status, ...) and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = self._entry(
            _timestamp(record), record.levelname, record.name, record.getMessage(), vars(record)
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return _dumps(entry)

    def _plain(
        self, timestamp: str, level: str, name: str, message: str, fields: Mapping[str, Any]
    ) -> str:
        return _dumps(self._entry(timestamp, level, name, message, fields))

    @staticmethod
    def _entry(
        timestamp: str, level: str, name: str, message: str, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "timestamp": timestamp,
            "level": level,
            "logger": name,
            "message": message,
        }
        for attribute, value in attributes.items():
            if attribute not in _STANDARD and not attribute.startswith("_"):
                entry[attribute] = value
        return entry


def _dumps(entry: dict[str, Any]) -> str:
    try:
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # what orjson refuses (an integer beyond 64 bits, ...)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(_LineFormatter):
    """``timestamp level logger [request id] message key=value ...`` for a terminal.

    An access line's method, route, status and duration are already in its message."""

    _IN_MESSAGE = frozenset({"method", "route", "status", "duration_ms"})

    def format(self, record: logging.LogRecord) -> str:
        line = self._plain(
            _timestamp(record), record.levelname, record.name, record.getMessage(), vars(record)
        )
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + record.stack_info
        return line

    def _plain(
        self,
        timestamp: str,
        level: str,
        name: str,
        message: str,
        attributes: Mapping[str, Any],
    ) -> str:
        extra = {
            attribute: value
            for attribute, value in attributes.items()
            if attribute not in _STANDARD and not attribute.startswith("_")
        }
        request_id = extra.pop("request_id", None)
        if "route" in extra:
            for attribute in self._IN_MESSAGE:
                extra.pop(attribute, None)
        parts = [timestamp, level, name]
        if request_id:
            parts.append(f"[{request_id}]")
        parts.append(message)
        parts.extend(f"{k}={v}" for k, v in extra.items() if v not in (None, ""))
        return " ".join(parts)


_FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


def _check(level: str, fmt: str) -> None:
    if level.lower() not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if fmt not in FORMATS:
        raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")


def dict_config(level: str = "info", fmt: str = "json") -> dict[str, Any]:
    """A :func:`logging.config.dictConfig` schema: every record, uvicorn's
    included, goes through one scrubbed handler on stderr."""
    _check(level, fmt)
    name = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "request": {"()": f"{__name__}.RequestContextFilter"},
            "scrub": {"()": f"{__name__}.ScrubFilter"},
        },
        "formatters": {fmt: {"()": f"{__name__}.{_FORMATTERS[fmt].__name__}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": fmt,
                "filters": ["request", "scrub"],
            }
        },
        "root": {"level": name, "handlers": ["stderr"]},
        # uvicorn's loggers hand their records to the root handler.
        "loggers": {
            logger: {"level": name, "handlers": [], "propagate": True}
            for logger in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
        },
    }


def configure(
    level: str = "info", fmt: str = "json", *, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every record to ``stream`` (stderr) through the scrubbing filters, in
    ``fmt``; replaces the handlers the root logger had. Returns the handler."""
    _check(level, fmt)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_FORMATTERS[fmt]())
    handler.addFilter(RequestContextFilter())
    handler.addFilter(ScrubFilter())
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler


# --- a line without a record ----------------------------------------------------------

_DIRECT_FORMATTERS = (JsonFormatter, TextFormatter)

if sys.version_info >= (3, 13):

    def _now() -> float:
        """What :attr:`logging.LogRecord.created` of a record made now would be."""
        return time.time_ns() / 1e9

else:

    def _now() -> float:
        """What :attr:`logging.LogRecord.created` of a record made now would be."""
        return time.time()


def direct_handler(logger: logging.Logger, levelno: int) -> logging.StreamHandler[Any] | None:
    """The handler a record of ``levelno`` handled by ``logger`` would reach, when it
    is the only thing that would see the record and it is the handler
    :func:`configure` and :func:`dict_config` install: a plain
    :class:`logging.StreamHandler` with our :class:`JsonFormatter` or
    :class:`TextFormatter` and exactly our :class:`RequestContextFilter` then
    :class:`ScrubFilter`. ``None`` for anything else: a filter on ``logger``, another
    handler on it or on a logger it propagates to (pytest's ``caplog``, an operator's),
    a record factory or logger class of someone else's, a handler whose level drops
    the record, no handler at all (the last resort).

    The caller has checked ``logger.isEnabledFor(levelno)`` (which also answers for
    :func:`logging.disable`). Nothing is cached: handlers, filters and levels are read
    at each call, so a change is seen by the next record."""
    if (
        type(logger) is not logging.Logger
        or logger.disabled
        or logger.filters
        or logging.getLogRecordFactory() is not logging.LogRecord
    ):
        return None
    found: logging.Handler | None = None
    current: logging.Logger | None = logger
    while current is not None:  # the walk of Logger.callHandlers
        handlers = current.handlers
        if handlers:
            if found is not None or len(handlers) != 1:
                return None
            found = handlers[0]
        if not current.propagate:
            break
        current = current.parent
    if type(found) is not logging.StreamHandler or levelno < found.level:
        return None
    if type(found.formatter) not in _DIRECT_FORMATTERS:
        return None
    filters = found.filters
    if (
        len(filters) != 2
        or type(filters[0]) is not RequestContextFilter
        or type(filters[1]) is not ScrubFilter
    ):
        return None
    return found


def write_direct(
    logger: logging.Logger,
    levelno: int,
    message: str,
    fields: Mapping[str, Any],
    record: Callable[[], logging.LogRecord],
) -> bool:
    """Write the line ``logger`` would write for a record of ``levelno``, ``message``
    and ``extra`` ``fields``, without making the record, when :func:`direct_handler`
    finds the handler it would reach; ``False`` (nothing written) otherwise, and the
    caller logs the record as usual.

    For the caller to guarantee, as the record path does not check them: the record
    would pass both filters unchanged, so ``fields`` holds ``_scrubbed`` (its values
    hold no secret) and every field :data:`request_fields` would add; no field is
    named like a :class:`logging.LogRecord` attribute. ``record`` makes the record,
    which is only needed for :meth:`logging.Handler.handleError` if writing fails."""
    handler = direct_handler(logger, levelno)
    if handler is None:
        return False
    formatter: _LineFormatter = handler.formatter  # type: ignore[assignment]
    created = _now()
    # StreamHandler.handle and emit, with the formatter given the fields themselves.
    handler.acquire()
    try:
        line = formatter.format_fields(created, levelno, logger.name, message, fields)
        handler.stream.write(line + handler.terminator)
        handler.flush()
    except RecursionError:  # as StreamHandler.emit
        raise
    except Exception:
        handler.handleError(record())
    finally:
        handler.release()
    return True
