"""The status API: a JSON snapshot of every node, and the same as a stream of server-sent events."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from controller.node.events import Board, EventBus
from controller.server.steering import STEERING


@dataclass(frozen=True)
class RunInfo:
    cluster: str
    run_dir: Path


BOARD = web.AppKey("board", Board)
BUS = web.AppKey("bus", EventBus)
RUN = web.AppKey("run", RunInfo)
KEEPALIVE_SECONDS = 15.0


async def handle_status(request: web.Request) -> web.Response:
    run = request.app[RUN]
    return web.json_response({"cluster": run.cluster, "run_dir": str(run.run_dir),
                              "steerable": STEERING in request.app,  # False: a finished run, read-only
                              "nodes": request.app[BOARD].snapshot()})


async def handle_events(request: web.Request) -> web.StreamResponse:
    """`text/event-stream`: first a `snapshot` event, then one `node` event per engine event."""
    bus = request.app[BUS]
    queue = bus.queue()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    try:
        snapshot = json.dumps({"nodes": request.app[BOARD].snapshot()})
        await response.write(f"event: snapshot\ndata: {snapshot}\n\n".encode())
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            await response.write(f"event: node\ndata: {json.dumps(event.as_dict(), default=str)}\n\n".encode())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        bus.drop(queue)
    return response


OVER = {"reason": "this run is not running any more: start nodes over with pvcctl retry NODE"}


async def handle_retry(request: web.Request) -> web.Response:
    steering = request.app.get(STEERING)
    if steering is None:
        return web.json_response(OVER, status=409)
    status, body = steering.retry(request.match_info["node"])
    return web.json_response(body, status=status)


async def handle_stop(request: web.Request) -> web.Response:
    steering = request.app.get(STEERING)
    if steering is None:
        return web.json_response(OVER, status=409)
    status, body = steering.stop()
    return web.json_response(body, status=status)

