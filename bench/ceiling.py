"""The framework ceiling: a trivial Starlette JSON endpoint under uvicorn.

``python -m bench.ceiling --port P [--workers W]`` serves ``GET /`` -> ``{"ok": true}``
with the same ``uvicorn.run`` settings as ``scim-gateway serve`` (same uvicorn, the
``auto`` loop and HTTP implementations, access log off, no server header), so the
gateway's throughput can be read as a fraction of what the stack itself allows.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["app", "main"]


async def root(request: Request) -> Response:
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/", root)])


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.ceiling")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    uvicorn.run(
        "bench.ceiling:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=False,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
