"""The controller's HTTP server on a real loopback socket: ISO serving, check-in, status, SSE."""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from controller.node.events import Board, Event, EventBus, EventKind
from controller.node.states import NodeState
from controller.server.api import RunInfo
from controller.server.app import ListenError, Server, build_app
from controller.server.auth import RunToken
from controller.server.checkin import CheckinDesk
from controller.server.iso import IsoShare

FINGERPRINT = "SHA256:pinnedpinnedpinnedpinnedpinnedpinnedpinned0"


class Controller:
    def __init__(self, tmp: Path, share: IsoShare | None):
        self.bus = EventBus()
        self.board = Board(["hv1", "hv2"])
        self.bus.subscribe(self.board.apply)
        self.seen: list[Event] = []
        self.bus.subscribe(self.seen.append)
        self.desk = CheckinDesk(FINGERPRINT, self.bus)
        self.share = share
        self.token = RunToken.for_run(tmp)
        self.server = Server(build_app(self.board, self.bus, self.desk, RunInfo("c1", tmp), share, self.token),
                             "127.0.0.1", 0)
        self.url = ""

    async def __aenter__(self) -> Controller:
        port = await self.server.start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop()


@pytest.fixture
def iso_file(tmp_path: Path) -> Path:
    path = tmp_path / "pvc-live.iso"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB with a recognisable pattern
    return path


@pytest.fixture
async def controller(tmp_path: Path, iso_file: Path) -> AsyncIterator[Controller]:
    async with Controller(tmp_path, IsoShare(iso_file, frozenset())) as ctl:
        yield ctl


async def test_iso_is_served_with_head_range_and_etag(controller: Controller, iso_file: Path) -> None:
    assert controller.share is not None
    url = controller.url + controller.share.url_path
    assert url.endswith(".iso") and "?" not in url
    data = iso_file.read_bytes()
    async with aiohttp.ClientSession() as http:
        async with http.head(url) as head:
            assert head.status == 200
            assert int(head.headers["Content-Length"]) == len(data)
            etag = head.headers["ETag"]
        async with http.get(url, headers={"Range": "bytes=32769-32773"}) as part:
            assert part.status == 206
            assert await part.read() == data[32769:32774]
        async with http.get(url, headers={"Range": "bytes=10-19", "If-Range": etag}) as same:
            assert same.status == 206 and await same.read() == data[10:20]
        async with http.get(url, headers={"Range": "bytes=10-19", "If-Range": '"stale"'}) as changed:
            assert changed.status == 200 and await changed.read() == data  # the whole file: it changed
        async with http.get(url) as whole:
            assert await whole.read() == data


async def test_iso_path_is_unguessable(controller: Controller) -> None:
    assert controller.share is not None
    async with aiohttp.ClientSession() as http, http.get(f"{controller.url}/iso/guess/pvc-live.iso") as wrong:
        assert wrong.status == 404
    assert len(controller.share.token) >= 32
    assert IsoShare(controller.share.path, frozenset()).token != controller.share.token


async def test_iso_refused_to_an_address_that_is_not_a_bmc(tmp_path: Path, iso_file: Path) -> None:
    share = IsoShare(iso_file, frozenset({"127.0.0.9"}), allow_loopback=False)
    async with Controller(tmp_path, share) as ctl:
        url = ctl.url + share.url_path
        async with aiohttp.ClientSession() as http, http.head(url) as other:
            assert other.status == 403  # from 127.0.0.1: not in the inventory's BMC addresses
        bmc_side = aiohttp.TCPConnector(local_addr=("127.0.0.9", 0))
        async with aiohttp.ClientSession(connector=bmc_side) as http, http.head(url) as bmc:
            assert bmc.status == 200


async def post_checkin(url: str, *, source: str = "", **fields: object) -> tuple[int, dict]:
    """POST a check-in from `source`, by default from the first address it claims (as a live node does)."""
    body = {"serial": "S1", "macs": ["52:54:00:00:00:01"], "addresses": ["127.2.0.1/8"], "boot_mode": "uefi",
            "host_key_fingerprint": FINGERPRINT, "node": "hv1", "ssh_port": 2222, **fields}
    return await post_body(url, body, source=source or _first_address(body))


async def post_body(url: str, body: object = None, *, source: str = "127.2.0.1", data: bytes | None = None,
                    ) -> tuple[int, dict]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0))
    async with aiohttp.ClientSession(connector=connector) as http, http.post(
            url + "/api/v1/checkin", json=body if data is None else None, data=data) as answer:
        return answer.status, await answer.json()


def _first_address(body: dict) -> str:
    try:
        return str(ipaddress.ip_interface(body["addresses"][0]).ip)
    except (ValueError, IndexError, KeyError, TypeError):
        return "127.2.0.1"


def told(controller: Controller) -> list[tuple[str, int, str]]:
    """The check-in lines the desk told: (node, attempt, message); node "" is the run's own."""
    return [(e.node, e.attempt, e.message) for e in controller.seen if e.kind is EventKind.MESSAGE]


