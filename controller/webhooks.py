"""Notifications: a JSON POST to each of the inventory's webhooks when a node is done, when a node
failed, and when the deploy ended.

    {"event": "node_done" | "node_failed" | "deploy_ended", "node", "phase", "attempt", "error",
     "cluster", "run", "time", "exit_status" (deploy_ended only)}

A webhook with a token gets `X-Pvcctl-Signature: sha256=<hex HMAC-SHA256 of the body>`. Sending
never holds up the deploy: the bus only queues (a full queue drops, and says so); a background task
posts, tries a failing webhook a few times with growing waits, and logs what it could not deliver.
At the end of the run the queue is given a few seconds to drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from controller.node.events import Event, EventKind
from controller.node.states import NodeState
from inventory.model import WebhookConfig

log = logging.getLogger("controller.webhooks")
QUEUED = 1000
TRIES = 4  # a failing webhook: now, then after 1, 2 and 4 seconds
DRAIN_SECONDS = 10.0
SIGNATURE = "X-Pvcctl-Signature"


def signature(token: str, body: bytes) -> str:
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


class Notifier:
    def __init__(self, hooks: tuple[WebhookConfig, ...], cluster: str, run: str):
        self.hooks, self.cluster, self.run = hooks, cluster, run
        # a queue and a sender per webhook: a slow or failing one holds up no other
        self._queues: list[asyncio.Queue[dict[str, Any]]] = [asyncio.Queue(maxsize=QUEUED) for _ in hooks]

    def on_event(self, event: Event) -> None:
        """A bus subscriber: node done and node failed become notifications."""
        if not self.hooks or event.kind is not EventKind.STATE or not event.node:
            return
        if event.state is NodeState.DONE:
            self._put("node_done", event, error="")
        elif event.state is NodeState.FAILED:
            self._put("node_failed", event, error=event.message)

    def ended(self, exit_status: int) -> None:
        if self.hooks:
            self._put("deploy_ended", Event("", EventKind.RUN), error="", exit_status=exit_status)

    def _put(self, kind: str, event: Event, **extra: Any) -> None:
        body = {"event": kind, "node": event.node, "phase": event.phase, "attempt": event.attempt,
                "cluster": self.cluster, "run": self.run, "time": event.time, **extra}
        for hook, queue in zip(self.hooks, self._queues, strict=True):
            try:
                queue.put_nowait(body)
            except asyncio.QueueFull:
                log.warning("webhook %s: %d notifications waiting; dropped %s for %s", _where(hook.url), QUEUED, kind,
                            event.node or "the run")

    @contextlib.asynccontextmanager
    async def running(self, http: aiohttp.ClientSession) -> AsyncIterator[Notifier]:
        """Send in the background while the block runs; then let what is queued go, for a few seconds."""
        senders = [asyncio.create_task(self._sender(http, hook, queue))
                   for hook, queue in zip(self.hooks, self._queues, strict=True)]
        try:
            yield self
        finally:
            drained = asyncio.gather(*(queue.join() for queue in self._queues))
            try:
                await asyncio.wait_for(drained, DRAIN_SECONDS)
            except TimeoutError:
                left = sum(queue.qsize() for queue in self._queues)
                log.warning("webhooks: %d notifications not delivered when the run ended", left)
            for sender in senders:
                sender.cancel()

    async def _sender(self, http: aiohttp.ClientSession, hook: WebhookConfig,
                      queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            body = await queue.get()
            try:
                await self._send(http, hook, body)
            finally:
                queue.task_done()

    async def _send(self, http: aiohttp.ClientSession, hook: WebhookConfig, body: dict[str, Any]) -> None:
        data = json.dumps(body, sort_keys=True).encode()
        headers = {"Content-Type": "application/json"}
        if hook.token is not None:
            headers[SIGNATURE] = signature(hook.token.get_secret_value(), data)
        why = ""
        for attempt in range(TRIES):
            if attempt:
                await asyncio.sleep(2 ** (attempt - 1))
            try:
                async with http.post(hook.url, data=data, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=10)) as answer:
                    if answer.status < 300:
                        return
                    why = f"HTTP {answer.status}"
            except (aiohttp.ClientError, TimeoutError) as err:
                why = type(err).__name__
        log.warning("webhook %s: %s for %s not delivered after %d tries (%s)", _where(hook.url), body["event"],
                    body["node"] or "the run", TRIES, why)




def _where(url: str) -> str:
    """The webhook's URL without its query: a query may carry a secret."""
    return urlsplit(url)._replace(query="", fragment="").geturl()
