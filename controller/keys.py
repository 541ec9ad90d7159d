"""The controller's own SSH key: the one every live node and installed node trusts.

It is the inventory's `controller.ssh_key` when given; otherwise pvcctl makes an Ed25519 key
once under the state directory and keeps it (private part mode 0600).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from controller.errors import UserError
from inventory.model import Cluster


def controller_key_path(cluster: Cluster) -> Path:
    return cluster.controller.ssh_key or cluster.controller.state_dir / "keys" / "controller_ed25519"


def controller_public_key(cluster: Cluster, *, create: bool = True) -> str:
    """The controller's public key line (`ssh-ed25519 AAAA... pvcctl@cluster`)."""
    private = controller_key_path(cluster)
    public = private.with_name(private.name + ".pub")
    if public.exists():
        return public.read_text().strip()
    if private.exists():
        return _public_from_private(private)
    if cluster.controller.ssh_key is not None or not create:
        raise UserError(f"{private}: the controller's SSH key does not exist; create it with ssh-keygen -t ed25519")
    return write_new_key(private, comment=f"pvcctl@{cluster.name}")


def write_new_key(private: Path, comment: str) -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                            serialization.NoEncryption())
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    public_line = f"{line.decode()} {comment}"
    private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    private.with_name(private.name + ".pub").write_text(public_line + "\n")
    return public_line


def _public_from_private(private: Path) -> str:
    try:
        key = serialization.load_ssh_private_key(private.read_bytes(), password=None)
    except (ValueError, OSError) as err:
        raise UserError(f"{private}: cannot read the controller's SSH key ({err}); it must be an "
                        "unencrypted OpenSSH key") from None
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return line.decode()
