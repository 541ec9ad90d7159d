"""UEFI Secure Boot through the system's Redfish `SecureBoot` resource: read it, set SecureBootEnable.

DMTF SecureBoot.v1_1: `SecureBootEnable` is what the next boot uses, `SecureBootCurrentBoot` what the
boot running now enforces, `SecureBootMode` whether a platform key is enrolled (SetupMode: none, so
nothing is enforced). A change takes effect only at the next reset, and vendors show it differently:

- NOTE(hpe/ilo5): PATCH SecureBootEnable on the resource; iLO answers iLO.2.x.SystemResetRequired and
  the change takes effect at the reset (proliantutils secure_boot.py: "Caller needs to reset the
  server after issuing this command"); SecureBootCurrentBoot changes only after it.
- NOTE(lenovo/xcc): 200 with RebootRequired; the answer already shows the new SecureBootEnable and
  SecureBootCurrentBoot still Disabled. Without Remote Physical Presence it answers 200 with
  PhysicalPresenceError and changes nothing (pubs.lenovo.com xcc2-restapi update_secure_boot_prop_patch).
- NOTE(dell/idrac9): the change is a BIOS configuration job applied at the reset: SecureBootEnable
  reads the old value until then (ironic redfish/management.py _wait_for_secure_boot, commit 6487b958).
- NOTE(supermicro): 403 OemLicenseNotPassed without the DCMS/OOB licence (ironic commit 62a44faf,
  story 2011154): reported as unknown, as ironic does.
- NOTE(supermicro/gb300): an OpenBMC-based SecureBoot resource without SecureBootEnable
  (dsx-ai-factory/libredfish#111): unknown too.

So a write is judged only after a reset: `set_secure_boot` PATCHes once and reads back; the caller
restarts the server, then `wait_secure_boot` reads until SecureBootEnable shows the wish.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from controller.bmc.base import Bmc, PowerState, SecureBootStatus
from controller.bmc.channel import RedfishChannel, Resource
from controller.bmc.errors import BmcRequestError, FailureClass, WriteOutcome
from core.errors import OperationError

log = logging.getLogger(__name__)

# Refusals that mean "no Secure Boot here for us": missing, forbidden (a licence gate), not offered.
_UNKNOWN_STATUSES = frozenset({403, 404, 405, 501})
_UNKNOWN_CLASSES = frozenset({FailureClass.LICENSE, FailureClass.UNSUPPORTED})


def secure_boot_path(system: dict[str, Any]) -> str | None:
    link = system.get("SecureBoot")
    target = link.get("@odata.id") if isinstance(link, dict) else None
    return str(target) if target else None


def status_of(data: dict[str, Any]) -> SecureBootStatus:
    """The resource's body as a status (lenient: a BMC may leave any property out)."""
    enable = data.get("SecureBootEnable")
    if not isinstance(enable, bool):
        return SecureBootStatus(reason="the BMC's SecureBoot resource has no SecureBootEnable")
    return SecureBootStatus(known=True, enable=enable, current_boot=str(data.get("SecureBootCurrentBoot") or ""),
                            mode=str(data.get("SecureBootMode") or ""))


async def read_secure_boot(channel: RedfishChannel, system: dict[str, Any]) -> tuple[SecureBootStatus,
                                                                                      Resource | None]:
    """The status and the resource it came from (None when unknown). Transient failures raise."""
    path = secure_boot_path(system)
    if path is None:
        return SecureBootStatus(reason="the BMC offers no SecureBoot resource"), None
    try:
        resource = await channel.get(path)
    except BmcRequestError as err:
        if err.failure.transient or not (err.status in _UNKNOWN_STATUSES or err.failure in _UNKNOWN_CLASSES):
            raise
        log.info("%s: %s; Secure Boot is reported as unknown", path, err)
        return SecureBootStatus(reason=_short(err)), None
    status = status_of(resource.data)
    return status, resource if status.known else None


def _short(err: BmcRequestError) -> str:
    ids = ", ".join(i.rsplit(".", 1)[-1] for i in err.message_ids)
    return f"HTTP {err.status} {ids}".strip() if err.status else str(err)


