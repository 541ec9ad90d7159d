"""The controller's one HTTP server, in the deploy's own event loop.

    GET  /                         the dashboard (static page fed by the event stream)     token
    GET  /static/{name}            the dashboard's script and style sheet                  token
    GET  /iso/<secret>/<name>.iso  the ISO (the inventory's BMC addresses only)            open
    POST /api/v1/checkin           live nodes check in (a hint, verified over SSH)         open
    GET  /api/v1/status            JSON snapshot of every node                             token
    GET  /api/v1/events            server-sent events                                      token
    POST /api/v1/nodes/{node}/retry  start a failed node over while the run goes on        token
    POST /api/v1/stop              stop the run (as Ctrl-C)                                token
    GET  /api/v1/nodes/{node}/log  the tail of a node's attempt log (?attempt=N&tail=200)  token

"token": the run's access token (controller/server/auth.py) as a cookie or a Bearer header; 401
without it.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from aiohttp import web

from controller.node.events import Board, EventBus
from controller.server import api, checkin, dashboard, iso
from controller.server.auth import TOKEN, RunToken, require_token
from controller.server.steering import STEERING, Steering
from core.errors import UserError


class ListenError(UserError):
    """The controller cannot listen where the inventory says."""


def build_app(board: Board, bus: EventBus, desk: checkin.CheckinDesk, run: api.RunInfo,
              share: iso.IsoShare | None, token: RunToken, steering: Steering | None = None) -> web.Application:
    app = web.Application(middlewares=[require_token])
    app[TOKEN] = token
    app[api.BOARD] = board
    app[api.BUS] = bus
    app[api.RUN] = run
    app[checkin.DESK] = desk
    if share is not None:
        app[iso.SHARE] = share
    if steering is not None:
        app[STEERING] = steering
    dashboard.add_routes(app)
    app.router.add_get("/iso/{token}/{name}", iso.handle_iso)  # GET also answers HEAD
    app.router.add_post("/api/v1/checkin", checkin.handle_checkin)
    app.router.add_get("/api/v1/status", api.handle_status)
    app.router.add_get("/api/v1/events", api.handle_events)
    app.router.add_post("/api/v1/nodes/{node}/retry", api.handle_retry)
    app.router.add_post("/api/v1/stop", api.handle_stop)
    return app


@dataclass
class Server:
    app: web.Application
    host: str
    port: int
    _runner: web.AppRunner | None = None

    async def start(self) -> int:
        """Listen; returns the port (useful with port 0). A taken or foreign address is a UserError."""
        self._runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError as err:
            await self._runner.cleanup()
            why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err.strerror})"
            raise ListenError(f"controller.listen {self.host}:{self.port} {why}; "
                              "change controller.listen in the inventory") from None
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
