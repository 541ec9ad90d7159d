"""Three quirks that decide whether a node boots the virtual CD: the lab BMC really has each (raw
requests over HTTPS), pvcctl's full media+boot+power flow ends with the emulated machine booting the
image, and the same flow with the handling switched off in the profile does not.

- old iDRAC (9 < 6.00, 8): the standard Cd boots the physical drive; Dell's OEM import sets VCD-DVD
- iDRAC 10 (and any BMC alike): Boot is written through the System's @Redfish.Settings object
- NVIDIA DGX: InsertMedia wants UserName/Password even for an anonymous image
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import aiohttp
import pytest

from controller.bmc.base import BootTarget
from controller.bmc.errors import BmcError, FailureClass
from controller.bmc.media import PLACEHOLDER_IMAGE_PASSWORD, PLACEHOLDER_IMAGE_USER
from controller.bmc.redfish import RedfishBmc
from controller.bmc.retry import RetryPolicy
from lab.machine import PHYSICAL_OPTICAL, BootEvent, BootSource
from lab.server import BmcLab
from tests.bmc.conftest import FAST, LabFactory, connect, lab_password, raw_request

SCP_VCD_ONCE = (
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


async def wait_job(lab: BmcLab, location: str) -> tuple[int, dict[str, Any]]:
    for _ in range(200):
        answer = await raw_request(lab, "GET", location)
        if answer.status != 202:
            return answer.status, await body_of(answer)
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {location} never finished")


# -- old iDRAC: the standard Cd boots the physical drive ----------------------------------------------

@pytest.mark.parametrize("personality", ["idrac9-old", "idrac8"])
async def test_old_idrac_boots_its_disk_on_the_standard_cd_override(personality: str, lab_factory: LabFactory,
                                                                    iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory([personality]) as lab:
        emulated = lab.bmcs[0].bmc
        insert = await raw_request(lab, "POST", f"{emulated.media_path}/CD/Actions/VirtualMedia.InsertMedia",
                                   json={"Image": image})
        assert insert.status == 204 and emulated.machine.cd_image == image
        assert (await raw_request(lab, "PATCH", emulated.system_path, json=CD_ONCE)).status == 204
        shown = (await body_of(await raw_request(lab, "GET", emulated.system_path)))["Boot"]
        assert (shown["BootSourceOverrideTarget"], shown["BootSourceOverrideEnabled"]) == ("Cd", "Once")
        assert emulated.machine.boot.target == PHYSICAL_OPTICAL  # what Cd means to this firmware
        on = await raw_request(lab, "POST", f"{emulated.system_path}/Actions/ComputerSystem.Reset",
                               json={"ResetType": "On"})
        assert on.status == 204
        assert emulated.machine.boots == [BootEvent(BootSource.DISK)]  # the image was inserted all along


async def test_old_idrac_oem_import_is_a_job_that_boots_the_virtual_cd_once(lab_factory: LabFactory,
                                                                            iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac9-old"]) as lab:
        emulated = lab.bmcs[0].bmc
        manager = await body_of(await raw_request(lab, "GET", emulated.manager_path))
        action = manager["Actions"]["Oem"]["#OemManager.ImportSystemConfiguration"]["target"]
        assert action == "/redfish/v1/Managers/iDRAC.Embedded.1/Actions/Oem/EID_674_Manager.ImportSystemConfiguration"
        body = {"ShareParameters": {"Target": "ALL"}, "ImportBuffer": SCP_VCD_ONCE}
        started = await raw_request(lab, "POST", action, json=body)
        assert started.status == 202
        location = started.headers["Location"]
        assert location.startswith("/redfish/v1/TaskService/Tasks/JID_")
        assert (await raw_request(lab, "GET", location)).status == 202  # still running
        status, job = await wait_job(lab, location)
        assert status == 200 and job["TaskState"] == "Completed"
        assert job["Oem"]["Dell"]["JobState"] == "Completed"
        assert job["Oem"]["Dell"]["Message"].startswith("Successfully imported")
        again = await raw_request(lab, "POST", action, json=body)
        _, job = await wait_job(lab, again.headers["Location"])
        assert job["Oem"]["Dell"]["Message"].startswith("No changes")
        # the iDRAC fails the job on insignificant whitespace in the XML
        pretty = body | {"ImportBuffer": SCP_VCD_ONCE.replace("><", ">\n  <")}
        pretty_started = await raw_request(lab, "POST", action, json=pretty)
        _, job = await wait_job(lab, pretty_started.headers["Location"])
        assert job["TaskState"] == "Exception" and job["Oem"]["Dell"]["JobState"] == "Failed"

        await raw_request(lab, "POST", f"{emulated.media_path}/CD/Actions/VirtualMedia.InsertMedia",
                          json={"Image": image})
        await emulated.reset("On")
        await emulated.reset("ForceRestart")
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image), BootEvent(BootSource.DISK)]


@pytest.mark.parametrize("personality", ["idrac9-old", "idrac8"])
async def test_old_idrac_flow_boots_the_image(personality: str, lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory([personality]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            assert bmc.profile.cd_boot_dell_oem
            await bmc.eject_all_media()
            await bmc.insert_media(image)
            status = await bmc.set_boot_once_cd()
            assert (status.target, status.target_name, status.enabled) == (BootTarget.CD, "VCD-DVD", "Once")
            assert await bmc.set_boot_once_cd() == status  # repeatable: the job says "No changes"
            await bmc.power_on()
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image)]
        assert not any(a.startswith(f"boot {PHYSICAL_OPTICAL}") for a in emulated.actions)
        assert sum("by ImportSystemConfiguration VCD-DVD" in a for a in emulated.actions) == 1


async def test_old_idrac_flow_without_the_oem_import_boots_the_disk(lab_factory: LabFactory, http,
                                                                    iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac9-old"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            switch_off(bmc, cd_boot_dell_oem=False)
            await run_flow(bmc, image)
            # the standard read-back is satisfied: Redfish says Cd, Once ...
            assert (await bmc.boot_status()).target is BootTarget.NONE  # ... until the boot used it up
        # ... yet the machine booted its disk with the image inserted: why the profile, not a read-back, decides
        assert emulated.machine.cd_image == image
        assert emulated.machine.boots == [BootEvent(BootSource.DISK)]


async def test_old_idrac_failed_job_is_one_clear_error(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["idrac9-old"], faults={"config_jobs_fail": True}) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
            with pytest.raises(BmcError) as caught:
                await bmc.set_boot_once_cd()
        assert emulated.machine.boot.target == "None"
    err = caught.value
    assert err.failure is FailureClass.REJECTED and err.attempts == 1  # a failed job is not tried again
    assert "Dell job JID_" in str(err) and "ended Failed" in str(err)
    assert "Unable to complete application of configuration profile values" in str(err)
    assert "job queue" in err.hint


async def test_old_idrac_job_is_polled_until_a_deadline(lab_factory: LabFactory, http, iso_server) -> None:
    # As by default, the job's deadline outlasts the step's: the import is not sent again (the iDRAC
    # would refuse it with RAC0679 while its first job runs).
    timings = dataclasses.replace(FAST, task_deadline=0.1, step=RetryPolicy(deadline=0.05, wait_initial=0.01,
                                                                            wait_max=0.02, wait_jitter=0.0))
    async with lab_factory(["idrac9-old"]) as lab:
        lab.bmcs[0].bmc.time_scale = 1.0  # the job runs its real 4 s
        async with connect(lab, http, timings=timings) as bmc:
            with pytest.raises(BmcError) as caught:
                await bmc.set_boot_once_cd()
    assert caught.value.failure is FailureClass.TIMEOUT
    assert "is still Running after 0.1 s: Importing Server Configuration Profile" in str(caught.value)


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


# -- NVIDIA DGX: InsertMedia wants image credentials ----------------------------------------------------

async def test_dgx_refuses_an_insert_without_credentials(lab_factory: LabFactory, iso_server) -> None:
    async with lab_factory(["dgx"]) as lab:
        emulated = lab.bmcs[0].bmc
        action = f"{emulated.media_path}/CD1/Actions/VirtualMedia.InsertMedia"
        image = {"Image": f"{iso_server.http}/pvc.iso", "TransferProtocolType": "HTTP"}
        refused = await raw_request(lab, "POST", action, json=image)
        assert refused.status == 400
        error = (await body_of(refused))["error"]
        assert "code" not in error  # as sushy saw on DGX: only @Message.ExtendedInfo says why
        info = error["@Message.ExtendedInfo"][0]
        assert info["MessageId"].endswith("ActionParameterMissing") and "UserName" in info["Message"]
        taken = await raw_request(lab, "POST", action, json=image | {"UserName": "u", "Password": "p"})
        assert taken.status == 204


async def test_dgx_flow_boots_the_image_with_placeholder_credentials(lab_factory: LabFactory, http, iso_server,
                                                                     caplog) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["dgx"]) as lab:
        emulated = lab.bmcs[0].bmc
        with caplog.at_level(logging.DEBUG):
            async with connect(lab, http) as bmc:
                assert bmc.profile.name == "nvidia-dgx"
                await run_flow(bmc, image)
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image)]
        sent = emulated.slot("CD1").credentials
        assert sent == (PLACEHOLDER_IMAGE_USER, PLACEHOLDER_IMAGE_PASSWORD) == ("none", "none")
        assert lab_password(lab) not in sent
        assert emulated.refusals == [400]  # one refusal, then the placeholders
    assert "UserName=none, Password=none (placeholder image credentials, not the BMC's)" in caplog.text
    assert lab_password(lab) not in caplog.text


async def test_dgx_flow_without_placeholder_credentials_boots_the_disk(lab_factory: LabFactory, http,
                                                                       iso_server) -> None:
    async with lab_factory(["dgx"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            switch_off(bmc, media_placeholder_credentials=False)
            with pytest.raises(BmcError, match="requires the parameter UserName") as refused:
                await run_flow(bmc, f"{iso_server.http}/pvc.iso")
            assert "wants credentials for the image" in str(refused.value.hint)  # not "check it can fetch"
            await bmc.set_boot_once_cd()
            await bmc.power_on()
        assert emulated.machine.cd_image is None
        assert emulated.machine.boots == [BootEvent(BootSource.DISK)]
