"""The one question before any wipe: asked once for all nodes, on a real terminal (a pty), refused
with no terminal; and the IPMI presence ping against a real UDP responder on loopback."""

from __future__ import annotations

import asyncio
import os
import pty
import socket
from pathlib import Path

import pytest

from controller.bmc.ipmi import PRESENCE_PING, ipmi_answers
from controller.consent import WipeNotConfirmed, ask_on_terminal, needs_question
from controller.wipe_gate import WipeDeclined, WipeGate
from inventory.load import load_inventory
from tests.inventory.conftest import BASE


async def test_the_gate_asks_once_when_every_node_has_come_or_ended() -> None:
    asked: list[list[str]] = []

    async def ask(statements: list[str]) -> bool:
        asked.append(statements)
        return True

    gate = WipeGate(["hv1", "hv2", "hv3"], ask)
    first = asyncio.create_task(gate.confirm("hv1", "hv1: will WIPE /dev/sda"))
    await asyncio.sleep(0.05)
    assert not first.done() and asked == []  # hv2 and hv3 may still come
    gate.withdraw("hv3")  # failed before its inspection: not waited for
    second = asyncio.create_task(gate.confirm("hv2", "hv2: will WIPE /dev/nvme0n1"))
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert asked == [["hv1: will WIPE /dev/sda", "hv2: will WIPE /dev/nvme0n1"]]
    await gate.confirm("hv2", "hv2: again, a retried attempt")  # answered already: no second question
    assert len(asked) == 1


async def test_a_declined_wipe_stops_every_node() -> None:
    async def no(statements: list[str]) -> bool:
        return False

    gate = WipeGate(["hv1", "hv2"], no)
    results = await asyncio.gather(gate.confirm("hv1", "a"), gate.confirm("hv2", "b"), return_exceptions=True)
    assert all(isinstance(r, WipeDeclined) for r in results)


async def test_no_question_with_yes_or_for_a_lab() -> None:
    gate = WipeGate(["hv1"], None)
    await asyncio.wait_for(gate.confirm("hv1", "a"), 1)


@pytest.mark.parametrize(("typed", "answer"), [(b"y\n", True), (b"yes\n", True), (b"\n", False), (b"n\n", False)])
async def test_the_question_on_a_terminal(typed: bytes, answer: bool, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    master, slave = pty.openpty()
    with os.fdopen(slave, "r") as terminal:
        monkeypatch.setattr("sys.stdin", terminal)
        asking = asyncio.create_task(ask_on_terminal(["hv1: will WIPE /dev/sda", "hv2: will WIPE /dev/sdb"]))
        await asyncio.sleep(0.1)
        assert not asking.done()
        os.write(master, typed)
        assert await asyncio.wait_for(asking, 5) is answer
    os.close(master)
    out = capsys.readouterr().out
    assert "  hv1: will WIPE /dev/sda\n  hv2: will WIPE /dev/sdb\nwipe these 2 disks? [y/N] " in out


def test_consent_with_and_without_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BMC_PASSWORD", "s3cret-bmc")
    (tmp_path / "inventory.yml").write_text(BASE)
    cluster = load_inventory(tmp_path / "inventory.yml")
    assert not cluster.controller.lab
    master, slave = pty.openpty()
    with os.fdopen(slave, "r") as terminal:
        monkeypatch.setattr("sys.stdin", terminal)
        assert needs_question(cluster, yes=False, inspect=False) is True
    os.close(master)
    with open(os.devnull) as nothing:
        monkeypatch.setattr("sys.stdin", nothing)
        with pytest.raises(WipeNotConfirmed, match="no terminal to ask: add --yes"):
            needs_question(cluster, yes=False, inspect=False)
        assert needs_question(cluster, yes=True, inspect=False) is False
        assert needs_question(cluster, yes=False, inspect=True) is False  # an inspection wipes nothing


async def test_ipmi_presence_ping_answered_and_not() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    loop = asyncio.get_running_loop()

    async def bmc() -> None:  # answers a presence ping with a pong, as a BMC with IPMI over LAN does
        data, peer = await loop.sock_recvfrom(sock, 64)
        assert data == PRESENCE_PING
        await loop.sock_sendto(sock, bytes.fromhex("0600ff06000011be4021001000000000000000000000000000"), peer)

    answering = asyncio.create_task(bmc())
    assert await ipmi_answers("127.0.0.1", port, timeout=2) is True
    await answering
    sock.close()
    assert await ipmi_answers("127.0.0.1", port, timeout=0.6) is False  # nothing listens there now
