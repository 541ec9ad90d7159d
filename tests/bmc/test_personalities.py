"""Every Bmc operation against every lab personality, each read back from the emulator's own state."""

from __future__ import annotations

import pytest

from controller.bmc.base import BootTarget, PowerState
from lab.machine import BootEvent, BootSource
from lab.personalities import PERSONALITIES
from tests.bmc.conftest import LabFactory, connect

EXPECTED_PROFILE = {
    "standard": "standard", "idrac8": "dell-idrac8", "idrac9": "dell-idrac9", "idrac9-old": "dell-idrac9-old",
    "idrac10": "dell-idrac10", "ilo": "hpe-ilo", "supermicro": "supermicro", "xcc": "lenovo-xcc",
    "ami": "ami-megarac", "openbmc": "openbmc", "dgx": "nvidia-dgx",
}


@pytest.mark.parametrize("personality", sorted(PERSONALITIES))
async def test_full_sequence(personality: str, lab_factory: LabFactory, http, iso_server) -> None:
    base = iso_server.https if personality == "openbmc" else iso_server.http
    image = f"{base}/pvc.iso"
    async with lab_factory([personality]) as lab:
        emulated = lab.bmcs[0].bmc
        machine = emulated.machine
        async with connect(lab, http) as bmc:
            ident = await bmc.identity()
            assert ident.profile == EXPECTED_PROFILE[personality]
            assert ident.serial == machine.serial == "PVC000001"
            assert ident.macs == machine.macs
            assert ident.manufacturer == emulated.personality.manufacturer
            assert ident.firmware == emulated.personality.firmware
            assert ident.power is PowerState.OFF

            await bmc.eject_all_media()
            status = await bmc.insert_media(image)
            assert status.inserted and status.image == image
            assert machine.cd_image == image
            assert await bmc.insert_media(image) == status  # already in: nothing is sent again
            assert sum(a.startswith("insert") for a in emulated.actions) == 1

            boot = await bmc.set_boot_once_cd()
            assert boot.target is BootTarget.CD
            assert machine.boot.enabled == "Once" and machine.boot.target in ("Cd", "UsbCd")

            await bmc.power_on()
            assert machine.power_state == "On"
            assert machine.boots == [BootEvent(BootSource.CD, image)]
            await bmc.force_restart()
            assert machine.boots[-1] == BootEvent(BootSource.DISK)  # Once was used up by the first boot

            await bmc.force_off()
            assert machine.power_state == "Off"
            await bmc.eject_all_media()
            assert not (await bmc.media_status()).inserted
            assert machine.cd_image is None

            disk = await bmc.set_boot_disk()
            assert disk.target is BootTarget.DISK and machine.boot.target == "Hdd"
            cleared = await bmc.clear_boot_override()
            assert cleared.target is BootTarget.NONE and machine.boot.enabled == "Disabled"

            await bmc.power_on()
            await bmc.graceful_shutdown()
            assert await bmc.power_state() is PowerState.OFF
        assert emulated.sessions == {}
