"""Three quirks that decide whether a node boots the virtual CD: the lab BMC really has each (raw
requests over HTTPS), pvcctl's full media+boot+power flow ends with the emulated machine booting the
image, and the same flow with the handling switched off in the profile does not.

- iDRAC 10 (and any BMC alike): Boot is written through the System's @Redfish.Settings object
"""

from __future__ import annotations

import dataclasses
from typing import Any

import aiohttp
import pytest

from controller.bmc.base import BootTarget
from controller.bmc.errors import BmcError
from controller.bmc.redfish import RedfishBmc
from lab.machine import BootEvent, BootSource
from tests.bmc.conftest import LabFactory, connect, raw_request

CD_ONCE = (
    '<SystemConfiguration><Component FQDD="iDRAC.Embedded.1">'
    '<Attribute Name="ServerBoot.1#BootOnce">Enabled</Attribute>'
    '<Attribute Name="ServerBoot.1#FirstBootDevice">VCD-DVD</Attribute>'
    "</Component></SystemConfiguration>"
)
CD_ONCE = {"Boot": {"BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once"}}


async def body_of(response: aiohttp.ClientResponse) -> Any:
    return await response.json()


async def run_flow(bmc: RedfishBmc, image: str) -> None:
    """What a deploy does to put a node into the live system: eject, insert, boot once CD, power on."""
    await bmc.eject_all_media()
    await bmc.insert_media(image)
    await bmc.set_boot_once_cd()
    await bmc.power_on()


def switch_off(bmc: RedfishBmc, **change: Any) -> None:
    """The same BMC and flow with one piece of vendor handling turned off in the chosen profile."""
    bmc.found.profile = dataclasses.replace(bmc.profile, **change)


# -- iDRAC 10: Boot lives in the System's @Redfish.Settings object ------------------------------------

async def test_idrac10_refuses_boot_on_the_system_and_takes_it_in_settings(lab_factory: LabFactory) -> None:
    async with lab_factory(["idrac10"]) as lab:
        emulated = lab.bmcs[0].bmc
        system_answer = await raw_request(lab, "GET", emulated.system_path)
        system = await body_of(system_answer)
        settings_path = system["@Redfish.Settings"]["SettingsObject"]["@odata.id"]
        assert settings_path == "/redfish/v1/Systems/System.Embedded.1/Settings"
        assert "BootSourceOverrideTarget@Redfish.AllowableValues" not in system["Boot"]
        refused = await raw_request(lab, "PATCH", emulated.system_path, json=CD_ONCE)
        assert refused.status == 400
        assert "PropertyNotWritable" in (await body_of(refused))["error"]["@Message.ExtendedInfo"][0]["MessageId"]
        assert emulated.machine.boot.target == "None"

        settings_answer = await raw_request(lab, "GET", settings_path)
        settings = await body_of(settings_answer)
        assert "Cd" in settings["Boot"]["BootSourceOverrideTarget@Redfish.AllowableValues"]
        assert settings_answer.headers["ETag"] != system_answer.headers["ETag"]  # its own ETag
        foreign = await raw_request(lab, "PATCH", settings_path, json=CD_ONCE,
                                    headers={"If-Match": system_answer.headers["ETag"]})
        assert foreign.status == 412
        taken = await raw_request(lab, "PATCH", settings_path, json=CD_ONCE,
                                  headers={"If-Match": settings_answer.headers["ETag"]})
        assert taken.status == 204
        assert (emulated.machine.boot.target, emulated.machine.boot.enabled) == ("Cd", "Once")


async def test_idrac10_flow_boots_the_image(lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac10"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await run_flow(bmc, image)
            assert (await bmc.set_boot_disk()).target is BootTarget.DISK
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image)]
        assert emulated.machine.boot.target == "Hdd"
        # straight to the Settings object with its own ETag: no refused PATCH, no 412
        assert 400 not in emulated.refusals and 412 not in emulated.refusals


async def test_idrac10_flow_patching_the_system_fails_and_boots_the_disk(lab_factory: LabFactory, http,
                                                                         iso_server) -> None:
    async with lab_factory(["idrac10"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            switch_off(bmc, boot_settings_object=False)
            with pytest.raises(BmcError, match="PropertyNotWritable"):
                await run_flow(bmc, f"{iso_server.http}/pvc.iso")
            await bmc.power_on()
        assert emulated.machine.boots == [BootEvent(BootSource.DISK)]


async def test_any_bmc_with_boot_in_settings_gets_it_and_its_allowed_targets(lab_factory: LabFactory, http,
                                                                             iso_server) -> None:
    """Not only Dell: an unknown vendor whose Settings object alone lists UsbCd."""
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        object.__setattr__(emulated, "personality", dataclasses.replace(
            emulated.personality, boot_in_settings=True, boot_targets=("None", "Pxe", "Hdd", "UsbCd")))
        async with connect(lab, http) as bmc:
            assert bmc.profile.name == "standard"
            await run_flow(bmc, image)
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image)]
        assert "boot UsbCd Once" in emulated.actions
        assert 400 not in emulated.refusals and 412 not in emulated.refusals

