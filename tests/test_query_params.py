"""The SCIM query parameters are read from the raw query string as Starlette's
``request.query_params`` reads it: names case-insensitive, the first non-empty value
of each, ``+`` and percent escapes decoded, blank values absent."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from gateway.http import query_params_named

NAMES = ("filter", "startIndex", "count", "attributes")


def _request(query: bytes) -> Request:
    return Request({"type": "http", "query_string": query, "headers": []})


def _as_starlette_reads_it(query: bytes) -> dict[str, str | None]:
    wanted = {name.lower(): name for name in NAMES}
    found: dict[str, str | None] = dict.fromkeys(NAMES)
    for key, value in _request(query).query_params.multi_items():
        name = wanted.get(key.lower())
        if name is not None and value != "" and found[name] is None:
            found[name] = value
    return found


@pytest.mark.parametrize(
    "query",
    [
        b"",
        b"filter=userName%20eq%20%22bjensen%22&startIndex=1&count=100",
        b"filter=userName+eq+%22a%2Bb%40example.com%22",
        b"FILTER=x&filter=y",
        b"count=&count=5",
        b"count&count=7",
        b"&&startIndex=3&",
        b"st%61rtIndex=4",
        b"attributes=a=b=c",
        b"filter=%ZZ%2",
        b"filter=%C3%A9t%C3%A9&count=%FF",
        b"filter=\xe9",
        b"filter=a;count=2",
        b"=x&filter=ok",
    ],
)
def test_query_parameters_read_as_starlette_reads_them(query: bytes) -> None:
    assert query_params_named(_request(query), NAMES) == _as_starlette_reads_it(query)


def test_decoded_values() -> None:
    query = b"Filter=userName+eq+%22a%2Bb%40example.com%22&COUNT=&count=5&startindex=2"
    assert query_params_named(_request(query), NAMES) == {
        "filter": 'userName eq "a+b@example.com"',
        "startIndex": "2",
        "count": "5",
        "attributes": None,
    }
