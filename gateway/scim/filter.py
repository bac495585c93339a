"""SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (RFC 7644 §3.5.2).

:func:`parse_filter` turns the text of a ``filter`` query parameter into a small,
immutable syntax tree; :func:`parse_path` does the same for the ``path`` of a PATCH
operation. :func:`to_string` prints a tree back as canonical filter text and
:func:`matches` evaluates a tree against one JSON object in memory (the PATCH engine
uses it to pick elements of a multi-valued attribute). Translating a tree into SQL
lives in :mod:`gateway.store.query`; nothing here knows about schemas or storage.

The grammar, with the leniencies the parser allows::

    FILTER    = orExp
    orExp     = andExp *(WS "or" WS andExp)            ; precedence: not > and > or
    andExp    = term *(WS "and" WS term)
    term      = "not" [WS] "(" FILTER ")"
              / "(" FILTER ")"
              / attrPath "[" valFilter "]"             ; a value path
              / attrPath WS "pr"
              / attrPath WS compareOp WS compValue
    valFilter = FILTER without further value paths; its paths are relative to the
                multi-valued attribute in front of the brackets
    attrPath  = [URI ":"] ATTRNAME ["." ATTRNAME]      ; the URI is split off at the last ":"
    ATTRNAME  = ALPHA *("-" / "_" / DIGIT / ALPHA) / "$ref"
    compValue = "false" / "null" / "true" / number / string   ; JSON literals
    WS        = 1*(SP / HTAB / CR / LF)

Operators and the words ``and``, ``or``, ``not``, ``true``, ``false`` and ``null`` are
case-insensitive; attribute names keep their spelling. ``true``, ``false`` and
``null`` may only be compared with ``eq`` or ``ne``: ordering or substring
comparisons with them are meaningless and rejected while parsing.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from .errors import InvalidFilter, InvalidPath, ScimError

__all__ = [
    "COMPARE_OPS",
    "And",
    "AttrPath",
    "Compare",
    "Node",
    "Not",
    "Or",
    "PatchPath",
    "Present",
    "ValuePath",
    "check_storable",
    "matches",
    "parse_filter",
    "parse_path",
    "to_string",
    "unstorable",
]

COMPARE_OPS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
"""The binary comparison operators, lowercased (``pr`` is :class:`Present`)."""

_OPERATOR_LIST = "eq, ne, co, sw, ew, gt, ge, lt, le or pr"


# --- syntax tree --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttrPath:
    """An attribute reference: ``[urn ":"] attr ["." sub]``, spelled as written."""

    urn: str | None
    attr: str
    sub: str | None = None

    def __str__(self) -> str:
        text = self.attr if self.urn is None else f"{self.urn}:{self.attr}"
        return text if self.sub is None else f"{text}.{self.sub}"


@dataclass(frozen=True, slots=True)
class Compare:
    """``path op value`` with ``op`` one of :data:`COMPARE_OPS`."""

    path: AttrPath
    op: str
    value: str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Present:
    """``path pr``."""

    path: AttrPath


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    """``not (expr)``."""

    expr: Node


@dataclass(frozen=True, slots=True)
class ValuePath:
    """``path[filter]``: ``filter`` is evaluated against each element of ``path``."""

    path: AttrPath
    filter: Node


Node: TypeAlias = Compare | Present | And | Or | Not | ValuePath


@dataclass(frozen=True, slots=True)
class PatchPath:
    """A PATCH ``path``: ``attrPath`` or ``valuePath ["." sub]``.

    For ``name.givenName`` the sub-attribute is ``attr.sub`` and ``sub`` is ``None``;
    for ``emails[type eq "work"].value`` it is ``attr.sub is None``, ``filter`` holds
    the bracketed filter and ``sub == "value"``.
    """

    attr: AttrPath
    filter: Node | None = None
    sub: str | None = None

    def __str__(self) -> str:
        text = str(self.attr)
        if self.filter is not None:
            text = f"{text}[{to_string(self.filter)}]"
        return text if self.sub is None else f"{text}.{self.sub}"


# --- tokens -------------------------------------------------------------------------

# A run of characters that may form an attribute path (URN included).
_PATH_WORD = re.compile(r"[A-Za-z0-9_.:$~%+/\-]+")
# A bare word: an operator, a number, true/false/null or a keyword.
_BARE = re.compile(r"[^ \t\r\n()\[\]\"]+")
_NAME = r"(?:[A-Za-z][A-Za-z0-9_\-]*|\$[Rr][Ee][Ff])"
_ATTR = re.compile(rf"({_NAME})(?:\.({_NAME}))?")
_SUB = re.compile(_NAME)
_URN = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*(?::[A-Za-z0-9_.$~%+/\-]+)+")
_STRING = re.compile(r'"((?:[^"\\]++|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*+)"')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+\-]?[0-9]+)?")
_WS_CHARS = " \t\r\n"
_KEYWORD_VALUES: dict[str, bool | None] = {"true": True, "false": False, "null": None}


def _skip_ws(text: str, pos: int) -> int:
    """The first position at or after ``pos`` that is not whitespace."""
    n = len(text)
    while pos < n and text[pos] in _WS_CHARS:
        pos += 1
    return pos


class _SyntaxError(Exception):
    def __init__(self, message: str, pos: int) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos

    def detail(self) -> str:
        return f"{self.message} (at position {self.pos})"


def _show(text: str, pos: int) -> str:
    """What the parser found at ``pos``, for error messages."""
    if pos >= len(text):
        return "the end of the text"
    m = _BARE.match(text, pos)
    token = m.group() if m else text[pos]
    if len(token) > 30:
        token = token[:27] + "..."
    return repr(token)


def _string_error(text: str, start: int) -> _SyntaxError:
    """Why the string literal opening at ``start`` failed to match :data:`_STRING`."""
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == '"':
            break
        if c == "\\":
            if not re.match(r'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})', text[i : i + 6]):
                return _SyntaxError(
                    f"invalid escape sequence {text[i : i + 2]!r} in string; JSON escapes are "
                    '\\", \\\\, \\/, \\b, \\f, \\n, \\r, \\t and \\uXXXX',
                    i,
                )
            i += 6 if text[i + 1] == "u" else 2
            continue
        i += 1
    return _SyntaxError("unterminated string: missing closing '\"'", start)


# --- parser -------------------------------------------------------------------------


class _Parser:
    """A recursive-descent parser over ``text``, driven by anchored regex matches."""

    __slots__ = ("depth", "in_value", "max_depth", "max_terms", "n", "pos", "terms", "text")

    def __init__(self, text: str, max_depth: int, max_terms: int) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.depth = 0
        self.terms = 0
        self.max_depth = max_depth
        self.max_terms = max_terms
        self.in_value = False

    # helpers

    def skip_ws(self) -> bool:
        """Skip whitespace; True when there was some."""
        end = _skip_ws(self.text, self.pos)
        moved = end != self.pos
        self.pos = end
        return moved

    def error(self, message: str, pos: int | None = None) -> _SyntaxError:
        return _SyntaxError(message, self.pos if pos is None else pos)

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.error(f"nesting deeper than {self.max_depth} levels", pos)

    def attr_path(self, word: str, pos: int) -> AttrPath:
        urn, colon, rest = word.rpartition(":")
        m = _ATTR.fullmatch(rest)
        if m is None or (colon and _URN.fullmatch(urn) is None):
            raise self.error(
                f"invalid attribute path {word!r}; expected a name like 'userName', "
                "'name.givenName' or '<schema URN>:attribute'",
                pos,
            )
        return AttrPath(urn if colon else None, m.group(1), m.group(2))

    def keyword(self, word: str) -> bool:
        """Consume ``WS word`` when it follows (``word`` then needs WS, '(' or the end)."""
        text = self.text
        start = _skip_ws(text, self.pos)
        if start == self.pos:
            return False
        end = start + len(word)
        if text[start:end].lower() != word:
            return False
        if end < self.n and text[end] not in _WS_CHARS and text[end] != "(":
            return False
        self.pos = end
        return True

    # grammar

    def parse_filter(self) -> Node:
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error("empty filter", 0)
        node = self.or_expr()
        self.end_of_text()
        return node

    def end_of_text(self) -> None:
        had_ws = self.skip_ws()
        if self.pos >= self.n:
            return
        c = self.text[self.pos]
        if c == ")":
            raise self.error("unbalanced ')': no '(' to close")
        if c == "]":
            raise self.error("unbalanced ']': no '[' to close")
        if c == "." and self.pos > 0 and self.text[self.pos - 1] == "]":
            raise self.error(
                "a sub-attribute after a value filter ('attr[...].sub') is a PATCH path, "
                "not a filter; write 'attr[sub op value]' instead"
            )
        if not had_ws:
            raise self.error(f"expected whitespace, found {_show(self.text, self.pos)}")
        raise self.error(f"expected 'and', 'or' or the end, found {_show(self.text, self.pos)}")

    def or_expr(self) -> Node:
        node = self.and_expr()
        while self.keyword("or"):
            node = Or(node, self.and_expr())
        return node

    def and_expr(self) -> Node:
        node = self.term()
        while self.keyword("and"):
            node = And(node, self.term())
        return node

    def group(self) -> Node:
        """``"(" FILTER ")"`` with ``self.pos`` on the '('."""
        open_pos = self.pos
        self.enter(open_pos)
        self.pos += 1
        node = self.or_expr()
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error(f"missing ')' to close the '(' at position {open_pos}")
        if self.text[self.pos] != ")":
            raise self.error(f"expected 'and', 'or' or ')', found {_show(self.text, self.pos)}")
        self.pos += 1
        self.depth -= 1
        return node

    def term(self) -> Node:
        self.skip_ws()
        text = self.text
        pos = self.pos
        if pos >= self.n:
            raise self.error("expected an attribute path, 'not' or '(' but the filter ends")
        c = text[pos]
        if c == "(":
            return self.group()
        m = _PATH_WORD.match(text, pos)
        if m is None:
            if c == '"':
                raise self.error("expected an attribute path, found a string")
            if c in ")]":
                raise self.error(f"expected an attribute path, 'not' or '(', found {c!r}")
            raise self.error(f"expected an attribute path, found {_show(text, pos)}")
        word = m.group()
        end = m.end()
        if word.lower() == "not":
            after = _skip_ws(text, end)
            if after < self.n and text[after] == "(":
                self.pos = after
                return Not(self.group())
        path = self.attr_path(word, pos)
        self.pos = end
        if end < self.n and text[end] == "[":
            return self.value_path(path, pos)
        return self.comparison(path, word)

    def value_path(self, path: AttrPath, start: int) -> ValuePath:
        """``attr "[" valFilter "]"`` with ``self.pos`` on the '['."""
        open_pos = self.pos
        if self.in_value:
            raise self.error("value filters cannot be nested ('a[b[...]]')", open_pos)
        if path.sub is not None:
            raise self.error(
                f"a value filter must follow a multi-valued attribute, not the "
                f"sub-attribute {str(path)!r}",
                start,
            )
        self.enter(open_pos)
        self.pos += 1
        self.skip_ws()
        if self.pos < self.n and self.text[self.pos] == "]":
            raise self.error("empty value filter '[]'", open_pos)
        self.in_value = True
        inner = self.or_expr()
        self.in_value = False
        self.skip_ws()
        if self.pos >= self.n:
            raise self.error(f"missing ']' to close the '[' at position {open_pos}")
        if self.text[self.pos] != "]":
            raise self.error(f"expected 'and', 'or' or ']', found {_show(self.text, self.pos)}")
        self.pos += 1
        self.depth -= 1
        return ValuePath(path, inner)

    def comparison(self, path: AttrPath, word: str) -> Compare | Present:
        text = self.text
        n = self.n
        if not self.skip_ws():
            if self.pos >= n or text[self.pos] in ")]":
                raise self.error(f"expected an operator ({_OPERATOR_LIST}) after {word!r}")
            raise self.error(f"expected whitespace after {word!r}, found {_show(text, self.pos)}")
        op_pos = self.pos
        m = _BARE.match(text, op_pos)
        if m is None:
            found = "the end of the text" if op_pos >= n else repr(text[op_pos])
            raise self.error(
                f"expected an operator ({_OPERATOR_LIST}) after {word!r}, found {found}"
            )
        op_word = m.group()
        op = op_word.lower()
        self.terms += 1
        if self.terms > self.max_terms:
            raise self.error(f"more than {self.max_terms} comparisons", op_pos)
        self.pos = m.end()
        if op == "pr":
            return Present(path)
        if op not in COMPARE_OPS:
            hint = " ('not' must be followed by '(')" if word.lower() == "not" else ""
            raise self.error(
                f"unknown operator {op_word!r}; expected one of {_OPERATOR_LIST}{hint}", op_pos
            )
        if not self.skip_ws():
            if self.pos >= n or text[self.pos] in ")]":
                raise self.error(f"missing value after {op_word!r}")
            raise self.error(
                f"expected whitespace after {op_word!r}, found {_show(text, self.pos)}"
            )
        value = self.value(op_word)
        if (value is None or isinstance(value, bool)) and op not in ("eq", "ne"):
            raise self.error(
                f"operator {op_word!r} cannot compare with {json.dumps(value)}; use eq or ne",
                op_pos,
            )
        return Compare(path, op, value)

    def value(self, op_word: str) -> str | int | float | bool | None:
        text = self.text
        pos = self.pos
        if pos >= self.n:
            raise self.error(f"missing value after {op_word!r}")
        if text[pos] == '"':
            m = _STRING.match(text, pos)
            if m is None:
                raise _string_error(text, pos)
            self.pos = m.end()
            body = m.group(1)
            if "\\" not in body:
                return body
            try:
                decoded: str = json.loads(m.group(), strict=False)
            except ValueError as exc:  # pragma: no cover - the regex admits valid JSON only
                raise self.error(f"invalid string: {exc}", pos) from None
            return decoded
        m = _BARE.match(text, pos)
        if m is None:
            raise self.error(f"missing value after {op_word!r}, found {text[pos]!r}")
        word = m.group()
        self.pos = m.end()
        lowered = word.lower()
        if lowered in _KEYWORD_VALUES:
            return _KEYWORD_VALUES[lowered]
        num = _NUMBER.fullmatch(word)
        if num is None:
            raise self.error(
                f'invalid value {_show(text, pos)}; expected a JSON value: a "double-quoted" '
                "string, a number, true, false or null",
                pos,
            )
        if num.group(1) is None and num.group(2) is None:
            try:
                return int(word)
            except ValueError:  # more digits than int() accepts
                raise self.error("number too long", pos) from None
        number = float(word)
        if not math.isfinite(number):
            raise self.error(f"number out of range: {word}", pos)
        return number

    def parse_path(self) -> PatchPath:
        text = self.text
        self.skip_ws()
        start = self.pos
        if start >= self.n:
            raise self.error("empty path", 0)
        m = _PATH_WORD.match(text, start)
        if m is None:
            raise self.error(f"expected an attribute name, found {_show(text, start)}")
        attr = self.attr_path(m.group(), start)
        self.pos = m.end()
        node: Node | None = None
        sub: str | None = None
        if self.pos < self.n and text[self.pos] == "[":
            if attr.sub is not None:
                raise self.error(
                    f"a value filter must follow a multi-valued attribute, not the "
                    f"sub-attribute {str(attr)!r}",
                    start,
                )
            try:
                node = self.value_path(attr, start).filter
            except _SyntaxError as exc:
                raise _SyntaxError(f"invalid filter in brackets: {exc.message}", exc.pos) from None
            if self.pos < self.n and text[self.pos] == ".":
                s = _SUB.match(text, self.pos + 1)
                if s is None:
                    raise self.error("expected a sub-attribute name after '.'", self.pos + 1)
                sub = s.group()
                self.pos = s.end()
        self.skip_ws()
        if self.pos < self.n:
            raise self.error(f"unexpected {_show(text, self.pos)} in path")
        return PatchPath(attr, node, sub)


def unstorable(text: str) -> str | None:
    """What in ``text`` no database can store, or ``None``: a NUL character (PostgreSQL
    refuses it in text) or a lone surrogate, which is not a character and has no UTF-8
    encoding (``"\\ud800"`` in a string literal, say). Both are valid in a filter's
    JSON string; a filter that compares with them cannot be run."""
    if "\x00" in text:
        return "a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "a lone surrogate (half of a \\uD800-\\uDFFF pair)"
    return None


def check_storable(node: Node, error: type[ScimError] = InvalidFilter) -> None:
    """Raise ``error`` when a string ``node`` compares with is :func:`unstorable`."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, And | Or):
            stack += (current.left, current.right)
        elif isinstance(current, Not):
            stack.append(current.expr)
        elif isinstance(current, ValuePath):
            stack.append(current.filter)
        elif isinstance(current, Compare) and isinstance(current.value, str):
            problem = unstorable(current.value)
            if problem is not None:
                raise error(
                    f"The filter compares '{current.path}' with a string that holds {problem}; "
                    "no text attribute can hold that."
                )


