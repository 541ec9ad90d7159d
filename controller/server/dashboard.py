"""The dashboard's own routes: its page and assets (no build step, nothing fetched from elsewhere) and
the tail of a node's log.

    GET /                                   the page (static/index.html)
    GET /static/{name}                      its script and style sheet (a fixed list: no path from the request)
    GET /api/v1/nodes/{node}/log?attempt=N&tail=200   the last lines of that attempt's log (text/plain)

The log route reads run_dir/logs/<node>.<attempt>.log only for a node of the run and an integer
attempt, so no request names any other file.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

from aiohttp import web

from controller.server.api import BOARD, RUN

STATIC = Path(__file__).parent / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}
TAIL_DEFAULT, TAIL_MAX = 200, 5000


async def handle_dashboard(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def handle_asset(request: web.Request) -> web.FileResponse:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name], "Cache-Control": "no-cache"})


def _int_query(request: web.Request, key: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(f"{key} must be a whole number, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise _bad(f"{key} must be between {low} and {high}")
    return value


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"reason": reason}), content_type="application/json")


async def handle_log(request: web.Request) -> web.Response:
    """The last `tail` lines of the node's log for `attempt` (default: its latest); empty before it has one."""
    node = request.match_info["node"]
    status = request.app[BOARD].nodes.get(node)
    if status is None:
        return web.json_response({"reason": f"this run has no node {node[:60]!r}"}, status=404)
    attempt = _int_query(request, "attempt", status.attempt, 0, 10_000)
    tail = _int_query(request, "tail", TAIL_DEFAULT, 1, TAIL_MAX)
    path = request.app[RUN].run_dir / "logs" / f"{node}.{attempt}.log"
    lines: deque[str] = deque(maxlen=tail)
    if attempt and path.is_file():
        with path.open(encoding="utf-8", errors="replace") as log:
            lines.extend(log)
    return web.Response(text="".join(lines), content_type="text/plain",
                        headers={"X-Attempt": str(attempt), "Cache-Control": "no-cache"})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", handle_dashboard)
    app.router.add_get("/static/{name}", handle_asset)
    app.router.add_get("/api/v1/nodes/{node}/log", handle_log)
