"""SSH to a live node (and later to the installed system), with its host key pinned.

`LiveSession` connects only when the server shows the pinned host key (no trust on first use),
as the controller's key. `RemoteInstall` puts the installer (a zipapp of `installer/`) and the
plan in a per-attempt directory on the node, starts it detached with setsid (it outlives a dropped
link and a restarted controller), and follows its JSON-lines progress by reading the progress file
from an offset: after a reconnect it reattaches by reading the same file again, never starting a
second install. The directory is relative to the login's home, so it needs no root-owned paths.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import tempfile
import zipapp
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from core.errors import OperationError

INSTALLER_PACKAGE = Path(__file__).resolve().parent.parent / "installer"
CONNECT_TIMEOUT = 10.0


class LiveError(OperationError):
    """SSH to a node failed, or the node is not who it should be."""


class LoginRefused(LiveError):
    """The node refused the controller's key: waiting will not change that."""


class HostKeyMismatch(LiveError):
    """The node presented a host key other than the pinned one: never connect to it."""


@dataclass(frozen=True)
class SshTarget:
    host: str
    port: int
    username: str
    host_keys: tuple[str, ...]  # OpenSSH public key lines the server must present one of
    client_key: Path
    node: str = ""

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"


class LiveSession:
    """One SSH connection: `async with LiveSession.connect(target) as session:`."""

    def __init__(self, conn: asyncssh.SSHClientConnection, target: SshTarget):
        self.conn = conn
        self.target = target
        self._sftp: asyncssh.SFTPClient | None = None

    async def sftp(self) -> asyncssh.SFTPClient:
        """One SFTP channel for the session's life: following a progress file polls it often."""
        if self._sftp is None:
            self._sftp = await self.conn.start_sftp_client()
        return self._sftp

    @classmethod
    async def open(cls, target: SshTarget, phase: str = "live") -> LiveSession:
        trusted = [asyncssh.import_public_key(line) for line in target.host_keys]
        try:
            conn = await asyncio.wait_for(asyncssh.connect(
                target.host, target.port, username=target.username, client_keys=[str(target.client_key)],
                known_hosts=(trusted, [], []), agent_path=None, config=None,
                server_host_key_algs=[key.get_algorithm() for key in trusted],
            ), CONNECT_TIMEOUT)
        except asyncssh.HostKeyNotVerifiable as err:
            raise HostKeyMismatch(f"{target} presented a host key that is not the pinned one ({err.reason}); "
                                  "refusing to connect", node=target.node, phase=phase,
                                  hint="is this the right machine, booted from this run's ISO?") from None
        except asyncssh.PermissionDenied:
            raise LoginRefused(f"{target} refused the controller's SSH key", node=target.node, phase=phase,
                               hint="the install plan must carry the controller's public key") from None
        except (OSError, TimeoutError, asyncssh.Error) as err:
            raise LiveError(f"cannot reach {target}: {err or type(err).__name__}", node=target.node,
                            phase=phase) from None
        return cls(conn, target)

    async def __aenter__(self) -> LiveSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sftp is not None:
            self._sftp.exit()
        self.conn.close()
        await self.conn.wait_closed()

    async def run(self, command: str, timeout: float = 60.0) -> str:
        result = await self.conn.run(command, check=True, timeout=timeout)
        return str(result.stdout or "")

    async def put(self, local: Path, remote: str) -> None:
        await (await self.sftp()).put(str(local), remote)

    async def read(self, remote: str, offset: int = 0) -> bytes | None:
        """The file's bytes from `offset`, or None when it does not exist (yet)."""
        sftp = await self.sftp()
        try:
            async with sftp.open(remote, "rb") as handle:
                await handle.seek(offset)
                data = await handle.read()
                return data if isinstance(data, bytes) else data.encode()
        except asyncssh.SFTPNoSuchFile:
            return None


