"""One shared aiohttp session for every BMC, and a per-BMC view of it.

`redfish.aio.AsyncRedfishClient` calls only `session.request(...)`. `BmcTransport` gives it exactly
that, bound to one BMC: every request carries that BMC's TLS setting (CA, pin or default) and
waits for one of at most two connection slots, because BMCs serve few connections at once.
"""

from __future__ import annotations

import asyncio
import ssl
from types import TracebackType
from typing import Any

import aiohttp

MAX_CONNECTIONS_PER_BMC = 2


def new_http_session(*, total_connections: int = 0) -> aiohttp.ClientSession:
    """The one session a controller process shares between all its BMCs."""
    connector = aiohttp.TCPConnector(
        limit=total_connections, limit_per_host=MAX_CONNECTIONS_PER_BMC, enable_cleanup_closed=True
    )
    # Accept-Encoding identity: compressed answers made BMCs send weak ETags (sushy commit 51dacf2).
    return aiohttp.ClientSession(connector=connector, headers={"Accept-Encoding": "identity"})


class _LimitedRequest:
    def __init__(self, inner: Any, slots: asyncio.Semaphore, transport: BmcTransport):
        self._inner = inner
        self._slots = slots
        self._transport = transport

    async def __aenter__(self) -> aiohttp.ClientResponse:
        await self._slots.acquire()
        try:
            response: aiohttp.ClientResponse = await self._inner.__aenter__()
        except BaseException:
            self._slots.release()
            raise
        self._transport.requests += 1
        return response

    async def __aexit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._inner.__aexit__(kind, err, tb)
        finally:
            self._slots.release()


class BmcTransport:
    """The shared session as one BMC sees it: its TLS setting, two connections at most."""

    def __init__(self, session: aiohttp.ClientSession, ssl_setting: ssl.SSLContext | aiohttp.Fingerprint | bool):
        self._session = session
        self._ssl = ssl_setting
        self._slots = asyncio.Semaphore(MAX_CONNECTIONS_PER_BMC)
        self.requests = 0

    def request(self, method: str, url: Any, **kwargs: Any) -> _LimitedRequest:
        return _LimitedRequest(self._session.request(method, url, ssl=self._ssl, **kwargs), self._slots, self)
