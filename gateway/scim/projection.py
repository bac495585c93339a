"""``attributes`` and ``excludedAttributes`` (RFC 7644 §3.4.2.5, §3.9).

A :class:`Projection` answers two questions: which attributes to render
(:meth:`apply`) and, before anything is loaded, whether an expensive attribute
such as ``members`` or ``groups`` is wanted at all (:meth:`wants`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidValue
from .schemas import Attribute, ResourceType

__all__ = ["Projection", "parse_attribute_list"]

_ALWAYS = frozenset({"id", "schemas"})


def parse_attribute_list(text: str | None) -> list[str]:
    if not text:
        return []
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True)
class _Ref:
    key: str  # top-level key in the resource (core name or extension URN)
    attr: str | None  # attribute under an extension, or sub-attribute of a core attribute
    sub: str | None

    @property
    def rest(self) -> tuple[str, ...]:
        """The path below :attr:`key`: ``()`` for the whole value."""
        return tuple(part for part in (self.attr, self.sub) if part is not None)


@dataclass
class Projection:
    rt: ResourceType
    include: list[_Ref] = field(default_factory=list)
    exclude: list[_Ref] = field(default_factory=list)

    @classmethod
    def parse(
        cls, rt: ResourceType, attributes: str | list[str] | None, excluded: str | list[str] | None
    ) -> Projection:
        inc = attributes if isinstance(attributes, list) else parse_attribute_list(attributes)
        exc = excluded if isinstance(excluded, list) else parse_attribute_list(excluded)
        return cls(rt, [_ref(rt, p) for p in inc], [_ref(rt, p) for p in exc])

    def wants(self, key: str) -> bool:
        """Whether top-level attribute ``key`` can appear in the output."""
        attr = self.rt.schema.attribute(key)
        returned = attr.returned if attr is not None else "default"
        if self.include:
            return any(r.key == key for r in self.include) or returned == "always"
        if returned == "request":
            return False
        return not any(r.key == key and r.attr is None for r in self.exclude)

    def names(self, key: str, sub: str) -> bool:
        """Whether ``attributes`` names ``key.sub`` itself (for sub-attributes that are
        returned only on request, RFC 7643 §7 ``returned: "request"``)."""
        return any(r.key == key and r.rest == (sub,) for r in self.include)

    def apply(self, resource: dict[str, Any]) -> dict[str, Any]:
        if not self.include and not self.exclude:
            return resource
        if self.include:
            out: dict[str, Any] = {}
            for key, value in resource.items():
                attr = self.rt.schema.attribute(key)
                if key in _ALWAYS or (attr is not None and attr.returned == "always"):
                    out[key] = value
                    continue
                rests = [r.rest for r in self.include if r.key == key]
                if rests:
                    picked = _pick(value, rests)
                    if picked not in ({}, []):
                        out[key] = picked
            return out
        out = dict(resource)
        for key in list(out):
            attr = self.rt.schema.attribute(key)
            if key in _ALWAYS or (attr is not None and attr.returned == "always"):
                continue
            rests = [r.rest for r in self.exclude if r.key == key]
            if any(not rest for rest in rests):
                del out[key]
            elif rests:
                out[key] = _drop(out[key], rests)
        return out


def _pick(value: Any, rests: list[tuple[str, ...]]) -> Any:
    """The parts of ``value`` the paths ``rests`` name (an empty path names all of it)."""
    if any(not rest for rest in rests) or not isinstance(value, dict | list):
        return value
    if isinstance(value, list):
        return [p for p in (_pick(item, rests) for item in value) if p != {}]
    out = {}
    for key, item in value.items():
        wanted = [rest[1:] for rest in rests if rest[0] == key]
        if wanted:
            out[key] = _pick(item, wanted)
    return out


def _drop(value: Any, rests: list[tuple[str, ...]]) -> Any:
    """``value`` without the parts the (non-empty) paths ``rests`` name."""
    if isinstance(value, list):
        return [_drop(item, rests) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        unwanted = [rest[1:] for rest in rests if rest[0] == key]
        if any(not rest for rest in unwanted):
            continue
        out[key] = _drop(item, unwanted) if unwanted else item
    return out


def _canonical(attr: Attribute | None, name: str) -> str:
    return attr.name if attr is not None else name


def _ref(rt: ResourceType, text: str) -> _Ref:
    """Resolve one entry of an attribute list to the key it names in a resource."""
    lower = text.lower()
    for schema in [rt.schema] + [s for s, _ in rt.extensions]:
        urn = schema.id.lower()
        if lower == urn:
            return _Ref(schema.id, None, None)
        if lower.startswith(urn + ":"):
            rest = text[len(urn) + 1 :]
            name, _, sub = rest.partition(".")
            attr = schema.attribute(name)
            if schema is rt.schema:
                return _Ref(_canonical(attr, name), _sub_name(attr, sub), None)
            return _Ref(schema.id, _canonical(attr, name), _sub_name(attr, sub))
    if lower.startswith("urn:"):
        urn, _, rest = text.rpartition(":")
        if not urn:
            raise InvalidValue(f"'{text}' is not a valid attribute name.")
        return _Ref(urn, rest.partition(".")[0] or None, None)
    name, _, sub = text.partition(".")
    if name.lower() in ("id", "externalid", "meta"):
        canonical = {"id": "id", "externalid": "externalId", "meta": "meta"}[name.lower()]
        return _Ref(canonical, sub or None, None)
    attr = rt.schema.attribute(name)
    return _Ref(_canonical(attr, name), _sub_name(attr, sub), None)


def _sub_name(attr: Attribute | None, sub: str) -> str | None:
    if not sub:
        return None
    found = attr.sub(sub) if attr is not None else None
    return found.name if found is not None else sub
