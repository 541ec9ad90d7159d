"""The simulated machine's live system behaves as a real one over SSH: a login lands in its home,
stdin reaches the command, SFTP takes relative and absolute paths, and a power-off stops
everything it ran, a detached installer included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncssh
import pytest

from lab.machine import BootOverride
from lab.sim import SimLab, serve_stand_in


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[tuple[SimLab, asyncssh.SSHClientConnection]]:
    """One simulated machine booted from the lab's ISO, and a root login to its live system."""
    lab = await SimLab(1, tmp_path / "lab").start()
    runner = await serve_stand_in(lab)
    node = lab.nodes["hv1"]
    node.machine.insert_cd(f"{lab.controller_url}/pvc-live.iso")
    node.machine.boot = BootOverride(target="Cd", enabled="Once")
    await node.machine.power_on()
    for _ in range(200):
        if node.checkins[-1:] == [200]:
            break
        await asyncio.sleep(0.05)
    assert node.checkins[-1:] == [200], f"the live system never checked in: {node.checkins}"
    known = asyncssh.import_known_hosts(
        f"[{node.address}]:{node.port} {(lab.dir / 'pvc-live.iso.hostkey.pub').read_text()}")
    conn = await asyncssh.connect(node.address, node.port, username="root", known_hosts=known,
                                  client_keys=[str(lab.dir / "controller" / "controller_ed25519")])
    try:
        yield lab, conn
    finally:
        conn.close()
        await runner.cleanup()
        await lab.stop()


def _processes_of(home: Path) -> list[int]:
    mark = f"PVC_SIM_MACHINE={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark in (proc / "environ").read_bytes().split(b"\0"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


async def test_a_login_lands_in_home_and_stdin_reaches_the_command(
        live: tuple[SimLab, asyncssh.SSHClientConnection]) -> None:
    lab, conn = live
    home = lab.nodes["hv1"].home
    assert (await conn.run("pwd", check=True)).stdout == f"{home}\n"
    # Ansible's pipelining sends a whole module on stdin: it must arrive, all of it, and end
    body = "x" * 300_000
    answer = await conn.run("wc -c", input=body, check=True)
    assert answer.stdout.strip() == str(len(body))
    failed = await conn.run("echo oops >&2; exit 3")
    assert (failed.exit_status, failed.stderr) == (3, "oops\n")


async def test_sftp_paths_are_as_sftp_server_gives_them(live: tuple[SimLab, asyncssh.SSHClientConnection]) -> None:
    lab, conn = live
    home = lab.nodes["hv1"].home
    elsewhere = lab.dir / "elsewhere.txt"
    async with conn.start_sftp_client() as sftp:
        assert await sftp.realpath(".") == str(home)
        async with sftp.open("relative.txt", "w") as out:
            await out.write("in home")
        async with sftp.open(str(elsewhere), "w") as out:
            await out.write("absolute")
    assert (home / "relative.txt").read_text() == "in home"
    assert elsewhere.read_text() == "absolute"


async def test_power_off_stops_a_detached_installer(live: tuple[SimLab, asyncssh.SSHClientConnection]) -> None:
    lab, conn = live
    node = lab.nodes["hv1"]
    # as pvcctl starts the installer: in its own session, outliving the SSH link
    await conn.run("(setsid sleep 300 < /dev/null > /dev/null 2>&1 &)", check=True)
    for _ in range(100):  # the shell returns before the detached child has surely started
        if _processes_of(node.home):
            break
        await asyncio.sleep(0.05)
    assert _processes_of(node.home), "the detached command is not running"
    await node.machine.power_off()
    for _ in range(100):  # a killed process leaves a zombie, whose environment reads empty
        if not _processes_of(node.home):
            break
        await asyncio.sleep(0.05)
    assert not _processes_of(node.home), "a process of the powered-off machine still runs"
    with pytest.raises(OSError):
        await asyncssh.connect(node.address, node.port, known_hosts=None, username="root",
                               client_keys=[str(lab.dir / "controller" / "controller_ed25519")])