def build_installer_zipapp(out: Path) -> Path:
    """`installer.pyz`: the repo's installer package, runnable as `python3 installer.pyz run ...`."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = Path(tmp) / "installer"
        pkg.mkdir()
        for source in INSTALLER_PACKAGE.glob("*.py"):
            (pkg / source.name).write_bytes(source.read_bytes())
        (Path(tmp) / "__main__.py").write_text("import runpy\nrunpy.run_module('installer', run_name='__main__')\n")
        zipapp.create_archive(tmp, out, interpreter="/usr/bin/env python3")
    return out


@dataclass(frozen=True)
class InstallOutcome:
    exit_code: int
    final: dict[str, Any]  # the installer's last line ({"event": "done"|"failed", ...})


class RemoteInstall:
    """The installer's run on one node, in `pvcctl/<run_id>/` under the login's home."""

    def __init__(self, session: LiveSession, run_id: str):
        self.session = session
        self.dir = f"pvcctl/{run_id}"

    def path(self, name: str) -> str:
        return f"{self.dir}/{name}"

    async def started(self) -> bool:
        return await self.session.read(self.path("started")) is not None

    async def start(self, installer: Path, plan: dict[str, Any]) -> None:
        """Upload and start, detached. Call only when `started()` is False (a reattach never starts)."""
        await self.session.run(f"mkdir -p {shlex.quote(self.dir)}")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "plan.json").write_text(json.dumps(plan, indent=2))
            await self.session.put(installer, self.path("installer.pyz"))
            await self.session.put(Path(tmp) / "plan.json", self.path("plan.json"))
        inner = ("python3 installer.pyz run plan.json --report report.json --log install.log --target target "
                 "> progress.jsonl 2> stderr.log; echo $? > exit_status")
        # setsid + a closed stdin/stdout: the installer belongs to no SSH session, so a dropped link
        # or a killed controller never stops it; `started` marks that it was launched exactly once.
        await self.session.run(
            f"cd {shlex.quote(self.dir)} && test ! -e started && echo $$ > started && "
            f"(setsid sh -c {shlex.quote(inner)} < /dev/null > /dev/null 2>&1 &)"
        )

    async def inspect(self, installer: Path, plan: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
        """The installer's inspection (installer/inspect.py): its report, read from its final line. It
        writes nothing to any disk, so it runs attached and is simply run again after a lost link."""
        await self.session.run(f"mkdir -p {shlex.quote(self.dir)}")
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "plan.json").write_text(json.dumps(plan, indent=2))
            await self.session.put(installer, self.path("installer.pyz"))
            await self.session.put(Path(tmp) / "plan.json", self.path("plan.json"))
        result = await self.session.conn.run(
            f"cd {shlex.quote(self.dir)} && python3 installer.pyz inspect plan.json --report inspect.json "
            "--log inspect.log", check=False, timeout=timeout)
        lines = [line for line in str(result.stdout or "").splitlines() if line.strip()]
        final = _json_line(lines[-1]) if lines else {}
        if final.get("event") != "done" or not isinstance(final.get("inspect"), dict):
            reason = final.get("message") or str(result.stderr or "").strip()[-300:] or f"exit {result.exit_status}"
            raise OperationError(f"the inspection failed: {reason}", node=self.session.target.node, phase="inspect")
        report: dict[str, Any] = final["inspect"]
        return report

    async def follow(self, on_line: Callable[[dict[str, Any]], None], poll: float = 0.2) -> InstallOutcome:
        """Every progress line (from the first: a reattach replays them), until the final one."""
        pending = b""
        async for chunk in self._chunks(poll):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for raw in lines:
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                except json.JSONDecodeError:
                    continue  # a partial write is finished on the next read
                if "event" in line:
                    return InstallOutcome(int(line.get("exit_code", 1)), line)
                on_line(line)
        status = await self.session.read(self.path("exit_status"))
        code = int(status.strip() or 1) if status else 1
        return InstallOutcome(code, {"event": "failed", "exit_code": code, "message": "the installer stopped "
                                     "without a final line; see its log"})

    async def _chunks(self, poll: float) -> AsyncIterator[bytes]:
        offset, delay = 0, poll
        while True:
            chunk = await self.session.read(self.path("progress.jsonl"), offset)
            if chunk:
                offset += len(chunk)
                delay = poll
                yield chunk
                continue
            if await self.session.read(self.path("exit_status")) is not None:
                tail = await self.session.read(self.path("progress.jsonl"), offset)
                if tail:
                    yield tail
                return
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, poll * 8)  # a quiet step (debootstrap) costs few reads

    async def fetch(self, local_dir: Path) -> dict[str, Any]:
        """The installer's log (and stderr) into local_dir, and its report (empty when none)."""
        local_dir.mkdir(parents=True, exist_ok=True)
        for name in ("install.log", "stderr.log"):
            data = await self.session.read(self.path(name))
            if data is not None:
                (local_dir / name).write_bytes(data)
        report = await self.session.read(self.path("report.json"))
        if report is None:
            return {}
        (local_dir / "report.json").write_bytes(report)
        return dict(json.loads(report))


def _json_line(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
