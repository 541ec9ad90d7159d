"""The run's access token: every route that reads or steers a deploy needs it.

One token per run, made with a CSPRNG and kept in the run directory (mode 0600), so a resumed run
serves the same one. It is given once, on the terminal, as the dashboard URL (`/?token=...`, as
Jupyter does): that request sets a cookie and is redirected to `/`, so the token does not stay in
the address bar. A script sends it as `Authorization: Bearer TOKEN`. Only the ISO (its own secret
path, for the inventory's BMCs) and the check-in (validated, and a hint only) are open.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

TOKEN_FILE = "token"
COOKIE = "pvcctl_token"
OPEN_ROUTES = ("/iso/", "/api/v1/checkin")  # prefixes that need no token


@dataclass(frozen=True)
class RunToken:
    value: str

    def __repr__(self) -> str:  # never show the token itself
        return "RunToken(...)"

    @classmethod
    def for_run(cls, run_dir: Path) -> RunToken:
        """The run's token: read from its directory, or made there (mode 0600) by its first controller."""
        path = run_dir / TOKEN_FILE
        if path.is_file():
            return cls(path.read_text().strip())
        value = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        return cls(value)

    def matches(self, given: str | None) -> bool:
        return bool(given) and secrets.compare_digest(given.encode(), self.value.encode())  # type: ignore[union-attr]

    def admits(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
        return self.matches(bearer) or self.matches(request.cookies.get(COOKIE))

    def dashboard_url(self, base: str) -> str:
        return f"{base.rstrip('/')}/?token={self.value}"


TOKEN = web.AppKey("token", RunToken)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(OPEN_ROUTES):
        return await handler(request)
    token = request.app[TOKEN]
    given = request.query.get("token")
    if request.path == "/" and given is not None and token.matches(given):
        redirect = web.HTTPSeeOther("/")
        redirect.set_cookie(COOKIE, token.value, httponly=True, samesite="Strict", path="/")
        raise redirect
    if not token.admits(request):
        return web.json_response({"error": "this route needs the run's token: open the dashboard URL the deploy "
                                           "printed, or send Authorization: Bearer TOKEN"}, status=401)
    return await handler(request)