# ``attr eq "value"``: the filter every IdP sends before it creates a user (userName)
# or a group (displayName), read without the parser (a quarter of its cost). A name
# without a URN or sub-attribute and a string without escapes only; anything else,
# or anything this does not match, goes to the parser, which gives the same node
# (tests/scim/test_filter.py compares the two).
_PLAIN_EQ = re.compile(
    r'[ \t\r\n]*([A-Za-z][A-Za-z0-9_\-]*)[ \t\r\n]+[eE][qQ][ \t\r\n]+"([^"\\]*)"[ \t\r\n]*'
)


def parse_filter(
    text: str, *, max_length: int = 4096, max_depth: int = 50, max_terms: int = 200
) -> Node:
    """Parse a SCIM filter (RFC 7644 §3.4.2.2).

    Raises :class:`InvalidFilter` (and nothing else) when ``text`` is not a valid
    filter or exceeds the limits: ``max_length`` characters, ``max_depth`` nested
    parentheses or brackets, ``max_terms`` comparisons. Error details carry the
    0-based position of the problem.
    """
    if len(text) > max_length:
        raise InvalidFilter(
            f"Invalid filter: {len(text)} characters is longer than the limit of {max_length}."
        )
    plain = _PLAIN_EQ.fullmatch(text)
    if plain is not None and max_terms >= 1:
        return Compare(AttrPath(None, plain.group(1)), "eq", plain.group(2))
    parser = _Parser(text, max_depth, max_terms)
    try:
        return parser.parse_filter()
    except _SyntaxError as exc:
        raise InvalidFilter(f"Invalid filter: {exc.detail()}.") from None
    except RecursionError:
        raise InvalidFilter("Invalid filter: nested too deeply.") from None


