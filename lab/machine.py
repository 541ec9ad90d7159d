"""The machine behind an emulated BMC: power, boot override, virtual CD, and what it boots.

`Machine` is the small protocol the emulator drives; `SimulatedMachine` implements it in memory,
`lab.qemu.QemuMachine` with a QEMU VM. When a machine powers on (or restarts) it decides
what it boots: the virtual CD when an image is inserted and the override (Once or Continuous) points
at the CD, else its disk; then it calls `on_boot(machine, event)`. An override to the machine's own
optical drive (`PHYSICAL_OPTICAL`, what the standard `Cd` means to an old iDRAC) finds it empty and
boots the disk. `on_power_off(machine)` follows every power-off. A test or the simulated lab plugs a
"live node" in through these hooks.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

CD_TARGETS = frozenset({"Cd", "UsbCd", "Dvd"})  # the virtual CD
PHYSICAL_OPTICAL = "PhysicalOptical"  # the machine's own optical drive: empty, so the disk boots


class BootSource(enum.StrEnum):
    CD = "cd"
    DISK = "disk"


@dataclass(frozen=True)
class BootEvent:
    """What a machine booted: `cd` with the image URL, or `disk`."""

    source: BootSource
    image_url: str = ""


@dataclass
class BootOverride:
    target: str = "None"
    enabled: str = "Disabled"
    mode: str = "UEFI"


OnBoot = Callable[["Machine", BootEvent], Awaitable[None]]
OnPowerOff = Callable[["Machine"], Awaitable[None]]


class Machine(Protocol):
    name: str
    serial: str
    macs: tuple[str, ...]
    boot: BootOverride
    cd_image: str | None
    boots: list[BootEvent]
    secure_boot: bool  # whether this boot enforces UEFI Secure Boot: the BMC sets it at each reset

    @property
    def power_state(self) -> str: ...

    async def power_on(self) -> None: ...

    async def power_off(self) -> None: ...

    async def graceful_shutdown(self) -> None: ...

    async def restart(self) -> None: ...

    def insert_cd(self, url: str) -> None: ...

    def eject_cd(self) -> None: ...


@dataclass(eq=False, kw_only=True)
class Firmware:
    """What every lab machine does alike before it boots: a virtual CD slot and a boot override,
    decided at each power-on (see the module docstring)."""

    boot: BootOverride = field(default_factory=BootOverride)
    cd_image: str | None = None
    boots: list[BootEvent] = field(default_factory=list)
    secure_boot: bool = False  # set by the BMC at each reset (lab/secure_boot.py), read when it boots

    def insert_cd(self, url: str) -> None:
        self.cd_image = url

    def eject_cd(self) -> None:
        self.cd_image = None

    def _boot_source(self) -> BootEvent:
        wants_cd = self.boot.target in CD_TARGETS and self.boot.enabled in ("Once", "Continuous")
        if self.boot.enabled == "Once":
            # A one-time override is used up by this boot, whatever it boots.
            self.boot = BootOverride(target="None", enabled="Disabled", mode=self.boot.mode)
        if wants_cd and self.cd_image:
            return BootEvent(BootSource.CD, self.cd_image)
        return BootEvent(BootSource.DISK)


@dataclass(eq=False)
class SimulatedMachine(Firmware):
    """A machine in memory. `power_delay` > 0 shows PoweringOn/PoweringOff for that long."""

    name: str
    serial: str
    macs: tuple[str, ...]
    power_delay: float = 0.0
    # what the BMC reports of the system (Status.Health, MemorySummary, ProcessorSummary)
    health: str = "OK"
    memory_gib: float = 64
    processors: int = 2
    processor_model: str = "PVCLAB Virtual CPU @ 2.40GHz"
    on_boot: OnBoot | None = None
    on_power_off: OnPowerOff | None = None
    _power: str = "Off"
    _pending: asyncio.Task[None] | None = field(default=None, repr=False)

    @property
    def power_state(self) -> str:
        return self._power

    async def _settle(self, transitional: str, final: str) -> None:
        if self.power_delay > 0:
            self._power = transitional
            await asyncio.sleep(self.power_delay)
        self._power = final
        if final == "On":
            event = self._boot_source()
            self.boots.append(event)
            log.info("%s boots from %s %s", self.name, event.source, event.image_url)
            if self.on_boot is not None:
                await self.on_boot(self, event)
        elif self.on_power_off is not None:
            await self.on_power_off(self)

    async def _change(self, transitional: str, final: str) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        if self.power_delay > 0:
            self._power = transitional  # visible at once, as a real BMC reports PoweringOn
            self._pending = asyncio.create_task(self._settle(transitional, final))
        else:
            await self._settle(transitional, final)

    async def power_on(self) -> None:
        if self._power != "On":
            await self._change("PoweringOn", "On")

    async def power_off(self) -> None:
        if self._power != "Off":
            await self._change("PoweringOff", "Off")

    async def graceful_shutdown(self) -> None:
        await self.power_off()

    async def restart(self) -> None:
        self._power = "Off"
        if self.on_power_off is not None:
            await self.on_power_off(self)
        await self._change("PoweringOn", "On")