async def test_checkin_from_known_machine_wakes_its_job(controller: Controller) -> None:
    controller.desk.expect("hv1", serial="S1", macs=("52:54:00:00:00:01",), attempt=2)
    waiting = asyncio.create_task(controller.desk.wait("hv1"))
    status, body = await post_checkin(controller.url)
    assert (status, body) == (200, {"ack": True})
    checkin = await asyncio.wait_for(waiting, 2)
    assert (checkin.ssh_address, checkin.ssh_port) == ("127.2.0.1", 2222)
    # the node's story, for its log: the attempt waiting for it, what came, from where, what matched, the key
    ((node, attempt, message),) = told(controller)
    assert (node, attempt) == ("hv1", 2)
    assert "checked in: serial S1, MACs 52:54:00:00:00:01, addresses 127.2.0.1/8, uefi boot" in message
    assert "from 127.2.0.1" in message and "matched by serial S1, MAC 52:54:00:00:00:01;" in message
    assert f"host key {FINGERPRINT}, the pinned one" in message and "127.2.0.1:2222" in message


async def test_checkin_matched_by_mac_not_by_the_name_it_claims(controller: Controller) -> None:
    controller.desk.expect("hv2", serial="S2", macs=("52:54:00:00:00:02",))
    status, _ = await post_checkin(controller.url, serial="S9", macs=["52:54:00:00:00:02"], node="hv1")
    assert status == 200
    assert "hv2" in controller.desk.arrived and "hv1" not in controller.desk.arrived
    ((node, _, message),) = told(controller)
    assert node == "hv2" and "matched by MAC 52:54:00:00:00:02" in message and "named hv1 by the seed" in message


async def test_checkin_from_unknown_machine_is_ignored(controller: Controller) -> None:
    controller.desk.expect("hv1", serial="S1", macs=("52:54:00:00:00:01",))
    status, body = await post_checkin(controller.url, serial="INTRUDER", macs=["02:00:00:00:00:99"], node="hv1")
    assert status == 404 and body["ack"] is False
    assert controller.desk.arrived == {}
    for _ in range(3):  # it tries again and again, as a live system does until acknowledged
        assert (await post_checkin(controller.url, serial="INTRUDER", macs=["02:00:00:00:00:99"]))[0] == 404
    ((node, attempt, message),) = told(controller)  # the run's own line (no node's), told once
    assert (node, attempt) == ("", 0)
    assert "ignored a check-in from an unknown machine: serial INTRUDER, MACs 02:00:00:00:00:99" in message
    assert "from 127.2.0.1" in message


async def test_checkin_with_another_host_key_is_refused(controller: Controller) -> None:
    controller.desk.expect("hv1", serial="S1", attempt=1)
    for _ in range(3):
        status, _ = await post_checkin(controller.url, host_key_fingerprint="SHA256:someoneelse")
        assert status == 403 and controller.desk.arrived == {}
    ((node, attempt, message),) = told(controller)  # refused again and again, logged once
    assert (node, attempt) == ("hv1", 1)
    assert "refused a check-in: serial S1" in message and "matched by serial S1" in message
    assert f"its host key SHA256:someoneelse is not the pinned {FINGERPRINT}" in message
    controller.desk.forget("hv1")  # a new boot: its check-ins are a new story
    assert (await post_checkin(controller.url, host_key_fingerprint="SHA256:someoneelse", node=None))[0] == 403
    assert len(told(controller)) == 2
    assert "named (none) by the seed" in told(controller)[1][2]  # the live system sends null: no seed entry


async def test_bad_checkin_is_a_400(controller: Controller) -> None:
    url = controller.url + "/api/v1/checkin"
    async with aiohttp.ClientSession() as http, http.post(url, data=b"{not json") as answer:
        assert answer.status == 400
    status, _ = await post_checkin(controller.url, addresses=["not-an-address"])
    assert status == 400


async def test_status_snapshot_and_event_stream(controller: Controller) -> None:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {controller.token.value}"}) as http:
        async with http.get(controller.url + "/api/v1/events") as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            first = await _sse_event(stream)
            assert first[0] == "snapshot" and [n["node"] for n in first[1]["nodes"]] == ["hv1", "hv2"]
            controller.bus.emit(Event("hv2", EventKind.STATE, state=NodeState.INSTALL, attempt=1))
            kind, data = await _sse_event(stream)
            assert kind == "node" and data["node"] == "hv2" and data["state"] == "install"
        async with http.get(controller.url + "/api/v1/status") as answer:
            snapshot = await answer.json()
        assert snapshot["cluster"] == "c1"
        assert {n["node"]: n["state"] for n in snapshot["nodes"]} == {"hv1": "pending", "hv2": "install"}
        async with http.get(controller.url + "/") as page:
            assert page.status == 200 and '<script src="static/app.js">' in await page.text()
        async with http.get(controller.url + "/static/app.js") as script:
            assert script.status == 200 and "EventSource" in await script.text()


async def _sse_event(stream: aiohttp.ClientResponse) -> tuple[str, dict]:
    kind, data = "", ""
    while True:
        line = (await asyncio.wait_for(stream.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and kind:
            return kind, json.loads(data)


async def test_taken_port_is_a_user_error(controller: Controller, tmp_path: Path) -> None:
    port = int(controller.url.rsplit(":", 1)[1])
    other = Server(build_app(Board([]), EventBus(), CheckinDesk("", EventBus()), RunInfo("c", tmp_path), None,
                             RunToken("t")), "127.0.0.1", port)
    with pytest.raises(ListenError, match="in use"):
        await other.start()
