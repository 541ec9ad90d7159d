"""Requests to one BMC over `redfish.aio`: classified failures, ETags, 412 fallback, task monitors.

Every failed request becomes a `BmcRequestError` whose `FailureClass` tells the retry helper whether
trying again can help. Writes are sent once here; retrying them is the caller's decision, and a
failed write says what it left behind (`WriteOutcome`): a write whose answer was lost after it was
sent is UNKNOWN (the BMC may have acted), one whose task the BMC accepted is ACCEPTED: that task is
polled to its end (a failed poll is read again), never started a second time.

A task monitor the BMC has just given (the Location of a 202) may answer 404 for a while before the
task shows (NOTE(dell/idrac10), sushy oem/dell asynchronous.py): within `task_missing_grace` seconds
of the 202 such a 404 means "not there yet" and the monitor is read again; after that it fails.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from redfish.aio import (
    AsyncRedfishClient,
    AsyncRestResponse,
    RedfishAuthenticationError,
    RedfishConnectionError,
    RedfishError,
    RedfishHTTPError,
    RedfishProtocolError,
    RedfishTimeoutError,
)

from controller.bmc.errors import BmcRequestError, FailureClass, WriteOutcome

log = logging.getLogger(__name__)

_DURING_POST = ("UnableToModifyDuringSystemPOST", "during POST", "InvalidOperationForSystemState", "SYS518")
_FAILED_TASK_STATES = ("Exception", "Killed", "Cancelled", "Interrupted")


@dataclass(frozen=True)
class Resource:
    """A Redfish resource as read: its path, body and ETag (header first, then @odata.etag)."""

    path: str
    data: dict[str, Any]
    etag: str | None
    allow: str = ""


def _messages(response: AsyncRestResponse) -> tuple[tuple[str, ...], str]:
    try:
        body = response.dict
    except RedfishProtocolError:
        return (), response.text[:200]
    if not isinstance(body, dict):
        return (), ""
    error = body.get("error", body)
    if not isinstance(error, dict):
        return (), ""
    infos = error.get("@Message.ExtendedInfo", [])
    if isinstance(infos, dict):  # NOTE(dell/idrac): sometimes one object, not a list (ironic releasenote)
        infos = [infos]
    ids = tuple(str(i.get("MessageId", "")) for i in infos if isinstance(i, dict) and i.get("MessageId"))
    texts = [str(i.get("Message", "")) for i in infos if isinstance(i, dict) and i.get("Message")]
    text = "; ".join(texts) or str(error.get("message", ""))
    return ids, text


def _classify(status: int, ids: tuple[str, ...], text: str) -> FailureClass:
    blob = " ".join((*ids, text)).lower()
    if any(m.lower() in blob for m in _DURING_POST):
        return FailureClass.DURING_POST
    if "license" in blob or "licence" in blob:
        return FailureClass.LICENSE
    if status == 503:
        return FailureClass.BUSY
    if status == 409:
        return FailureClass.CONFLICT
    if status in (401, 403):
        return FailureClass.AUTH
    if status in (405, 501):
        return FailureClass.UNSUPPORTED
    if status >= 500:
        return FailureClass.SERVER
    return FailureClass.REJECTED


def _retry_after(response: AsyncRestResponse) -> float | None:
    value = response.getheader("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def response_error(method: str, path: str, response: AsyncRestResponse) -> BmcRequestError:
    ids, text = _messages(response)
    failure = _classify(response.status, ids, text)
    detail = " ".join(part for part in (", ".join(ids), text) if part)
    what = f"{method} {path}: HTTP {response.status}" + (f" {detail}" if detail else "")
    return BmcRequestError(failure, what, status=response.status, message_ids=ids,
                           retry_after=_retry_after(response), detail=text)


def library_error(method: str, path: str, err: RedfishError) -> BmcRequestError:
    """A `redfish.aio` exception as a classified failure (never with credentials in it)."""
    if isinstance(err, RedfishHTTPError):
        return response_error(method, path, err.response)
    cause = err.__cause__
    if isinstance(err, RedfishTimeoutError):
        return BmcRequestError(FailureClass.TIMEOUT, f"{method} {path}: no answer in time")
    if isinstance(cause, aiohttp.ServerFingerprintMismatch):
        return BmcRequestError(FailureClass.TLS, f"{method} {path}: certificate does not match the pinned "
                               f"fingerprint (got sha256 {cause.got.hex()})")
    if isinstance(cause, aiohttp.ClientSSLError | ssl.SSLError):
        return BmcRequestError(FailureClass.TLS, f"{method} {path}: TLS verification failed: {cause}")
    if isinstance(err, RedfishConnectionError):
        reason = f": {cause.__class__.__name__}" if cause else ""
        return BmcRequestError(FailureClass.CONNECTION, f"{method} {path}: connection failed{reason}")
    if isinstance(err, RedfishAuthenticationError):
        return BmcRequestError(FailureClass.AUTH, f"{method} {path}: the BMC refused the credentials")
    return BmcRequestError(FailureClass.PROTOCOL, f"{method} {path}: {err}")


class RedfishChannel:
    """Reads and writes on one logged-in `AsyncRedfishClient`."""

    def __init__(self, client: AsyncRedfishClient, *, poll_interval: float, task_deadline: float,
                 relogin: Callable[[], Awaitable[None]] | None = None, task_missing_grace: float = 30.0):
        self.client = client
        self.relogin = relogin  # for a session that expired: the library renews it for reads only
        self.poll_interval = poll_interval
        self.task_deadline = task_deadline
        self.task_missing_grace = task_missing_grace

    async def get(self, path: str) -> Resource:
        return self._resource(path, await self._read(path, (200,)))

    async def get_task(self, path: str, *, created: float) -> tuple[int, Resource]:
        """GET a task or job monitor: 202 (still running) is an answer too, with its status.

        `created` is when the BMC gave the monitor (time.monotonic()): until `task_missing_grace` after
        it, a 404 is answered as (404, an empty resource): the task is not there yet, read it again.
        """
        response = await self._read(path, (200, 202, 404))
        if response.status == 404:
            if self._missing_yet(path, created):
                return 404, Resource(path, {}, None)
            raise self._missing_task(path, created, response)
        return response.status, self._resource(path, response)

    def _missing_yet(self, monitor: str, created: float) -> bool:
        """NOTE(dell/idrac10): a 404 from a monitor the BMC gave less than `task_missing_grace` ago."""
        waited = time.monotonic() - created
        if waited > self.task_missing_grace:
            return False
        log.info("GET %s: 404 %.1f s after the BMC gave it as its task monitor; reading it again", monitor, waited)
        return True

    def _missing_task(self, monitor: str, created: float, response: AsyncRestResponse) -> BmcRequestError:
        ids, text = _messages(response)
        answer = " ".join(part for part in (", ".join(ids), text) if part)
        return BmcRequestError(
            FailureClass.SERVER,
            f"GET {monitor}: the BMC still answers 404 for its task monitor {time.monotonic() - created:.1f} s "
            f"after it gave it" + (f" ({answer})" if answer else ""),
            status=404, message_ids=ids, detail=text,
            hint="the BMC started a task it does not show: check its task or job queue (on an iDRAC, its Job "
                 "Queue), reset the BMC (not the server) if this persists, and retry")

    async def _read(self, path: str, accepted: tuple[int, ...]) -> AsyncRestResponse:
        try:
            response = await self.client.get(path)
        except RedfishError as err:
            raise library_error("GET", path, err) from None
        if response.status not in accepted:
            raise response_error("GET", path, response)
        return response

    def resource_of(self, path: str, response: AsyncRestResponse) -> Resource:
        """A 200 answer as a Resource (a PROTOCOL failure if it is not a JSON object)."""
        return self._resource(path, response)

    def _resource(self, path: str, response: AsyncRestResponse) -> Resource:
        try:
            data = response.dict
        except RedfishProtocolError as err:
            raise BmcRequestError(FailureClass.PROTOCOL, f"GET {path}: {err}") from None
        if not isinstance(data, dict):
            raise BmcRequestError(FailureClass.PROTOCOL, f"GET {path}: not a JSON object")
        etag = response.getheader("ETag") or data.get("@odata.etag") or None
        return Resource(path, data, etag, response.getheader("Allow") or "")

    async def _send(self, method: str, path: str, body: Any, headers: dict[str, str]) -> AsyncRestResponse:
        try:
            verb = {"POST": self.client.post, "PATCH": self.client.patch, "PUT": self.client.put}[method]
            return await verb(path, body=body, headers=headers)
        except RedfishError as err:
            failure = library_error(method, path, err)
            if _answer_lost(err):
                failure.outcome = WriteOutcome.UNKNOWN
                failure.hint = failure.hint or ("the BMC may have acted: its answer was lost; check the node "
                                                "before trying again")
            raise failure from None

    async def write(self, method: str, path: str, body: Any = None, *, etag: str | None = None) -> None:
        """Send one write; on 412 fall back weak → strong → no If-Match; follow a 202 task to its end."""
        response = await self._write_once(method, path, body, etag)
        if response.status == 202 and response.getheader("Location"):
            await self._follow_task(method, path, response)
            return
        if not 200 <= response.status < 300:
            raise response_error(method, path, response)

    async def submit(self, method: str, path: str, body: Any = None) -> str:
        """Send one write the BMC answers with a job (202 + Location); returns the job's monitor path."""
        response = await self._write_once(method, path, body, None)
        if not 200 <= response.status < 300:
            raise response_error(method, path, response)
        location = response.getheader("Location")
        if response.status != 202 or not location:
            raise BmcRequestError(FailureClass.PROTOCOL, f"{method} {path}: HTTP {response.status} without a job "
                                  "to follow (expected 202 and a Location)")
        return str(location)

    async def _write_once(self, method: str, path: str, body: Any, etag: str | None) -> AsyncRestResponse:
        for if_match in _etag_variants(etag):
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if if_match:
                headers["If-Match"] = if_match
            response = await self._send(method, path, body, headers)
            if response.status == 401 and self.relogin is not None:
                # A 401 means the BMC did not act: log in again and send the write once more.
                log.info("%s %s: session expired; logging in again", method, path)
                await self.relogin()
                response = await self._send(method, path, body, headers)
            if response.status == 412 and if_match:
                log.info("%s %s: 412 with If-Match %s; trying the next form", method, path, if_match)
                continue
            break
        return response

    async def _follow_task(self, method: str, path: str, accepted: AsyncRestResponse) -> None:
        monitor = str(accepted.getheader("Location"))
        try:
            response = await self._poll_to_end(method, path, monitor, accepted)
        except BmcRequestError as err:
            err.outcome = WriteOutcome.ACCEPTED  # the BMC took the write: sending it again starts a second task
            raise
        if not 200 <= response.status < 300:
            raise response_error(method, path, response)
        try:
            task = response.dict
        except RedfishProtocolError:
            return
        state = task.get("TaskState", "") if isinstance(task, dict) else ""
        if state in _FAILED_TASK_STATES:
            ids, text = _messages(response)
            raise BmcRequestError(FailureClass.REJECTED, f"{method} {path}: task {monitor} ended {state}: "
                                  f"{', '.join(ids)} {text}".strip(), message_ids=ids)

    async def _poll_to_end(self, method: str, path: str, monitor: str,
                           accepted: AsyncRestResponse) -> AsyncRestResponse:
        """Read the task monitor until the task is no longer running (202), or the task deadline passes."""
        created = time.monotonic()
        deadline = created + self.task_deadline
        response = accepted
        while response.status == 202 or (response.status == 404 and self._missing_yet(monitor, created)):
            if time.monotonic() > deadline:
                raise BmcRequestError(FailureClass.TIMEOUT, f"{method} {path}: task {monitor} still running after "
                                      f"{self.task_deadline:g} s; pvcctl does not start it again",
                                      hint="the BMC's task is still running: check its task queue, then retry")
            await asyncio.sleep(min(_retry_after(response) or self.poll_interval, 10.0))
            response = await self._read_monitor(monitor, response)
        if response.status == 404:
            raise self._missing_task(monitor, created, response)
        return response

    async def _read_monitor(self, monitor: str, last: AsyncRestResponse) -> AsyncRestResponse:
        """One read of a task monitor; a transient failure (busy, reset, timeout) keeps the last answer,
        so that the caller reads the monitor again after its wait (the task runs on regardless)."""
        try:
            response = await self.client.get(monitor)
        except RedfishError as err:
            failure = library_error("GET", monitor, err)
            if not failure.failure.transient:
                raise failure from None
            log.info("GET %s: %s; reading the task monitor again", monitor, failure)
            return last
        if response.status == 503:  # busy, not the task's result (that would be its own status)
            log.info("GET %s: HTTP 503; reading the task monitor again", monitor)
            return last
        return response
def _answer_lost(err: RedfishError) -> bool:
    """A timeout or a cut connection after the request may have reached the BMC; a connection never
    made (refused, unreachable, connect timeout) means the BMC never saw it."""
    if not isinstance(err, RedfishConnectionError) or isinstance(err, RedfishHTTPError):
        return False
    cause = err.__cause__
    return not isinstance(cause, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError | ssl.SSLError)


def _etag_variants(etag: str | None) -> list[str | None]:
    # Empty ETags earn 412s on some BMCs: ignore them (sushy connector._etag_handler).
    if not etag or etag in ('""', 'W/""'):
        return [None]
    if etag.startswith("W/"):
        return [etag, etag[2:], None]
    return [etag, None]
