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
                refs = [r for r in self.include if r.key == key]
                if not refs:
                    continue
                if any(r.attr is None for r in refs) or not isinstance(value, dict | list):
                    out[key] = value
                else:
                    out[key] = _pick(value, {r.attr for r in refs if r.attr}, refs)
            return out
        out = dict(resource)
        for ref in self.exclude:
            attr = self.rt.schema.attribute(ref.key)
            if ref.key in _ALWAYS or (attr is not None and attr.returned == "always"):
                continue
            if ref.attr is None:
                out.pop(ref.key, None)
            elif isinstance(out.get(ref.key), dict):
                out[ref.key] = {k: v for k, v in out[ref.key].items() if k != ref.attr}
            elif isinstance(out.get(ref.key), list):
                out[ref.key] = [
                    {k: v for k, v in item.items() if k != ref.attr}
                    if isinstance(item, dict)
                    else item
                    for item in out[ref.key]
                ]
        return out


def _pick(value: Any, names: set[str], refs: list[_Ref]) -> Any:
    if isinstance(value, list):
        return [_pick(item, names, refs) for item in value]
    if isinstance(value, dict):
        return {k: v for k, v in value.items() if k in names}
    return value


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
            return _Ref(schema.id, _canonical(attr, name), sub or None)
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
