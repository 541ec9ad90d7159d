"""Secure Boot through each personality's Redfish SecureBoot resource (issue 15): read, set once, read back."""

from __future__ import annotations

import dataclasses

import pytest

from controller.bmc.errors import BmcError, FailureClass
from controller.bmc.secure_boot import read_secure_boot
from lab.personalities import PERSONALITIES
from tests.bmc.conftest import FAST, LabFactory, connect, raw_request

QUICK = dataclasses.replace(FAST, secure_boot_deadline=0.3)


def secure_boot_patches(writes: list[str]) -> list[str]:
    return [w for w in writes if w.startswith("PATCH") and w.endswith("/SecureBoot")]


@pytest.mark.parametrize("name", sorted(PERSONALITIES))
async def test_status_is_read_per_personality(lab_factory: LabFactory, http, name: str) -> None:
    async with lab_factory([name]) as lab, connect(lab, http) as bmc:
        found = (await bmc.identity()).secure_boot
        emulated = lab.bmcs[0].bmc
    if name == "supermicro":  # NOTE(supermicro): the licence gate is unknown, not an error
        assert (found.known, found.state, found.reason) == (False, "unknown", "HTTP 403 OemLicenseNotPassed")
    elif name == "openbmc":  # the lab's BMC with no SecureBoot link
        assert (found.known, found.reason) == (False, "the BMC offers no SecureBoot resource")
    else:
        assert found.known and found.enable is False and found.current_boot == "Disabled"
        assert found.mode == emulated.personality.secure_boot_mode and found.summary == f"off ({found.mode})"
    assert [w for w in emulated.writes if "/SessionService/" not in w] == []  # reading is all it did


async def test_a_resource_that_answers_404_is_unknown(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["openbmc"]) as lab, connect(lab, http) as bmc:
        system = (await bmc.channel.get(bmc.found.system.path)).data
        linked = system | {"SecureBoot": {"@odata.id": f"{bmc.found.system.path}/SecureBoot"}}  # served nowhere
        status, _ = await read_secure_boot(bmc.channel, linked)
    assert (status.known, status.reason) == (False, "HTTP 404 ResourceMissingAtURI")


@pytest.mark.parametrize("name", ["standard", "ilo", "xcc", "ami"])
async def test_on_shows_at_once_and_takes_effect_at_the_reset(lab_factory: LabFactory, http, name: str) -> None:
    async with lab_factory([name]) as lab, connect(lab, http) as bmc:
        emulated = lab.bmcs[0].bmc
        after = await bmc.set_secure_boot(True)
        assert (after.enable, after.current_boot, after.summary) == (True, "Disabled", f"off, on at next boot "
                                                                                       f"({after.mode})")
        assert emulated.machine.secure_boot is False  # nothing changes until the server starts
        await bmc.power_on()
        assert emulated.machine.secure_boot is True
        now = await bmc.wait_secure_boot(True)
        assert (now.enable, now.current_boot, now.state) == (True, "Enabled", "on")
        assert await bmc.set_secure_boot(True) == now  # already so: nothing sent
        assert len(secure_boot_patches(emulated.writes)) == 1


async def test_dell_shows_the_change_only_after_the_restart(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac9"]) as lab, connect(lab, http) as bmc:
        emulated = lab.bmcs[0].bmc
        await bmc.power_on()
        after = await bmc.set_secure_boot(True)
        assert after.enable is False  # NOTE(dell/idrac9): a BIOS job, applied at the reset
        await bmc.force_restart()
        now = await bmc.wait_secure_boot(True)
        assert (now.enable, now.current_boot) == (True, "Enabled") and emulated.machine.secure_boot is True
        await bmc.set_secure_boot(False)
        await bmc.force_off()
        await bmc.power_on()  # a power-on from off is a reset too
        assert (await bmc.secure_boot_status()).state == "off" and emulated.machine.secure_boot is False
        assert len(secure_boot_patches(emulated.writes)) == 2


async def test_a_lost_answer_is_not_sent_again(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac9"]) as lab, connect(lab, http) as bmc:
        emulated = lab.bmcs[0].bmc
        emulated.faults.lost_reply_rate = 1.0  # the PATCH acts, its answer never arrives
        after = await bmc.set_secure_boot(True)
        emulated.faults.lost_reply_rate = 0.0
        assert after.enable is False  # Dell shows it after the reset: a resend would be a second write
        assert len(secure_boot_patches(emulated.writes)) == 1


async def test_a_patch_that_changes_nothing_is_seen_after_the_restart(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["xcc"]) as lab, connect(lab, http, timings=QUICK) as bmc:
        emulated = lab.bmcs[0].bmc
        emulated.faults.secure_boot_ignores_patch = True  # NOTE(lenovo/xcc): 200 PhysicalPresenceError
        after = await bmc.set_secure_boot(True)
        await bmc.power_on()
        now = await bmc.wait_secure_boot(True)
    assert after.enable is False and (now.enable, now.state) == (False, "off")
    assert len(secure_boot_patches(emulated.writes)) == 1


async def test_setting_where_there_is_none_fails_without_writing(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["supermicro"]) as lab, connect(lab, http) as bmc:
        with pytest.raises(BmcError) as caught:
            await bmc.set_secure_boot(True)
        assert [w for w in lab.bmcs[0].bmc.writes if "/SessionService/" not in w] == []
    assert caught.value.failure is FailureClass.UNSUPPORTED and "OemLicenseNotPassed" in str(caught.value)


async def test_the_lab_resource_as_a_client_sees_it(lab_factory: LabFactory) -> None:
    async with lab_factory(["ilo", "supermicro"]) as lab:
        answer = await raw_request(lab, "PATCH", "/redfish/v1/Systems/1/SecureBoot", json={"SecureBootEnable": True})
        assert answer.status == 200  # NOTE(hpe/ilo5): with SystemResetRequired
        body = await (await raw_request(lab, "GET", "/redfish/v1/Systems/1/SecureBoot")).json()
        assert (body["SecureBootEnable"], body["SecureBootCurrentBoot"]) == (True, "Disabled")
        bad = await raw_request(lab, "PATCH", "/redfish/v1/Systems/1/SecureBoot", json={"SecureBootEnable": "yes"})
        assert bad.status == 400
        gated = await raw_request(lab, "GET", "/redfish/v1/Systems/1/SecureBoot", index=1)
        assert gated.status == 403


async def test_in_setup_mode_the_boot_enforces_nothing(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab, connect(lab, http) as bmc:
        emulated = lab.bmcs[0].bmc
        emulated.secure_boot.mode = "SetupMode"  # no platform key enrolled
        await bmc.set_secure_boot(True)
        await bmc.power_on()
        now = await bmc.wait_secure_boot(True)
    assert (now.enable, now.current_boot, now.state) == (True, "Disabled", "off")
    assert emulated.machine.secure_boot is False
