"""SSH keys as pvcctl keeps them: OpenSSH fingerprints, and key pairs made once on disk."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from core.errors import UserError


def fingerprint(public_line: str) -> str:
    """OpenSSH's SHA256 fingerprint of a public key line ('ssh-ed25519 AAAA... comment')."""
    blob = base64.b64decode(public_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def ssh_key_pair(path: Path, *, comment: str, what: str) -> tuple[Path, str]:
    """The ed25519 private key at `path` (made with mode 0600 and a `.pub` beside it when missing) and
    its public key line. `what` names the key in the error when the file is not a key."""
    import asyncssh  # only the commands that use a key pay for importing it

    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = asyncssh.generate_private_key("ssh-ed25519", comment=comment)
        path.touch(mode=0o600)
        key.write_private_key(str(path))
        key.write_public_key(str(path) + ".pub")
    try:
        key = asyncssh.read_private_key(str(path))
    except (OSError, asyncssh.KeyImportError) as err:
        raise UserError(f"{what} {path}: cannot read it as an SSH private key: {err}") from None
    return path, key.export_public_key().decode().strip()
