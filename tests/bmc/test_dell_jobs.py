"""The iDRAC's Lifecycle Controller in the way of the one-time virtual CD boot (old iDRAC's Dell import).
Each: the lab BMC really does it (raw requests over HTTPS), pvcctl copes with it, and what it cannot
cope with is one error that says what the iDRAC answered and what to do.

- RAC0679: another configuration job runs; the import is refused until it ends: wait, send it again
- LC068: changes pending until a restart; the import is refused: restart the node once, then as above

The tests hold the emulator's state (a job held running, changes held pending), so what they prove
does not depend on how busy this machine is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from typing import Any

import aiohttp
import pytest

from controller.bmc.base import PowerState
from controller.bmc.errors import BmcError, FailureClass
from controller.bmc.redfish import BmcTimings, RedfishBmc
from controller.bmc.retry import RetryPolicy
from lab.bmc import LabBmc
from lab.machine import BootEvent, BootSource
from tests.bmc.conftest import FAST, LabFactory, connect, raw_request

SCP_VCD_ONCE = (
    '<SystemConfiguration><Component FQDD="iDRAC.Embedded.1">'
    '<Attribute Name="ServerBoot.1#BootOnce">Enabled</Attribute>'
    '<Attribute Name="ServerBoot.1#FirstBootDevice">VCD-DVD</Attribute>'
    "</Component></SystemConfiguration>"
)
IMPORT = {"ShareParameters": {"Target": "ALL"}, "ImportBuffer": SCP_VCD_ONCE}


def short(**change: Any) -> BmcTimings:
    """FAST timings with a short step: the generic retry gives up long before the Dell waits do."""
    step = RetryPolicy(deadline=0.2, wait_initial=0.01, wait_max=0.05, wait_jitter=0.0)
    return dataclasses.replace(FAST, step=step, **change)


async def message_id(response: aiohttp.ClientResponse) -> str:
    return str((await response.json())["error"]["@Message.ExtendedInfo"][0]["MessageId"])


async def deploy_boot(bmc: RedfishBmc) -> None:
    """What the deploy's boot step does: one-time virtual CD boot, then restart or power on."""
    await bmc.set_boot_once_cd()
    if await bmc.power_state() is PowerState.ON:
        await bmc.force_restart()
    else:
        await bmc.power_on()


class ActionsAtWarning(logging.Handler):
    """What the emulated BMC had done when each warning was logged: shows a warning came first."""

    def __init__(self, emulated: LabBmc):
        super().__init__(logging.WARNING)
        self.emulated = emulated
        self.seen: list[tuple[str, list[str]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.getMessage(), list(self.emulated.actions)))


# -- RAC0679: another configuration job is running ------------------------------------------------------

