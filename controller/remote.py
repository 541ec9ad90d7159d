"""Reaching a running deploy's controller through its API (with the run's token): `pvcctl retry` while
the run goes on, `pvcctl watch URL` from another machine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from controller.journal import Journal
from controller.server.auth import TOKEN_FILE
from core.errors import UserError


class SteeringRefused(UserError):
    """The running controller would not do it (a node running, or done); its reason says what to do."""


@dataclass(frozen=True)
class Controller:
    url: str
    token: str

    @classmethod
    def of_run(cls, journal: Journal) -> Controller | None:
        """The controller a run's journal names, unless the run has finished (or never served)."""
        meta = journal.meta()
        token = journal.run_dir / TOKEN_FILE
        if "finished" in meta or "controller" not in meta or not token.is_file():
            return None
        return cls(meta["controller"].rstrip("/"), token.read_text().strip())

    @classmethod
    def of_url(cls, url: str) -> Controller:
        """From the dashboard URL a deploy printed (http://HOST:PORT/?token=...)."""
        parts = urlsplit(url)
        token = (parse_qs(parts.query).get("token") or [""])[0]
        if parts.scheme not in ("http", "https") or not parts.netloc or not token:
            raise UserError(f"{url}: give the dashboard URL the deploy printed, like http://HOST:PORT/?token=...")
        return cls(f"{parts.scheme}://{parts.netloc}", token)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def retry(self, nodes: list[str]) -> list[str] | None:
        """Ask the running controller to start each node over; None when no controller answers (the run
        is over, or its controller died): the caller starts the nodes in a run of its own."""
        said = []
        try:
            async with aiohttp.ClientSession(headers=self.headers, timeout=aiohttp.ClientTimeout(total=15)) as http:
                for node in nodes:
                    async with http.post(f"{self.url}/api/v1/nodes/{node}/retry") as answer:
                        body: dict[str, Any] = await answer.json(content_type=None)
                        if answer.status != 202:
                            why = body.get("reason", answer.status)
                            raise SteeringRefused(f"{node}: the running deploy says: {why}")
                        said.append(f"{node}: started over by the running deploy (attempt {body['attempt']})")
        except (aiohttp.ClientConnectionError, TimeoutError):
            if said:
                raise UserError(f"the running deploy stopped answering after: {'; '.join(said)}") from None
            return None
        return said

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Every event of the run's event stream, as the controller sends it (a snapshot first)."""
        import json

        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with aiohttp.ClientSession(headers=self.headers, timeout=timeout) as http, \
                http.get(f"{self.url}/api/v1/events") as stream:
            if stream.status == 401:
                raise UserError(f"{self.url}: the token was refused; use the dashboard URL this run printed")
            stream.raise_for_status()
            kind, data = "", ""
            async for raw in stream.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif not line and kind:
                    yield {"stream": kind, **json.loads(data)}
                    kind, data = "", ""
