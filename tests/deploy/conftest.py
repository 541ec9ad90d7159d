"""Shared helpers for the deploy tests: a simulated lab in the test's loop, `pvcctl` as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from aiohttp import web

from lab.sim import SimLab

PVCCTL = str(Path(sys.executable).parent / "pvcctl")


@dataclass
class Finished:
    code: int
    out: str
    err: str


class Pvcctl:
    """Runs `pvcctl` as its own process (real exit status, real signals), in a working directory of its own."""

    def __init__(self, home: Path):
        self.env = {**os.environ, "COLUMNS": "200"}
        self.cwd = home

    async def start(self, *args: str) -> asyncio.subprocess.Process:
        self.cwd.mkdir(parents=True, exist_ok=True)
        return await asyncio.create_subprocess_exec(
            PVCCTL, *args, env=self.env, cwd=self.cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)

    async def run(self, *args: str, timeout: float = 120) -> Finished:
        proc = await self.start(*args)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        return Finished(proc.returncode or 0, out.decode(), err.decode())


@pytest.fixture
def pvcctl(tmp_path: Path) -> Pvcctl:
    return Pvcctl(tmp_path / "home")


LabFactory = Callable[..., Awaitable[SimLab]]


@pytest.fixture
async def make_lab(tmp_path: Path) -> AsyncIterator[LabFactory]:
    labs: list[SimLab] = []

    async def make(count: int, **options: Any) -> SimLab:
        lab = SimLab(count, tmp_path / f"lab{len(labs)}", **options)
        labs.append(lab)
        return await lab.start()

    yield make
    for lab in labs:
        await lab.stop()


def run_dir(lab: SimLab) -> Path:
    runs = sorted((lab.dir / "runs" / "simlab").glob("*/journal.sqlite"))
    assert runs, "no run directory"
    return runs[-1].parent


def journal_rows(lab: SimLab, query: str, *args: Any) -> list[tuple[Any, ...]]:
    runs = sorted((lab.dir / "runs" / "simlab").glob("*/journal.sqlite"))
    if not runs:
        return []
    with sqlite3.connect(f"file:{runs[-1]}?mode=ro", uri=True) as db:
        try:
            return db.execute(query, args).fetchall()
        except sqlite3.OperationalError:
            return []  # the deploy is still creating it


def node_states(lab: SimLab) -> dict[str, str]:
    return dict(journal_rows(lab, "SELECT node, state FROM nodes"))  # type: ignore[arg-type]


async def until(predicate: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def installs_started(lab: SimLab, node: str) -> list[Path]:
    """Every installer run ever started on the node (one `started` marker each)."""
    return sorted((lab.dir / "machines" / node / "pvcctl").glob("*/started"))


@pytest.fixture
async def ssh_server(tmp_path: Path) -> AsyncIterator[tuple[int, str, Path]]:
    """A real asyncssh server on port 0: (port, its host public key, a client key it accepts)."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    client_path = tmp_path / "client"
    client_key.write_private_key(str(client_path))
    authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())

    async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
        process.stdout.write(f"ran: {process.command}\n")
        process.exit(0)

    acceptor = await asyncssh.create_server(
        asyncssh.SSHServer, "127.0.0.1", 0, server_host_keys=[host_key], authorized_client_keys=authorized,
        process_factory=handle, sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(tmp_path).encode()))
    port = acceptor.sockets[0].getsockname()[1]
    yield port, host_key.export_public_key().decode().strip(), client_path
    acceptor.close()
    await acceptor.wait_closed()


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    """`app` on a loopback port of its own while the block runs; the port."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()
