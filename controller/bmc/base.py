"""The BMC interface the rest of pvcctl uses: small, async, typed.

A deploy step talks to a node's BMC only through `Bmc`; `RedfishBmc` (controller/bmc/redfish.py)
is the one implementation today. Every method reads back what it changed before it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol


class PowerState(enum.StrEnum):
    ON = "On"
    OFF = "Off"
    POWERING_ON = "PoweringOn"
    POWERING_OFF = "PoweringOff"
    UNKNOWN = "Unknown"


class BootTarget(enum.StrEnum):
    """Where the next boot goes, in our words; the vendor's word is in `BootStatus.target_name`."""

    CD = "cd"
    DISK = "disk"
    NONE = "none"
    OTHER = "other"


@dataclass(frozen=True)
class SecureBootStatus:
    """The system's Redfish SecureBoot resource as read (DMTF SecureBoot.v1_1).

    `enable` is SecureBootEnable: what the next boot uses. `current_boot` is SecureBootCurrentBoot
    (Enabled or Disabled): what the boot running now enforces; it follows `enable` only after a reset.
    A BMC without the resource, or one that refuses it (NOTE(supermicro): 403 OemLicenseNotPassed
    without a licence, ironic management.py get_secure_boot_state), is `known` False, with `reason`.
    """

    known: bool = False
    enable: bool | None = None
    current_boot: str = ""
    mode: str = ""  # SecureBootMode: SetupMode, UserMode, AuditMode, DeployedMode
    reason: str = ""  # why it is unknown

    @property
    def state(self) -> str:
        """on, off or unknown: the boot running now where the BMC says, else what the next boot uses."""
        if not self.known:
            return "unknown"
        if self.current_boot in ("Enabled", "Disabled"):
            return "on" if self.current_boot == "Enabled" else "off"
        return "unknown" if self.enable is None else ("on" if self.enable else "off")

    @property
    def summary(self) -> str:
        """One cell: `on (UserMode)`, `off, on at next boot`, `unknown (why)`."""
        if not self.known:
            return f"unknown ({self.reason})" if self.reason else "unknown"
        text = self.state
        if self.enable is not None and self.state != "unknown" and self.enable != (self.state == "on"):
            text += f", {'on' if self.enable else 'off'} at next boot"
        return f"{text} ({self.mode})" if self.mode else text

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "enable": self.enable, "current_boot": self.current_boot, "mode": self.mode,
                "reason": self.reason, "summary": self.summary}


@dataclass(frozen=True)
class Identity:
    """What preflight learns about a node from its BMC."""

    manufacturer: str
    model: str
    firmware: str
    serial: str
    sku: str
    service_tag: str
    macs: tuple[str, ...]
    power: PowerState
    boot_mode: str
    profile: str
    # where the BMC offers them (Redfish Status.Health, MemorySummary, ProcessorSummary); empty/None if not
    health: str = ""
    memory_gib: float | None = None
    processors: int | None = None
    processor_model: str = ""
    secure_boot: SecureBootStatus = field(default_factory=SecureBootStatus)

    def as_dict(self) -> dict[str, object]:
        return {
            "manufacturer": self.manufacturer,
            "model": self.model,
            "firmware": self.firmware,
            "serial": self.serial,
            "sku": self.sku,
            "service_tag": self.service_tag,
            "macs": list(self.macs),
            "power": self.power.value,
            "boot_mode": self.boot_mode,
            "profile": self.profile,
            "health": self.health,
            "memory_gib": self.memory_gib,
            "processors": self.processors,
            "processor_model": self.processor_model,
            "secure_boot": self.secure_boot.as_dict(),
        }


@dataclass(frozen=True)
class MediaStatus:
    """The virtual CD slot pvcctl uses, as the BMC reports it."""

    slot: str
    inserted: bool
    image: str

    def as_dict(self) -> dict[str, object]:
        return {"slot": self.slot, "inserted": self.inserted, "image": self.image}


@dataclass(frozen=True)
class BootStatus:
    target: BootTarget
    target_name: str
    enabled: str
    mode: str
    allowed: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target.value,
            "target_name": self.target_name,
            "enabled": self.enabled,
            "mode": self.mode,
        }


class Bmc(Protocol):
    """One node's BMC. Use it as `async with`: it logs in on enter and always logs out on exit."""

    node: str

    async def __aenter__(self) -> Bmc: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def identity(self) -> Identity: ...

    async def power_state(self) -> PowerState: ...

    async def power_on(self) -> None: ...

    async def force_off(self) -> None: ...

    async def graceful_shutdown(self) -> None: ...

    async def force_restart(self, reason: str = "") -> None: ...

    async def media_status(self) -> MediaStatus: ...

    async def eject_all_media(self) -> None: ...

    async def insert_media(self, url: str) -> MediaStatus: ...

    async def boot_status(self) -> BootStatus: ...

    async def set_boot_once_cd(self) -> BootStatus: ...

    async def set_boot_disk(self) -> BootStatus: ...

    async def clear_boot_override(self) -> BootStatus: ...

    async def secure_boot_status(self) -> SecureBootStatus: ...

    async def set_secure_boot(self, enable: bool) -> SecureBootStatus: ...

    async def wait_secure_boot(self, enable: bool) -> SecureBootStatus: ...
