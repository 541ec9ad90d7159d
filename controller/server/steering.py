"""What the dashboard and `pvcctl retry` may ask of a running deploy, through the controller's API.

The server knows only this protocol; the run (controller/run.py) gives it the deployment's side.
`pvcctl serve` (a finished run, read-only) gives none: those routes then answer 409.

    POST /api/v1/nodes/{node}/retry   start a failed or stopped node over, while the others go on
    POST /api/v1/stop                 stop the run as Ctrl-C does (no new destructive step starts)

Each answers (HTTP status, JSON body): 202 when done as asked; 404 for a node the run does not
have; 409 when it cannot be done now (the node is running, or done: a reinstall is for `pvcctl retry
--reinstall` after the run), with a `reason` a person can act on.
"""

from __future__ import annotations

from typing import Any, Protocol

from aiohttp import web


class Steering(Protocol):
    def retry(self, node: str) -> tuple[int, dict[str, Any]]: ...

    def stop(self) -> tuple[int, dict[str, Any]]: ...


STEERING = web.AppKey("steering", Steering)