async def test_old_idrac_waits_out_a_running_configuration_job(lab_factory: LabFactory, http, iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac9-old"]) as lab:
        emulated = lab.bmcs[0].bmc
        other = emulated.start_config_job(seconds=None)  # held until the test ends it
        refused = await raw_request(lab, "POST", emulated.import_path, json=IMPORT)
        assert refused.status == 503 and (await message_id(refused)).endswith("RAC0679")
        held = await raw_request(lab, "GET", f"/redfish/v1/TaskService/Tasks/{other}")
        assert held.status == 202 and (await held.json())["Oem"]["Dell"]["JobState"] == "Running"
        async with connect(lab, http, timings=short(config_job_deadline=30.0)) as bmc:
            await bmc.insert_media(image)
            before = len(emulated.refusals)
            boot = asyncio.create_task(bmc.set_boot_once_cd())
            # Hold the other job until pvcctl was refused twice, and for longer than the step's own retry
            # deadline (0.2 s): only waiting for the job, as pvcctl does, outlasts it.
            held_since = None
            while not boot.done():
                refused = emulated.refusals[before:].count(503)
                held_since = held_since or (time.monotonic() if refused else None)
                if refused >= 2 and held_since is not None and time.monotonic() - held_since > 1.0:
                    break
                await asyncio.sleep(0.01)
            emulated.finish_job(other)
            status = await boot
            assert (status.target_name, status.enabled) == ("VCD-DVD", "Once")
            await bmc.power_on()
        assert emulated.machine.boots == [BootEvent(BootSource.CD, image)]


async def test_old_idrac_job_that_keeps_running_is_one_clear_error(lab_factory: LabFactory, http,
                                                                  iso_server) -> None:
    async with lab_factory(["idrac9-old"]) as lab:
        emulated = lab.bmcs[0].bmc
        emulated.start_config_job(seconds=None)
        async with connect(lab, http, timings=short(config_job_deadline=0.3)) as bmc:
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
            with pytest.raises(BmcError) as caught:
                await bmc.set_boot_once_cd()
        assert emulated.machine.boot.target == "None"
    err = caught.value
    assert err.failure is FailureClass.REJECTED and err.attempts == 1
    assert "still refuses the ImportSystemConfiguration of the one-time boot from VCD-DVD after 0.3 s" in str(err)
    assert "another configuration job is running (IDRAC.2.9.RAC0679 Unable to start the import" in str(err)
    assert "Job Queue" in err.hint and "let it finish" in err.hint


# -- LC068: configuration pending until a restart ------------------------------------------------------

async def test_old_idrac_pending_changes_restart_only_this_node_once(lab_factory: LabFactory, http,
                                                                    iso_server) -> None:
    image = f"{iso_server.http}/pvc.iso"
    async with lab_factory(["idrac9-old", "idrac9-old"]) as lab:
        emulated, neighbour = lab.bmcs[0].bmc, lab.bmcs[1].bmc
        await emulated.reset("On")  # a server in use, with a BIOS change waiting for its next restart
        pending = emulated.schedule_config_job()
        refused = await raw_request(lab, "POST", emulated.import_path, json=IMPORT)
        assert refused.status == 400 and (await message_id(refused)).endswith("LC068")
        waiting = await raw_request(lab, "GET", f"/redfish/v1/TaskService/Tasks/{pending}")
        assert (await waiting.json())["Oem"]["Dell"]["JobState"] == "Scheduled"
        emulated.actions.clear()
        watch = ActionsAtWarning(emulated)
        logging.getLogger("controller.bmc").addHandler(watch)
        try:
            async with connect(lab, http) as bmc:
                await bmc.insert_media(image)
                await deploy_boot(bmc)
        finally:
            logging.getLogger("controller.bmc").removeHandler(watch)
        actions = emulated.actions
        imported = next(i for i, a in enumerate(actions) if "by ImportSystemConfiguration VCD-DVD" in a)
        restarts = [i for i, a in enumerate(actions) if a == "reset ForceRestart"]
        # one restart for LC068 before the import took, one by the boot step after it
        assert len(restarts) == 2 and restarts[0] < imported < restarts[1]
        assert emulated.machine.boots[-2:] == [BootEvent(BootSource.DISK), BootEvent(BootSource.CD, image)]
        assert neighbour.actions == [] and neighbour.machine.boots == []  # only the node the inventory names
        assert actions.index(f"job {pending} Configure: BIOS.Setup.1-1 Running") == restarts[0] + 1  # it ran
        said = [(m, before) for m, before in watch.seen if "LC068" in m]
        assert len(said) == 1
        message, before = said[0]
        assert "node001: BMC https://127.0.1.1:" in message and "force restart" in message
        assert "reset ForceRestart" not in before  # said before it acted


async def test_old_idrac_changes_a_restart_does_not_apply_are_one_clear_error(lab_factory: LabFactory, http,
                                                                              iso_server) -> None:
    async with lab_factory(["idrac9-old"]) as lab:
        emulated = lab.bmcs[0].bmc
        emulated.pending_changes = True  # staged without a job: a restart does not apply them
        await emulated.reset("ForceRestart")
        refused = await raw_request(lab, "POST", emulated.import_path, json=IMPORT)
        assert refused.status == 400 and (await message_id(refused)).endswith("LC068")
        await emulated.reset("ForceOff")
        emulated.actions.clear()
        async with connect(lab, http, timings=short(config_job_deadline=0.3)) as bmc:
            await bmc.insert_media(f"{iso_server.http}/pvc.iso")
            with pytest.raises(BmcError) as caught:
                await bmc.set_boot_once_cd()
            assert emulated.actions.count("reset On") == 1  # once for this boot step, not once per try
            with pytest.raises(BmcError):
                await bmc.set_boot_once_cd()  # the next boot step may restart it once more
            assert [a for a in emulated.actions if a.startswith("reset")] == ["reset On", "reset ForceRestart"]
        assert emulated.machine.boot.target == "None"
    err = caught.value
    assert err.failure is FailureClass.REJECTED and err.attempts == 1
    assert ("after 0.3 s: configuration changes are pending after pvcctl restarted the server once "
            "(IDRAC.2.9.LC068 Unable to start the import because configuration changes are pending") in str(err)
    assert "Job Queue" in err.hint and "restart did not apply" in err.hint
