"""SimulatedMachine: what it boots, when it calls its hooks, and its power transitions."""

from __future__ import annotations

import asyncio

from lab.machine import BootEvent, BootOverride, BootSource, Machine, SimulatedMachine


def _machine(**kwargs: object) -> tuple[SimulatedMachine, list[tuple[str, object]]]:
    calls: list[tuple[str, object]] = []

    async def on_boot(machine: Machine, event: BootEvent) -> None:
        calls.append(("boot", event))

    async def on_power_off(machine: Machine) -> None:
        calls.append(("off", machine.name))

    machine = SimulatedMachine("m1", "SER1", ("52:54:00:00:00:01",), on_boot=on_boot, on_power_off=on_power_off,
                               **kwargs)  # type: ignore[arg-type]
    return machine, calls


async def test_boots_the_cd_once_then_the_disk() -> None:
    machine, calls = _machine()
    machine.insert_cd("http://127.0.0.1/pvc.iso")
    machine.boot = BootOverride("Cd", "Once", "UEFI")
    await machine.power_on()
    assert calls == [("boot", BootEvent(BootSource.CD, "http://127.0.0.1/pvc.iso"))]
    assert machine.boot.enabled == "Disabled"  # used up
    await machine.restart()
    assert calls[1:] == [("off", "m1"), ("boot", BootEvent(BootSource.DISK))]


async def test_continuous_override_keeps_booting_the_cd_until_ejected() -> None:
    machine, calls = _machine()
    machine.insert_cd("http://127.0.0.1/a.iso")
    machine.boot = BootOverride("UsbCd", "Continuous", "UEFI")
    await machine.power_on()
    await machine.restart()
    machine.eject_cd()
    await machine.restart()
    boots = [c[1] for c in calls if c[0] == "boot"]
    assert boots == [BootEvent(BootSource.CD, "http://127.0.0.1/a.iso")] * 2 + [BootEvent(BootSource.DISK)]


async def test_cd_override_without_media_boots_the_disk() -> None:
    machine, calls = _machine()
    machine.boot = BootOverride("Cd", "Once", "UEFI")
    await machine.power_on()
    assert calls == [("boot", BootEvent(BootSource.DISK))]


async def test_power_delay_shows_transitions() -> None:
    machine, calls = _machine(power_delay=0.05)
    await machine.power_on()
    assert machine.power_state == "PoweringOn" and calls == []
    await asyncio.sleep(0.1)
    assert machine.power_state == "On" and len(calls) == 1
    await machine.power_off()
    assert machine.power_state == "PoweringOff"
    await asyncio.sleep(0.1)
    assert machine.power_state == "Off" and calls[-1] == ("off", "m1")
