"""Where a BMC is and how to trust it: `BmcEndpoint`, and the TLS setting each request uses.

TLS is verified by default. A per-BMC CA bundle replaces the system's CAs; a pinned SHA-256
certificate fingerprint replaces chain verification (BMCs usually have self-signed certificates);
`verify_tls=False` is honoured only when written explicitly, and says so in the log.
"""

from __future__ import annotations

import functools
import logging
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from controller.bmc.errors import BmcTargetError

log = logging.getLogger(__name__)

_FINGERPRINT = re.compile(r"^[0-9a-f]{64}$")


def normalize_fingerprint(text: str) -> str:
    """`AB:CD:...` or `abcd...` → 64 lower-case hex digits, or BmcTargetError."""
    digits = text.replace(":", "").strip().lower()
    if not _FINGERPRINT.match(digits):
        raise BmcTargetError(
            f"certificate fingerprint {text!r} is not a SHA-256 digest: give 64 hex digits "
            "(openssl x509 -noout -fingerprint -sha256)"
        )
    return digits


def origin_of(url: str) -> str:
    """`https://host[:port]` from a BMC URL; anything else is a BmcTargetError."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise BmcTargetError(f"BMC URL {url!r} must look like https://host[:port] (Redfish needs HTTPS)")
    if parts.username or parts.password or parts.query or parts.path not in ("", "/"):
        raise BmcTargetError(f"BMC URL {url!r} must be just https://host[:port], without path or user")
    try:
        port = parts.port
    except ValueError as err:
        raise BmcTargetError(f"BMC URL {url!r} has a bad port") from err
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"https://{host}:{port}" if port else f"https://{host}"


@dataclass(frozen=True)
class BmcEndpoint:
    """One BMC: its origin URL, credentials and TLS policy. The password never shows in a repr."""

    url: str
    username: str
    password: SecretStr = field(repr=False)
    verify_tls: bool = True
    ca_bundle: Path | None = None
    fingerprint: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "url", origin_of(self.url))
        if not self.username:
            raise BmcTargetError(f"BMC {self.url}: a user name is required")
        if self.fingerprint is not None:
            object.__setattr__(self, "fingerprint", normalize_fingerprint(self.fingerprint))
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise BmcTargetError(f"BMC {self.url}: CA bundle {self.ca_bundle} is not a readable file")

    @classmethod
    def from_config(cls, config: Any) -> BmcEndpoint:
        """Adapter from the inventory's `BmcConfig` (address, username, password, verify_tls, ...)."""
        return cls(
            url=config.address,
            username=config.username,
            password=config.password,
            verify_tls=config.verify_tls,
            ca_bundle=config.ca_bundle,
            fingerprint=config.fingerprint,
        )

    def ssl_setting(self) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
        """What aiohttp's `ssl=` gets for every request to this BMC."""
        if self.fingerprint:
            return aiohttp.Fingerprint(bytes.fromhex(self.fingerprint))
        if not self.verify_tls:
            log.warning("BMC %s: TLS verification is OFF (verify_tls: false): anyone on the path can "
                        "read its password", self.url)
            return False
        if self.ca_bundle is not None:
            return _context_for_ca(str(Path(self.ca_bundle).resolve()))
        return True


@functools.lru_cache(maxsize=64)
def _context_for_ca(ca_path: str) -> ssl.SSLContext:
    # One context per CA file: 500 BMCs sharing a lab CA load it once.
    try:
        return ssl.create_default_context(cafile=ca_path)
    except (OSError, ssl.SSLError) as err:
        raise BmcTargetError(f"CA bundle {ca_path} cannot be loaded: {err}") from err