async def patch_secure_boot(channel: RedfishChannel, resource: Resource, enable: bool, sent: list[bool]) -> None:
    """PATCH SecureBootEnable once: `sent` remembers a write the BMC may have acted on (its answer was
    lost, or it was answered), so that a retried step never sends it a second time."""
    if sent:
        return
    try:
        await channel.write("PATCH", resource.path, {"SecureBootEnable": enable}, etag=resource.etag)
    except BmcRequestError as err:
        if err.outcome is WriteOutcome.UNKNOWN:
            log.info("PATCH %s: the answer was lost (%s); reading it back, not sending it again", resource.path, err)
            sent.append(True)
            return
        raise
    sent.append(True)


def as_read(status: SecureBootStatus) -> str:
    """The resource's own words: what a person compares with the BMC's web interface."""
    if not status.known:
        return f"no Secure Boot state ({status.reason})"
    parts = [f"SecureBootEnable {str(status.enable).lower()}"]
    parts += [f"SecureBootCurrentBoot {status.current_boot}"] if status.current_boot else []
    parts += [f"SecureBootMode {status.mode}"] if status.mode else []
    return ", ".join(parts)


def unsupported(status: SecureBootStatus) -> BmcRequestError:
    return BmcRequestError(FailureClass.UNSUPPORTED, f"Secure Boot cannot be set here: {status.reason}",
                           hint="set Secure Boot in the server's firmware setup, or leave it as it is "
                                "(secure_boot: keep)")


async def set_secure_boot(channel: RedfishChannel, system_path: str, enable: bool,
                          sent: list[bool]) -> SecureBootStatus:
    """Check, then PATCH SecureBootEnable once if it differs; the status read back after it."""
    system = (await channel.get(system_path)).data
    status, resource = await read_secure_boot(channel, system)
    if resource is None:
        raise unsupported(status)
    if status.enable == enable and not sent:
        return status
    await patch_secure_boot(channel, resource, enable, sent)
    return (await read_secure_boot(channel, system))[0]


async def wait_secure_boot(channel: RedfishChannel, system_path: str, enable: bool, *, deadline: float,
                           poll_interval: float) -> SecureBootStatus:
    """Read until SecureBootEnable shows `enable` or `deadline` seconds pass; the last status read.
    A BMC busy while its server starts (503, a cut connection) is read again, not failed."""
    until = time.monotonic() + deadline
    status = SecureBootStatus(reason="not read yet")
    while True:
        try:
            system = (await channel.get(system_path)).data
            status = (await read_secure_boot(channel, system))[0]
        except BmcRequestError as err:
            if not err.failure.transient:
                raise
            log.info("GET %s: %s; reading Secure Boot again", system_path, err)
        if (status.known and status.enable == enable) or time.monotonic() > until:
            return status
        await asyncio.sleep(poll_interval)


async def turn_secure_boot(bmc: Bmc, enable: bool) -> dict[str, Any]:
    """`pvcctl bmc secureboot on|off`: set SecureBootEnable (once), restart a server that is on so that it
    takes effect, read it back (an OperationError if it still shows the old value); a row of the table."""
    word = "on" if enable else "off"
    status = await bmc.set_secure_boot(enable)
    if status.enable == enable and status.state == word:
        return status.as_dict() | {"restarted": False}  # in effect already
    if await bmc.power_state() is not PowerState.ON:
        return status.as_dict() | {"restarted": False, "summary": f"{status.summary}; takes effect at power-on"}
    await bmc.force_restart(f"Secure Boot {word} takes effect at a restart")
    status = await bmc.wait_secure_boot(enable)
    if status.enable != enable:
        raise OperationError(f"Secure Boot {word} asked, but after the restart the BMC still reads {as_read(status)}",
                             node=bmc.node, hint="set it in the server's firmware setup or the BMC's web interface "
                                                 "(some BMCs need a licence or physical presence for it)")
    return status.as_dict() | {"restarted": True}
