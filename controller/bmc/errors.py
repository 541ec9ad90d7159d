"""BMC errors: what failed, where, the first and the last answer, and what the operator can do.

    OperationError
    └── BmcError            a BMC step failed (after retries where the failure class allows them)
    UserError
    └── BmcTargetError      the BMC target given on the command line or in a config is unusable

`BmcRequestError` is internal: one refused or failed request, classified so that the retry
helper knows whether trying again can help, and for a write what it left behind (`WriteOutcome`).
It never leaves controller/bmc.
"""

from __future__ import annotations

import enum

from core.errors import OperationError, UserError


class FailureClass(enum.StrEnum):
    """Why a request failed; the first six are transient and worth trying again."""

    BUSY = "busy"  # 503: BMC busy or session limit reached
    CONFLICT = "conflict"  # 409: e.g. power-on refused just after a power-off
    DURING_POST = "during-post"  # the system is in POST and refuses changes for now
    CONNECTION = "connection"  # refused or reset connection
    TIMEOUT = "timeout"
    SERVER = "server"  # other 5xx: e.g. an eject still in progress
    AUTH = "auth"
    LICENSE = "license"
    UNSUPPORTED = "unsupported"
    REJECTED = "rejected"  # 4xx the BMC will answer the same way next time
    TLS = "tls"
    PROTOCOL = "protocol"  # the BMC said something pvcctl cannot read

    @property
    def transient(self) -> bool:
        return self in _TRANSIENT


_TRANSIENT = frozenset(
    {
        FailureClass.BUSY,
        FailureClass.CONFLICT,
        FailureClass.DURING_POST,
        FailureClass.CONNECTION,
        FailureClass.TIMEOUT,
        FailureClass.SERVER,
    }
)

class WriteOutcome(enum.StrEnum):
    """What a failed request left behind on the BMC, as far as the BMC shows."""

    NOT_ACTED = "not-acted"  # a read, a refusal, or a connection never made: sending it again is safe
    UNKNOWN = "unknown"  # a write whose answer was lost (timeout, reset): the BMC may have acted
    ACCEPTED = "accepted"  # the BMC took the write (202) and its task had not ended: poll it, never resend


HINTS: dict[FailureClass, str] = {
    FailureClass.BUSY: "the BMC stayed busy: close other sessions to it (web UI, other tools) and retry",
    FailureClass.CONFLICT: "the BMC kept refusing: wait a minute after a power change and retry",
    FailureClass.DURING_POST: "the server stayed in POST: check its console, then retry",
    FailureClass.CONNECTION: "check that the BMC address is reachable from this machine",
    FailureClass.TIMEOUT: "the BMC did not answer in time: check it is reachable and not overloaded",
    FailureClass.SERVER: "the BMC kept failing: reset the BMC (not the server) and retry",
    FailureClass.AUTH: "check the BMC user name and password",
    FailureClass.LICENSE: "this BMC needs a licence for the feature: activate it and retry",
    FailureClass.UNSUPPORTED: "this BMC does not offer the feature over Redfish",
    FailureClass.REJECTED: "the BMC rejected the request: check its firmware and settings",
    FailureClass.TLS: "give the BMC's CA bundle (--ca-bundle) or certificate fingerprint (--fingerprint)",
    FailureClass.PROTOCOL: "the BMC answered something pvcctl cannot read: check its firmware",
}


class BmcRequestError(Exception):
    """One failed request: `failure` says whether trying again may help."""

    def __init__(
        self,
        failure: FailureClass,
        what: str,
        *,
        status: int = 0,
        message_ids: tuple[str, ...] = (),
        retry_after: float | None = None,
        hint: str = "",
        detail: str = "",
        outcome: WriteOutcome = WriteOutcome.NOT_ACTED,
    ):
        self.failure = failure
        self.outcome = outcome
        self.hint = hint
        self.detail = detail
        self.status = status
        self.message_ids = message_ids
        self.retry_after = retry_after
        super().__init__(what)

    def has_message(self, *fragments: str) -> bool:
        """True if a Redfish MessageId or the BMC's message text mentions one of `fragments`."""
        text = " ".join((*self.message_ids, self.detail)).lower()
        return any(f.lower() in text for f in fragments)


class BmcError(OperationError):
    """A BMC step that failed for good. Carries node, BMC, step, first and last error, hint."""

    def __init__(
        self,
        message: str,
        *,
        node: str,
        bmc: str,
        step: str,
        first_error: str = "",
        last_error: str = "",
        attempts: int = 1,
        failure: FailureClass | None = None,
        hint: str = "",
    ):
        self.bmc = bmc
        self.step = step
        self.first_error = first_error
        self.last_error = last_error
        self.attempts = attempts
        self.failure = failure
        text = f"BMC {bmc}: {step}: {message}"
        if first_error and first_error != last_error:
            text += f"; first error: {first_error}; last error: {last_error}"
        elif last_error:
            text += f": {last_error}"
        super().__init__(text, node=node, phase="bmc", hint=hint)


class BmcTargetError(UserError):
    """A BMC target that cannot be used as given (URL, credentials source, TLS options)."""
