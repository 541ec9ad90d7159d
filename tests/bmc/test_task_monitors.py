"""Task monitors that answer 404 at first (NOTE(dell/idrac10): a just-created job's Location), for
any BMC: the lab BMC really does it (raw requests over HTTPS), pvcctl reads the monitor again for a
while, and a monitor that never shows is one error naming it. The lab counts 404s, not seconds, so
what the tests prove does not depend on how busy this machine is.
"""

from __future__ import annotations

import dataclasses

import pytest

from controller.bmc.base import BootTarget
from controller.bmc.errors import BmcError, FailureClass
from controller.bmc.retry import RetryPolicy
from lab.machine import BootEvent, BootSource
from tests.bmc.conftest import FAST, LabFactory, connect, finished, raw_request

HDD_ONCE = {"ShareParameters": {"Target": "ALL"}, "ImportBuffer": (
    '<SystemConfiguration><Component FQDD="iDRAC.Embedded.1">'
    '<Attribute Name="ServerBoot.1#BootOnce">Enabled</Attribute>'
    '<Attribute Name="ServerBoot.1#FirstBootDevice">HDD</Attribute>'
    "</Component></SystemConfiguration>")}


async def test_idrac10_job_is_followed_through_its_404s(lab_factory: LabFactory, http, iso_server) -> None:
    """pvcctl boots an iDRAC 10 the standard way: its Dell import path, switched on, meets the 404s."""
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac10"]) as lab:
        emulated = lab.bmcs[0].bmc
        started = await raw_request(lab, "POST", emulated.import_path, json=HDD_ONCE)
        assert started.status == 202
        answers = [(await raw_request(lab, "GET", started.headers["Location"])).status for _ in range(3)]
        assert answers[:2] == [404, 404] and answers[2] in (200, 202)  # not there, not there, there
        await finished(lab, started.headers["Location"])
        assert emulated.machine.boot.target == "Hdd"
        async with connect(lab, http) as bmc:
            bmc.found.profile = dataclasses.replace(bmc.profile, cd_boot_dell_oem=True)
            await bmc.insert_media(image)
            status = await bmc.set_boot_once_cd()
            assert (status.target, status.target_name) == (BootTarget.CD, "VCD-DVD")
            await bmc.power_on()
        assert emulated.refusals.count(404) == 4  # two for the test's job, two for pvcctl's
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image)]


async def test_any_task_monitor_is_read_again_through_its_404s(lab_factory: LabFactory, http, iso_server) -> None:
    """Not only Dell: an unknown vendor's InsertMedia answers 202 with a monitor that 404s at first."""
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        object.__setattr__(emulated, "personality", dataclasses.replace(
            emulated.personality, insert_returns_task=True, new_task_404_reads=3))
        async with connect(lab, http) as bmc:
            assert bmc.profile.name == "standard"
            status = await bmc.insert_media(image)
        assert status.inserted and emulated.machine.cd_image == image
        assert emulated.refusals == [404, 404, 404]  # what the monitor answered before the task showed
        assert emulated.actions.count(f"insert CD1 {image}") == 1  # followed, not sent again


async def test_task_monitor_that_never_shows_is_one_clear_error(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        object.__setattr__(emulated, "personality", dataclasses.replace(
            emulated.personality, insert_returns_task=True, new_task_404_reads=10**6))
        timings = dataclasses.replace(FAST, task_missing_grace=0.2, step=RetryPolicy(
            deadline=0.1, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0))
        async with connect(lab, http, timings=timings) as bmc:
            with pytest.raises(BmcError) as caught:
                await bmc.insert_media(f"{iso_server.http}/pvc.iso")
    err = caught.value
    assert err.failure is FailureClass.SERVER
    assert "GET /redfish/v1/TaskService/TaskMonitors/" in str(err)
    assert "the BMC still answers 404 for its task monitor" in str(err) and "ResourceMissingAtURI" in str(err)
    assert "task or job queue" in err.hint
