"""Boot source override: one-time to the virtual CD in UEFI mode, back to disk or none; read back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from controller.bmc.base import BootStatus, BootTarget
from controller.bmc.channel import RedfishChannel, Resource
from controller.bmc.errors import BmcRequestError, FailureClass
from controller.bmc.quirks import VendorProfile

_OURS = {"cd": BootTarget.CD, "usbcd": BootTarget.CD, "dvd": BootTarget.CD, "hdd": BootTarget.DISK,
         "none": BootTarget.NONE}
_TARGET_ALLOWED = "BootSourceOverrideTarget@Redfish.AllowableValues"
_ENABLED_ALLOWED = "BootSourceOverrideEnabled@Redfish.AllowableValues"


def boot_status_of(system: Resource) -> BootStatus:
    boot = system.data.get("Boot") or {}
    name = str(boot.get("BootSourceOverrideTarget") or "None")
    return BootStatus(
        target=_OURS.get(name.lower(), BootTarget.OTHER),
        target_name=name,
        enabled=str(boot.get("BootSourceOverrideEnabled") or ""),
        mode=str(boot.get("BootSourceOverrideMode") or ""),
        allowed=tuple(str(v) for v in boot.get(_TARGET_ALLOWED) or ()),
    )


def target_name_for(target: BootTarget, status: BootStatus, profile: VendorProfile) -> str:
    """The vendor's word for `target`, checked against what the BMC says it allows."""
    wanted = {BootTarget.CD: profile.cd_boot_target, BootTarget.DISK: "Hdd", BootTarget.NONE: "None"}[target]
    if not status.allowed or wanted in status.allowed or target is BootTarget.NONE:
        return wanted
    # Capability probing: a BMC that lists UsbCd and not Cd boots its virtual CD as UsbCd (Supermicro).
    for alternative in {BootTarget.CD: ("UsbCd", "Cd", "Dvd"), BootTarget.DISK: ("Hdd",)}.get(target, ()):
        if alternative in status.allowed:
            return alternative
    raise BmcRequestError(FailureClass.UNSUPPORTED,
                          f"boot target {wanted} is not among the allowed {', '.join(status.allowed)}")


def boot_payload(system: Resource, profile: VendorProfile, name: str, enabled: str) -> dict[str, Any]:
    boot = system.data.get("Boot") or {}
    allowed_enabled = boot.get(_ENABLED_ALLOWED) or ()
    if allowed_enabled and enabled not in allowed_enabled and enabled == "Continuous":
        # Continuous is not offered everywhere: Once, re-applied before each boot (ironic _set_boot_device).
        enabled = "Once"
    payload: dict[str, Any] = {"BootSourceOverrideTarget": name, "BootSourceOverrideEnabled": enabled}
    mode = boot.get("BootSourceOverrideMode")
    if profile.full_boot_object or (mode is not None and mode != "UEFI"):
        payload["BootSourceOverrideMode"] = "UEFI"
    return payload


async def set_boot(channel: RedfishChannel, system_path: str, profile: VendorProfile, target: BootTarget,
                   enabled: str, *, deadline: float, poll_interval: float) -> BootStatus:
    """PATCH the override unless it is already so, then read it back until it shows."""
    system = await channel.get(system_path)
    status = boot_status_of(system)
    name = target_name_for(target, status, profile)
    payload = boot_payload(system, profile, name, enabled)
    if not _shows(status, payload):
        try:
            await channel.write("PATCH", system_path, {"Boot": payload}, etag=system.etag)
        except BmcRequestError as err:
            # Capability probing: a BMC that wants the full boot object says which property is missing.
            full = err.failure is FailureClass.REJECTED and err.has_message("PropertyMissing", "full Boot")
            if not full or "BootSourceOverrideMode" in payload:
                raise
            payload["BootSourceOverrideMode"] = "UEFI"
            await channel.write("PATCH", system_path, {"Boot": payload}, etag=system.etag)
    until = time.monotonic() + deadline
    while True:
        status = boot_status_of(await channel.get(system_path))
        if _shows(status, payload):
            return status
        if time.monotonic() > until:
            raise BmcRequestError(FailureClass.TIMEOUT, f"boot override still reads {status.target_name}/"
                                  f"{status.enabled}, not {name}/{payload['BootSourceOverrideEnabled']}")
        await asyncio.sleep(poll_interval)


def _shows(status: BootStatus, payload: dict[str, Any]) -> bool:
    if status.target_name != payload["BootSourceOverrideTarget"]:
        return False
    if "BootSourceOverrideMode" in payload and status.mode and status.mode != "UEFI":
        return False
    wanted = payload["BootSourceOverrideEnabled"]
    # Some services (sushy-tools) store Once but report Continuous: still a boot to the target.
    return status.enabled == wanted or (wanted == "Once" and status.enabled == "Continuous")
