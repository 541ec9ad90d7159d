"""The live system's SSH host key: made once per build cache, pinned by the controller."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.keys import fingerprint
from iso.cache import atomic_output


@dataclass(frozen=True)
class HostKey:
    """An ed25519 host key pair on disk (private key mode 0600)."""

    private: Path
    public_line: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_line)

    def __repr__(self) -> str:  # never show the private key's content
        return f"HostKey(private={str(self.private)!r}, fingerprint={self.fingerprint!r})"



def live_host_key(key_dir: Path) -> HostKey:
    """The host key kept in key_dir, made on first use."""
    private = key_dir / "ssh_host_ed25519_key"
    public = key_dir / "ssh_host_ed25519_key.pub"
    if not (private.is_file() and public.is_file()):
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
        line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with atomic_output(private) as partial:
            partial.touch(mode=0o600)
            partial.write_bytes(pem)
        with atomic_output(public) as partial:
            partial.write_text(line.decode() + " root@pvc-live\n")
    return HostKey(private, public.read_text().strip())