def parse_path(text: str, *, max_length: int = 1024) -> PatchPath:
    """Parse a PATCH operation ``path`` (RFC 7644 §3.5.2).

    ``PATH = attrPath / valuePath [subAttr]``, e.g. ``name.familyName``,
    ``members[value eq "2819c223"]`` or ``emails[type eq "work"].value``. A bare schema
    URN is not a path; callers handle that case first. Raises :class:`InvalidPath`,
    also when the filter in brackets is malformed.
    """
    if len(text) > max_length:
        raise InvalidPath(
            f"Invalid path: {len(text)} characters is longer than the limit of {max_length}."
        )
    return _parsed_path(text)


@functools.lru_cache(maxsize=2048)
def _parsed_path(text: str) -> PatchPath:
    """:func:`parse_path` without the length check, cached: an IdP sends the same few
    paths in PATCH after PATCH, and a path's tree is immutable (frozen dataclasses of
    strings and numbers), so one parse serves them all. A path that fails is not kept."""
    parser = _Parser(text, 50, 200)
    try:
        return parser.parse_path()
    except _SyntaxError as exc:
        raise InvalidPath(f"Invalid path: {exc.detail()}.") from None
    except RecursionError:
        raise InvalidPath("Invalid path: nested too deeply.") from None


# --- printing -----------------------------------------------------------------------


