"""The dashboard's routes on a real loopback socket: its assets (a fixed list), a node's log tail (a
node of the run and an integer attempt only: no request reaches another file), and `pvcctl serve`'s
board, folded back from a journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from controller.journal import Journal
from controller.node.events import Board, Event, EventBus, EventKind
from controller.node.states import NodeState
from controller.serve import board_from_journal, parse_listen
from controller.server.api import RunInfo
from controller.server.app import Server, build_app
from controller.server.auth import RunToken
from controller.server.checkin import CheckinDesk
from core.errors import UserError


def events(node: str, attempt: int) -> list[Event]:
    return [Event(node, EventKind.STATE, state=NodeState.PREFLIGHT, attempt=attempt, time=100.0 * attempt),
            Event(node, EventKind.STEP, "preflight done", phase="preflight", attempt=attempt,
                  data={"seconds": 2.5}, time=100.0 * attempt + 2.5),
            Event(node, EventKind.STATE, "BMC said no", state=NodeState.FAILED, phase="media", attempt=attempt,
                  time=100.0 * attempt + 3)]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, aiohttp.ClientSession]]:
    board = Board(["hv1", "hv2"])
    for event in events("hv1", 1) + events("hv1", 2):
        board.apply(event)
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "hv1.1.log").write_text("".join(f"first {n}\n" for n in range(300)))
    (logs / "hv1.2.log").write_text("".join(f"second {n}\n" for n in range(5)))
    (tmp_path / "secret.log").write_text("not for the web\n")
    token = RunToken.for_run(tmp_path)
    bus = EventBus()
    server = Server(build_app(board, bus, CheckinDesk("", bus), RunInfo("c1", tmp_path), None, token), "127.0.0.1", 0)
    port = await server.start()
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token.value}"}) as http:
        yield f"http://127.0.0.1:{port}", http
    await server.stop()


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as answer:
        return answer.status, await answer.text()


async def test_log_tail_of_the_latest_attempt_or_the_one_asked(served: tuple[str, aiohttp.ClientSession]) -> None:
    url, http = served
    assert await get(http, f"{url}/api/v1/nodes/hv1/log") == (200, "".join(f"second {n}\n" for n in range(5)))
    status, text = await get(http, f"{url}/api/v1/nodes/hv1/log?attempt=1")
    assert status == 200 and text.splitlines() == [f"first {n}" for n in range(100, 300)]  # the last 200
    assert await get(http, f"{url}/api/v1/nodes/hv1/log?attempt=1&tail=2") == (200, "first 298\nfirst 299\n")
    assert await get(http, f"{url}/api/v1/nodes/hv2/log") == (200, "")  # not started: nothing logged yet


@pytest.mark.parametrize("route, status", [
    ("/api/v1/nodes/hv9/log", 404),  # not a node of the run
    ("/api/v1/nodes/..%2Fsecret/log", 404),
    ("/api/v1/nodes/hv1/log?attempt=..%2F..%2Fsecret", 400),
    ("/api/v1/nodes/hv1/log?attempt=1.log", 400),
    ("/api/v1/nodes/hv1/log?attempt=-1", 400),
    ("/api/v1/nodes/hv1/log?tail=100000", 400),
    ("/static/index.html", 404),  # only the page's script and style sheet
    ("/static/..%2Fauth.py", 404),
    ("/static/%2E%2E/auth.py", 404),
])
async def test_no_request_reaches_another_file(served: tuple[str, aiohttp.ClientSession], route: str,
                                               status: int) -> None:
    url, http = served
    got, text = await get(http, url + route)
    assert got == status, text
    assert "not for the web" not in text and "RunToken" not in text


async def test_assets_and_a_status_that_says_it_cannot_steer(served: tuple[str, aiohttp.ClientSession]) -> None:
    url, http = served
    async with http.get(f"{url}/static/app.js") as script:
        assert script.status == 200 and script.content_type == "text/javascript"
        assert "EventSource" in await script.text()
    async with http.get(f"{url}/api/v1/status") as answer:
        assert (await answer.json())["steerable"] is False  # no Steering given: a read-only run
    async with http.post(f"{url}/api/v1/nodes/hv1/retry") as retry:
        assert retry.status == 409


def test_serve_folds_the_journal_back_into_the_board(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.set_meta("nodes", "hv1,hv2")
    for event in events("hv1", 1) + events("hv1", 2):
        journal.record(event)
    board = board_from_journal(journal)
    journal.close()
    hv1 = board.nodes["hv1"]
    assert list(board.nodes) == ["hv1", "hv2"] and board.nodes["hv2"].state is NodeState.PENDING
    assert (hv1.state, hv1.attempt, hv1.error) == (NodeState.FAILED, 2, "BMC said no")
    assert [(t["attempt"], t["phase"], t["seconds"]) for t in hv1.timeline] == [(1, "preflight", 2.5),
                                                                                 (2, "preflight", 2.5)]


def test_listen_is_host_and_port() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:0") == ("::1", 0)
    for bad in ("8080", "host:", "host:http", ":80", "h:70000"):
        with pytest.raises(UserError, match="--listen"):
            parse_listen(bad)
