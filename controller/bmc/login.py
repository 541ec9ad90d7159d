"""Logging in to a BMC once per attempt: a Redfish session where the service offers sessions, else Basic.

A refused session login is final for the attempt. Falling back to Basic after a 401 would be a
second failed login each time, and BMCs lock the account after a few (iDRAC, iLO): twice as fast.
Basic is used only when the service root lists no SessionService, when the root itself wants
authentication (sushy-emulator behind an htpasswd), or when the sessions collection answers
404/405/501. The error names the login that was refused.
"""

from __future__ import annotations

import logging

from redfish.aio import (
    AsyncRedfishClient,
    RedfishAuthenticationError,
    RedfishError,
    RedfishPasswordChangeRequiredError,
)

from controller.bmc.channel import RedfishChannel, library_error, response_error
from controller.bmc.errors import BmcRequestError, FailureClass

log = logging.getLogger(__name__)

ROOT = "/redfish/v1/"
SESSIONS = "/redfish/v1/SessionService/Sessions"
_NO_SESSIONS = (404, 405, 501)  # the sessions collection's "no sessions here", not "wrong credentials"


async def log_in(client: AsyncRedfishClient, channel: RedfishChannel, url: str) -> str:
    """Log `client` in; returns "session" or "basic". Failures are classified BmcRequestErrors."""
    if not await offers_sessions(client, channel):
        return await _basic(client, channel)
    try:
        await client.login(auth="session")
        return "session"
    except RedfishPasswordChangeRequiredError:
        await _close(client, url)  # the library made a session before it saw the demand
        raise BmcRequestError(FailureClass.AUTH, "the BMC demands a password change first",
                              hint="log in to the BMC once, change the password, update the inventory") from None
    except RedfishAuthenticationError:
        raise BmcRequestError(FailureClass.AUTH, f"session login (POST {SESSIONS}): the BMC refused the user "
                              "name or password", status=401) from None
    except RedfishError as err:
        failure = library_error("POST", SESSIONS, err)
        if failure.status not in _NO_SESSIONS:
            raise failure from None
        log.info("%s: no Redfish sessions (%s); using Basic authentication", url, failure)
    return await _basic(client, channel)


async def offers_sessions(client: AsyncRedfishClient, channel: RedfishChannel) -> bool:
    """Whether the (public) service root lists a SessionService or Links.Sessions."""
    try:
        response = await client.get(ROOT)
    except RedfishError as err:
        raise library_error("GET", ROOT, err) from None
    if response.status in (401, 403):
        return False  # the root wants authentication itself: Basic, one login
    if response.status != 200:
        raise response_error("GET", ROOT, response)
    root = channel.resource_of(ROOT, response).data
    links = root.get("Links")
    return bool(root.get("SessionService") or (isinstance(links, dict) and links.get("Sessions")))


async def _basic(client: AsyncRedfishClient, channel: RedfishChannel) -> str:
    await client.login(auth="basic")
    try:
        await channel.get("/redfish/v1/Systems")  # Basic is not checked until a request needs it
    except BmcRequestError as err:
        if err.failure is FailureClass.AUTH:
            raise BmcRequestError(FailureClass.AUTH, "Basic authentication (GET /redfish/v1/Systems; the BMC "
                                  "offers no sessions): the BMC refused the user name or password",
                                  status=err.status) from None
        raise
    return "basic"


async def _close(client: AsyncRedfishClient, url: str) -> None:
    try:
        await client.logout()
    except RedfishError as err:
        log.warning("%s: logout failed (%s); the BMC will expire the session", url,
                    library_error("DELETE", "session", err))
