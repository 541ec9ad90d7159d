"""What every lab cluster needs, simulated (lab/sim.py) or QEMU (lab/qemu.py): a free port for its
controller, SSH keys, its inventory written as YAML, and the one error its flags can raise.
`pvcctl lab up` (lab/cli.py) starts either kind.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
from pathlib import Path
from typing import Any

import asyncssh
from ruamel.yaml import YAML

from core.errors import UserError


class LabUsageError(UserError):
    """`pvcctl lab up` was asked for something it cannot run."""


def free_port() -> int:
    """A TCP port free on loopback now (for the controller the lab's inventory names)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def host_key(directory: Path, name: str = "ssh_host_ed25519_key") -> Path:
    """An ed25519 private key at directory/name, made once and kept (mode 0600)."""
    path = directory / name
    if not path.is_file():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(path))
        path.chmod(0o600)
    return path


def public_line(private: Path) -> str:
    """The OpenSSH public key line of a private key file."""
    return asyncssh.read_private_key(str(private)).export_public_key().decode().strip()


def dump_inventory(doc: dict[str, Any], header: str) -> str:
    """A lab's inventory as YAML, one line per value however long the lab's paths, under a comment."""
    out = io.StringIO()
    yaml = YAML()
    yaml.width = 4096
    yaml.dump(doc, out)
    return f"# {header}\n{out.getvalue()}"


def netns_prefix() -> str:
    """`ip netns exec NAME ` when this process runs in a named network namespace."""
    mine = os.stat("/proc/self/ns/net").st_ino
    for entry in sorted(Path("/run/netns").glob("*")) if Path("/run/netns").is_dir() else []:
        with contextlib.suppress(OSError):
            if entry.stat().st_ino == mine:
                return f"ip netns exec {entry.name} "
    return ""
