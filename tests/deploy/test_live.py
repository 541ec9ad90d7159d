"""LiveSession against a real asyncssh server on port 0: the pinned host key, or no connection."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from controller.live import HostKeyMismatch, LiveError, LiveSession, LoginRefused, SshTarget, build_installer_zipapp


async def test_connects_with_the_pinned_key(ssh_server: tuple[int, str, Path], tmp_path: Path) -> None:
    port, host_public, client = ssh_server
    target = SshTarget("127.0.0.1", port, "root", (host_public,), client, "hv1")
    async with await LiveSession.open(target) as session:
        assert await session.run("echo hi") == "ran: echo hi\n"
        (tmp_path / "f.txt").write_text("0123456789")
        assert await session.read("f.txt", 4) == b"456789"
        assert await session.read("missing.txt") is None


async def test_refuses_any_other_host_key(ssh_server: tuple[int, str, Path]) -> None:
    port, _, client = ssh_server
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    target = SshTarget("127.0.0.1", port, "root", (other,), client, "hv1")
    with pytest.raises(HostKeyMismatch, match="not the pinned one") as caught:
        await LiveSession.open(target)
    assert caught.value.node == "hv1"


async def test_unreachable_node_is_a_live_error(tmp_path: Path, ssh_server: tuple[int, str, Path]) -> None:
    _, host_public, client = ssh_server
    target = SshTarget("127.0.0.1", 1, "root", (host_public,), client, "hv1")
    with pytest.raises(LiveError, match="cannot reach"):
        await LiveSession.open(target)


def test_installer_zipapp_runs(tmp_path: Path) -> None:
    import subprocess
    import sys

    pyz = build_installer_zipapp(tmp_path / "installer.pyz")
    answer = subprocess.run([sys.executable, str(pyz), "run", "--help"], capture_output=True, text=True, check=False)
    assert answer.returncode == 0 and "PLAN.json" in answer.stdout


async def test_refused_key_is_a_login_refused(ssh_server: tuple[int, str, Path], tmp_path: Path) -> None:
    port, host_public, _ = ssh_server
    stranger = tmp_path / "stranger"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    with pytest.raises(LoginRefused, match="refused the controller's SSH key"):
        await LiveSession.open(SshTarget("127.0.0.1", port, "root", (host_public,), stranger, "hv1"))