def _chain(node: And | Or) -> list[Node]:
    """The operands of a left-leaning chain of the same operator, left to right."""
    operands: list[Node] = []
    current: Node = node
    if isinstance(node, And):
        while isinstance(current, And):
            operands.append(current.right)
            current = current.left
    else:
        while isinstance(current, Or):
            operands.append(current.right)
            current = current.left
    operands.append(current)
    operands.reverse()
    return operands


def to_string(node: Node) -> str:
    """Canonical filter text for ``node``; :func:`parse_filter` reads it back as ``node``."""
    if isinstance(node, Compare):
        value = json.dumps(node.value, ensure_ascii=False)
        return f"{node.path} {node.op} {value}"
    if isinstance(node, Present):
        return f"{node.path} pr"
    if isinstance(node, Not):
        return f"not ({to_string(node.expr)})"
    if isinstance(node, ValuePath):
        return f"{node.path}[{to_string(node.filter)}]"
    operands = _chain(node)
    if isinstance(node, And):
        first, *rest = operands
        parts = [f"({to_string(first)})" if isinstance(first, Or) else to_string(first)]
        parts += [f"({to_string(o)})" if isinstance(o, And | Or) else to_string(o) for o in rest]
        return " and ".join(parts)
    first, *rest = operands
    parts = [to_string(first)]
    parts += [f"({to_string(o)})" if isinstance(o, Or) else to_string(o) for o in rest]
    return " or ".join(parts)


