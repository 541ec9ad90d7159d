"""The run's token on a real loopback socket: every route that reads or steers a run answers 401
without it and serves with it (Bearer header, or the cookie the dashboard URL sets); the ISO and the
check-in stay open, the ISO to the inventory's BMC addresses only."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from controller.node.events import Board, EventBus
from controller.server.api import RunInfo
from controller.server.app import Server, build_app
from controller.server.auth import COOKIE, TOKEN_FILE, RunToken
from controller.server.checkin import CheckinDesk
from controller.server.iso import IsoShare

GUARDED = ("/", "/static/app.js", "/static/app.css", "/api/v1/status", "/api/v1/events", "/api/v1/nodes/hv1/log")


@dataclass(frozen=True)
class Served:
    url: str
    token: RunToken
    share: IsoShare


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    iso = tmp_path / "pvc-live.iso"
    iso.write_bytes(b"x" * 4096)
    share = IsoShare(iso, frozenset())
    token = RunToken.for_run(tmp_path)
    server = Server(build_app(Board(["hv1"]), EventBus(), CheckinDesk("SHA256:x", EventBus()),
                              RunInfo("c1", tmp_path), share, token), "127.0.0.1", 0)
    port = await server.start()
    try:
        yield Served(f"http://127.0.0.1:{port}", token, share)
    finally:
        await server.stop()


async def _status(http: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None,
                  cookies: dict[str, str] | None = None) -> int:
    async with http.get(url, allow_redirects=False, headers=headers, cookies=cookies) as answer:
        return answer.status


async def test_every_guarded_route_needs_the_token(served: Served) -> None:
    url, token = served.url, served.token
    async with aiohttp.ClientSession() as http:
        for route in GUARDED:
            assert await _status(http, url + route) == 401, route
            wrong = {"Authorization": "Bearer " + token.value[:-1] + ("A" if token.value[-1] != "A" else "B")}
            assert await _status(http, url + route, headers=wrong) == 401, route
            assert await _status(http, url + route, cookies={COOKIE: "guess"}) == 401, route
            assert await _status(http, url + route + "?token=guess") == 401, route
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token.value}"}) as http:
        for route in ("/", "/static/app.js", "/static/app.css", "/api/v1/status", "/api/v1/nodes/hv1/log"):
            assert await _status(http, url + route) == 200, route
        async with http.get(url + "/api/v1/events") as stream:
            assert stream.status == 200


async def test_the_dashboard_url_sets_a_cookie_and_drops_the_token_from_the_address(served: Served) -> None:
    url, token = served.url, served.token
    jar = aiohttp.CookieJar(unsafe=True)  # an IP address host: aiohttp keeps its cookies only when told
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(token.dashboard_url(url), allow_redirects=False) as first:
            assert first.status == 303 and first.headers["Location"] == "/"
            cookie = first.cookies[COOKIE]
            assert cookie.value == token.value and cookie["httponly"] and cookie["samesite"] == "Strict"
        async with http.get(url + "/api/v1/status") as status:  # the page's own requests carry the cookie
            assert status.status == 200 and (await status.json())["cluster"] == "c1"


async def test_iso_and_checkin_need_no_token(served: Served) -> None:
    url, share = served.url, served.share
    async with aiohttp.ClientSession() as http:
        async with http.head(url + share.url_path) as iso:
            assert iso.status == 200
        async with http.post(url + "/api/v1/checkin", json={"serial": "S"}) as checkin:
            assert checkin.status != 401


def test_the_token_is_kept_private_in_the_run_directory_and_reused(tmp_path: Path) -> None:
    first = RunToken.for_run(tmp_path)
    mode = stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode)
    assert mode == 0o600
    assert RunToken.for_run(tmp_path) == first  # a resumed run serves the same token
    assert len(first.value) >= 40 and first.value not in repr(first)
    assert RunToken.for_run(tmp_path / ".." / tmp_path.name).value == first.value
