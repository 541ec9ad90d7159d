"""What a lab BMC answers when it will not do something, and the misbehaviour a test injects into it.

`Refusal` is the error a real BMC of a personality answers (status and Redfish MessageId); lab/bmc.py
and lab/dell_jobs.py raise it, lab/bmc_http.py turns it into a Redfish error body. `Faults` is
mutable so a test can change a running BMC's misbehaviour.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


class Refusal(Exception):
    """A refused request. `with_code` False leaves out error.code, as NVIDIA DGX BMCs do."""

    def __init__(self, status: int, message_id: str, message: str, headers: dict[str, str] | None = None,
                 *, with_code: bool = True):
        self.status = status
        self.message_id = message_id
        self.message = message
        self.headers = headers or {}
        self.with_code = with_code
        super().__init__(f"{status} {message_id}: {message}")


@dataclass
class Faults:
    """Misbehaviour to inject; mutable so a test can change it while the BMC runs."""

    latency: float = 0.0  # seconds added to every request
    error_rate: float = 0.0  # share of requests answered 503
    hang_rate: float = 0.0  # share of requests never answered
    reset_rate: float = 0.0  # share of requests whose connection is cut
    busy_after_power_off: float = 0.0  # seconds of 503 after a power-off
    max_sessions: int | None = None  # overrides the personality's session limit
    license_missing: bool = False  # virtual media answers 403 OemLicenseNotPassed
    lost_reply_rate: float = 0.0  # share of writes that act, then lose their answer (connection cut)
    reject_if_match: bool = False  # every If-Match other than * gets 412 (stale or foreign ETags)
    sessions_disabled: bool = False  # no SessionService: Basic authentication only
    config_jobs_fail: bool = False  # Dell: every configuration job ends Failed (Lifecycle Controller trouble)
    media_back_after_restart: bool = False  # a restart mounts the last ejected image again (firmware that restores it)
    # NOTE(lenovo/xcc): a Secure Boot PATCH answered 200 (PhysicalPresenceError) that changes nothing
    secure_boot_ignores_patch: bool = False


async def never() -> None:
    """A request that hangs: never answered."""
    await asyncio.Event().wait()
