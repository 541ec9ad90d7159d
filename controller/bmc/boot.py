"""Boot source override: one-time to the virtual CD in UEFI mode, back to disk or none; read back.

Boot is PATCHed on the System, or on the System's `@Redfish.Settings` object when that object carries
the Boot properties (NOTE(dell/idrac10), sushy bug 2121895): then with the object's own ETag, and its
allowed values count. Old iDRACs boot the virtual CD only by Dell's OEM import (controller/bmc/dell.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from controller.bmc.base import BootStatus, BootTarget
from controller.bmc.channel import RedfishChannel, Resource
from controller.bmc.errors import BmcRequestError, FailureClass
from controller.bmc.quirks import VendorProfile

log = logging.getLogger(__name__)

_OURS = {"cd": BootTarget.CD, "usbcd": BootTarget.CD, "dvd": BootTarget.CD, "hdd": BootTarget.DISK,
         "none": BootTarget.NONE}
_TARGET_ALLOWED = "BootSourceOverrideTarget@Redfish.AllowableValues"
_ENABLED_ALLOWED = "BootSourceOverrideEnabled@Redfish.AllowableValues"


def settings_object(system: Resource) -> str | None:
    """The URI of the System's @Redfish.Settings object (its future state), if it has one."""
    settings = system.data.get("@Redfish.Settings")
    target = settings.get("SettingsObject") if isinstance(settings, dict) else None
    uri = target.get("@odata.id") if isinstance(target, dict) else None
    return str(uri) if uri else None


@dataclass(frozen=True)
class BootView:
    """The System and, when it carries Boot, the System's Settings object."""

    system: Resource
    settings: Resource | None = None

    @property
    def boot(self) -> dict[str, Any]:
        """Boot as the next boot will see it: the Settings object's values over the System's."""
        own = self.system.data.get("Boot") or {}
        pending = self.settings.data.get("Boot") or {} if self.settings is not None else {}
        return {**own, **pending}


async def read_boot(channel: RedfishChannel, system_path: str, profile: VendorProfile) -> BootView:
    system = await channel.get(system_path)
    uri = settings_object(system) if profile.boot_settings_object else None
    if uri is None:
        return BootView(system)
    try:
        settings = await channel.get(uri)
    except BmcRequestError as err:
        if err.failure.transient:
            raise
        log.info("%s: its @Redfish.Settings object %s cannot be read (%s); using the System", system_path, uri, err)
        return BootView(system)
    if not isinstance(settings.data.get("Boot"), dict) or not settings.data["Boot"]:
        return BootView(system)  # a Settings object without Boot: Boot is written on the System
    return BootView(system, settings)


def boot_status_of(view: BootView) -> BootStatus:
    boot = view.boot
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


def boot_payload(boot: dict[str, Any], profile: VendorProfile, name: str, enabled: str) -> dict[str, Any]:
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
    view = await read_boot(channel, system_path, profile)
    status = boot_status_of(view)
    name = target_name_for(target, status, profile)
    payload = boot_payload(view.boot, profile, name, enabled)
    if not _shows(status, payload):
        try:
            await _patch_boot(channel, view, payload)
        except BmcRequestError as err:
            # Capability probing: a BMC that wants the full boot object says which property is missing.
            full = err.failure is FailureClass.REJECTED and err.has_message("PropertyMissing", "full Boot")
            if not full or "BootSourceOverrideMode" in payload:
                raise
            payload["BootSourceOverrideMode"] = "UEFI"
            await _patch_boot(channel, view, payload)
    until = time.monotonic() + deadline
    while True:
        status = boot_status_of(await read_boot(channel, system_path, profile))
        if _shows(status, payload):
            return status
        if time.monotonic() > until:
            raise BmcRequestError(FailureClass.TIMEOUT, f"boot override still reads {status.target_name}/"
                                  f"{status.enabled}, not {name}/{payload['BootSourceOverrideEnabled']}")
        await asyncio.sleep(poll_interval)


async def _patch_boot(channel: RedfishChannel, view: BootView, payload: dict[str, Any]) -> None:
    """Each Boot property where the BMC keeps it: the Settings object (its ETag) or the System (its own)."""
    carried = view.settings.data.get("Boot") or {} if view.settings is not None else {}
    pending = {k: v for k, v in payload.items() if k in carried}
    own = {k: v for k, v in payload.items() if k not in carried}
    if pending and view.settings is not None:
        await channel.write("PATCH", view.settings.path, {"Boot": pending}, etag=view.settings.etag)
    if own:
        await channel.write("PATCH", view.system.path, {"Boot": own}, etag=view.system.etag)


def _shows(status: BootStatus, payload: dict[str, Any]) -> bool:
    if status.target_name != payload["BootSourceOverrideTarget"]:
        return False
    if "BootSourceOverrideMode" in payload and status.mode and status.mode != "UEFI":
        return False
    wanted = payload["BootSourceOverrideEnabled"]
    # Some services (sushy-tools) store Once but report Continuous: still a boot to the target.
    return status.enabled == wanted or (wanted == "Once" and status.enabled == "Continuous")
