"""The ISO, served to the inventory's BMCs (and loopback) at an unguessable path.

`web.FileResponse` does HEAD, Range, If-Range, ETag and sendfile; this module only decides who may
have it. The path is `/iso/<token>/<name>.iso`, no query string, because some BMCs refuse
image URLs with one or with any other suffix.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web


@dataclass(frozen=True)
class IsoShare:
    path: Path
    allowed: frozenset[str]  # addresses (text) that may fetch it, besides loopback
    allow_loopback: bool = True
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def url_path(self) -> str:
        return f"/iso/{self.token}/{self.path.stem}.iso"

    def admits(self, remote: str | None) -> bool:
        if remote is None:
            return False
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(remote)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if self.allow_loopback and ip.is_loopback:
            return True
        return str(ip) in self.allowed


def bmc_addresses(hosts: list[str]) -> frozenset[str]:
    """The IP addresses of the BMC host names, as the ISO endpoint compares them."""
    out: set[str] = set()
    for host in hosts:
        try:
            out.update(str(info[4][0]) for info in socket.getaddrinfo(host, None))
        except OSError:
            continue  # preflight reports an unknown BMC host; the ISO just stays closed to it
    return frozenset(out)


SHARE = web.AppKey("iso_share", IsoShare)


async def handle_iso(request: web.Request) -> web.StreamResponse:
    share = request.app.get(SHARE)
    if share is None or request.match_info["token"] != share.token:
        raise web.HTTPNotFound()
    if not share.admits(request.remote):
        raise web.HTTPForbidden(text="this address is not a BMC of the inventory\n")
    response = web.FileResponse(share.path)
    if_range = request.headers.get("If-Range", "")
    if if_range.startswith(('"', "W/")) and if_range != _etag(share.path):
        # aiohttp's If-Range compares dates only; an ETag that no longer matches means the file changed
        # since the client's first part, so it gets the whole file again (RFC 9110 §13.1.5)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("range", "if-range")}
        await response.prepare(request.clone(headers=headers))
    return response


def _etag(path: Path) -> str:
    """The strong ETag aiohttp's FileResponse sends for this file."""
    st = path.stat()
    return f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
