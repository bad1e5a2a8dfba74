"""Cost of the identifier-free access log (`vigil.server.access_log.AccessLog`, issue 16) per request.

The real app (`create_app`) is driven in-process through ASGI with no network, so the middleware's share
is not hidden by socket time: the same requests with the AccessLog middleware and with it removed,
alternating rounds in one run, the log going through a real handler (formatted, written to /dev/null) as
in `vigil serve`, and with the middleware but the `vigil` loggers at WARNING (`--log-level warning`); and
the baseline it replaces: no middleware, uvicorn's own access line (client address, raw path) per request.
Prints JSON: requests/s per variant and route, the ratio with/without and the added microseconds.

    .venv/bin/python benchmarks/access_log.py --requests 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from vigil.server.access_log import AccessLog
from vigil.server.app import create_app
from vigil.server.settings import Settings


def _app(data_dir: Path, with_access_log: bool) -> FastAPI:
    app = create_app(Settings(data_dir=data_dir))
    if not with_access_log:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not AccessLog]
    return app


def _uvicorn_access_line(path: str) -> None:
    """What uvicorn's own access log (on before issue 16) emitted per request: the client address and the
    raw path, through its AccessFormatter."""
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "203.0.113.9:40000", "GET", path, "1.1", 200
    )


async def _drive(app: FastAPI, path: str, count: int, *, uvicorn_log: bool = False) -> float:
    """Requests per second for `count` sequential GETs of `path` (plus uvicorn's access line if asked)."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"vigil")],
        "client": ("203.0.113.9", 40000),
        "server": ("127.0.0.1", 8000),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_message: dict[str, Any]) -> None:
        return None

    started = time.perf_counter()
    for _ in range(count):
        await app(dict(scope), receive, send)
        if uvicorn_log:
            _uvicorn_access_line(path)
    return count / (time.perf_counter() - started)


async def main(requests: int, rounds: int) -> dict[str, object]:
    handler = logging.StreamHandler(open(os.devnull, "w"))
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    vigil_log = logging.getLogger("vigil")
    vigil_log.addHandler(handler)
    vigil_log.setLevel(logging.INFO)
    vigil_log.propagate = False
    from uvicorn.logging import AccessFormatter

    uvicorn_handler = logging.StreamHandler(open(os.devnull, "w"))
    uvicorn_handler.setFormatter(
        AccessFormatter(
            '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False
        )
    )
    uvicorn_access = logging.getLogger("uvicorn.access")
    uvicorn_access.addHandler(uvicorn_handler)
    uvicorn_access.setLevel(logging.INFO)
    uvicorn_access.propagate = False
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        apps = {"with": _app(Path(tmp) / "a", True), "without": _app(Path(tmp) / "b", False)}
        for app in apps.values():  # warm up: builds the middleware stack
            await _drive(app, "/v1/health", 200)
        for _ in range(rounds):
            for variant in ("without", "with", "with_level_warning", "uvicorn_access_log"):
                vigil_log.setLevel(logging.WARNING if variant == "with_level_warning" else logging.INFO)
                app = apps["with" if variant.startswith("with") else "without"]
                for path in ("/v1/health", "/v1/no/such/route"):
                    rate = await _drive(app, path, requests, uvicorn_log=variant == "uvicorn_access_log")
                    results.setdefault(path, {}).setdefault(variant, []).append(rate)
    summary: dict[str, object] = {"requests": requests, "rounds": rounds}
    for path, by_variant in results.items():
        without, with_log = statistics.median(by_variant["without"]), statistics.median(by_variant["with"])
        quiet = statistics.median(by_variant["with_level_warning"])
        before = statistics.median(by_variant["uvicorn_access_log"])
        summary[path] = {
            "without_req_s": round(without),
            "with_req_s": round(with_log),
            "with_but_not_logged_req_s": round(quiet),  # `vigil serve --log-level warning`
            "uvicorn_access_log_req_s": round(before),  # the access log it replaces
            "ratio_with_over_uvicorn_access_log": round(with_log / before, 3),
            "ratio_with_over_without": round(with_log / without, 3),
            "added_us_per_request": round((1 / with_log - 1 / without) * 1e6, 1),
            "added_us_not_logged": round((1 / quiet - 1 / without) * 1e6, 1),
        }
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.rounds)), indent=2))