# --- evaluation ---------------------------------------------------------------------

_MISSING: Any = object()
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T")


def _never(path: AttrPath) -> bool:
    return False


def _lookup(obj: Mapping[str, Any], name: str) -> Any:
    """``obj[name]`` with a case-insensitive key, or :data:`_MISSING`."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    for key, value in obj.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return _MISSING


def _resolve(path: AttrPath, item: Mapping[str, Any]) -> list[Any]:
    """The values ``path`` reaches in ``item``, multi-valued attributes flattened."""
    base = item
    if path.urn is not None:
        extension = _lookup(item, path.urn)
        if isinstance(extension, Mapping):
            base = extension
    value = _lookup(base, path.attr)
    if value is _MISSING or value is None:
        return []
    values = value if isinstance(value, list) else [value]
    if path.sub is None:
        return values
    found: list[Any] = []
    for element in values:
        if isinstance(element, Mapping):
            sub = _lookup(element, path.sub)
            if sub is _MISSING or sub is None:
                continue
            if isinstance(sub, list):
                found.extend(sub)
            else:
                found.append(sub)
    return found


def _is_present(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _primary_value(value: Any) -> Any:
    """A complex value compared without a sub-attribute stands for its ``value``."""
    if isinstance(value, Mapping):
        inner = _lookup(value, "value")
        return None if inner is _MISSING else inner
    return value


def _as_datetime(text: str) -> datetime | None:
    if _DATETIME.match(text) is None:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _order(op: str, left: Any, right: Any) -> bool:
    if op == "eq":
        return bool(left == right)
    if op == "gt":
        return bool(left > right)
    if op == "ge":
        return bool(left >= right)
    if op == "lt":
        return bool(left < right)
    if op == "le":
        return bool(left <= right)
    return False


def _compare_one(op: str, actual: Any, expected: str | int | float | bool, exact: bool) -> bool:
    """``actual op expected`` for one value; mismatched types never match."""
    if isinstance(expected, bool):
        return isinstance(actual, bool) and op == "eq" and actual is expected
    if isinstance(expected, str):
        if not isinstance(actual, str):
            return False
        if op in ("eq", "gt", "ge", "lt", "le"):
            left, right = _as_datetime(actual), _as_datetime(expected)
            if left is not None and right is not None:
                try:
                    return _order(op, left, right)
                except TypeError:  # one has a time zone, the other not
                    pass
        have: str = actual if exact else actual.casefold()
        want: str = expected if exact else expected.casefold()
        if op == "co":
            return want in have
        if op == "sw":
            return have.startswith(want)
        if op == "ew":
            return have.endswith(want)
        return _order(op, have, want)
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    return _order(op, actual, expected)


def _evaluate(node: Node, item: Mapping[str, Any], case_exact: Callable[[AttrPath], bool]) -> bool:
    if isinstance(node, Compare):
        found = _resolve(node.path, item)
        expected = node.value
        if expected is None:  # "eq null" is "not pr", "ne null" is "pr"
            present = any(_is_present(v) for v in found)
            return not present if node.op == "eq" else present
        values = [_primary_value(v) for v in found]
        exact = case_exact(node.path) if isinstance(expected, str) else True
        if node.op == "ne":
            return not values or any(not _compare_one("eq", v, expected, exact) for v in values)
        return any(_compare_one(node.op, v, expected, exact) for v in values)
    if isinstance(node, Present):
        return any(_is_present(v) for v in _resolve(node.path, item))
    if isinstance(node, And):
        return all(_evaluate(o, item, case_exact) for o in _chain(node))
    if isinstance(node, Or):
        return any(_evaluate(o, item, case_exact) for o in _chain(node))
    if isinstance(node, Not):
        return not _evaluate(node.expr, item, case_exact)
    if isinstance(node, ValuePath):
        return any(
            isinstance(element, Mapping) and _evaluate(node.filter, element, case_exact)
            for element in _resolve(node.path, item)
        )
    raise TypeError(f"not a filter node: {node!r}")


def matches(
    node: Node,
    item: Mapping[str, Any],
    *,
    case_exact: Callable[[AttrPath], bool] = _never,
) -> bool:
    """Whether ``item`` (one JSON object) satisfies the filter ``node``.

    Attribute names are looked up case-insensitively; a URN-qualified path looks
    inside ``item[urn]`` when that is an object. Strings compare case-insensitively
    unless ``case_exact(path)`` says otherwise; strings that both look like RFC 3339
    dateTimes compare chronologically. A multi-valued attribute matches when any of
    its values does; a complex value compared without a sub-attribute stands for its
    ``value`` sub-attribute. Values of a different type than the filter's literal
    never match (so ``ne`` is true for them). ``pr`` requires a value that is not null,
    ``""``, ``[]`` or ``{}``; ``eq null`` is the opposite of ``pr`` and ``ne null`` the
    same as ``pr``.
    """
    return _evaluate(node, item, case_exact)
