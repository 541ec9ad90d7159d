"""Trust boundaries with a BMC: a write is sent again only when the BMC shows it did not act, a refused
login is one failed login, and every retry is logged naming node, BMC and step (issue 12)."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import stamina.instrumentation
from pydantic import SecretStr

from controller.bmc.errors import BmcError, FailureClass
from controller.bmc.retry import RetryPolicy, log_retry
from tests.bmc.conftest import FAST, LabFactory, connect

SHORT = dataclasses.replace(FAST, restart_confirm=0.3, step=RetryPolicy(deadline=1.0, wait_initial=0.01,
                                                                         wait_max=0.02, wait_jitter=0.0))


def restarts(actions: list[str]) -> int:
    return sum(1 for a in actions if a == "reset ForceRestart")


async def test_lost_restart_answer_is_not_resent_when_the_override_shows_the_boot(lab_factory: LabFactory,
                                                                                    http) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await bmc.power_on()
            await bmc.set_boot_once_cd()
            emulated.faults.lost_reply_rate = 1.0  # the restart acts, its answer is lost
            await bmc.force_restart()
            emulated.faults.lost_reply_rate = 0.0
        assert restarts(emulated.actions) == 1
        assert emulated.machine.boot.enabled == "Disabled"  # the one-time override was used by that boot


async def test_lost_restart_answer_is_not_resent_when_power_shows_it(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        emulated.machine.power_delay = 0.2  # type: ignore[attr-defined]  # PoweringOn shows for a while
        async with connect(lab, http) as bmc:
            await bmc.power_on()
            emulated.faults.lost_reply_rate = 1.0
            await bmc.force_restart()
            emulated.faults.lost_reply_rate = 0.0
        assert restarts(emulated.actions) == 1 and emulated.machine.power_state == "On"


async def test_lost_restart_answer_without_a_sign_fails_and_is_not_resent(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http, timings=SHORT) as bmc:
            await bmc.power_on()
            await bmc.set_boot_disk()  # Continuous: the boot leaves no trace in the override
            emulated.faults.lost_reply_rate = 1.0
            with pytest.raises(BmcError) as caught:
                await bmc.force_restart()
            emulated.faults.lost_reply_rate = 0.0
        assert restarts(emulated.actions) == 1
    err = caught.value
    assert err.step == "force restart" and err.node == "node001"
    assert "answer to ForceRestart was lost" in str(err) and "does not send it again" in str(err)
    assert "console" in err.hint


async def test_lost_power_on_answer_is_checked_not_resent(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            emulated.faults.lost_reply_rate = 1.0
            await bmc.force_restart()  # the server is off: On, whose answer is lost; then it reads On
            emulated.faults.lost_reply_rate = 0.0
        assert emulated.actions == ["reset On"]


async def test_task_still_running_is_not_started_again(lab_factory: LabFactory, http, iso_server) -> None:
    hasty = dataclasses.replace(FAST, task_deadline=0.0)  # the insert's task outlives its deadline
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http, timings=hasty) as bmc:
            with pytest.raises(BmcError) as caught:
                await bmc.insert_media(f"{iso_server.http}/pvc.iso")
        assert len(emulated._tasks) == 1  # one InsertMedia task: polled, never sent a second time
    assert caught.value.attempts == 1 and "still running" in str(caught.value)
    assert "does not start it again" in str(caught.value)


async def test_failed_task_reads_are_read_again_not_resent(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            emulated.faults.error_rate = 0.4
            for _ in range(4):
                await bmc.insert_media(f"{iso_server.http}/pvc.iso")
                await bmc.eject_all_media()
            emulated.faults.error_rate = 0.0
        assert 503 in emulated.refusals
        assert len(emulated._tasks) == 4  # one task per insert, however many of its reads were refused


async def test_refused_session_login_is_one_failed_login(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        with pytest.raises(BmcError) as caught:
            async with connect(lab, http, password=SecretStr("wrong-password")):
                pass
        assert emulated.refusals == [401]  # the session login only: no Basic request after it
    err = caught.value
    assert err.failure is FailureClass.AUTH and err.attempts == 1 and err.step == "log in"
    assert "session login (POST /redfish/v1/SessionService/Sessions)" in str(err)
    assert "wrong-password" not in str(err)


async def test_basic_login_only_without_sessions(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"], faults={"sessions_disabled": True}) as lab:
        emulated = lab.bmcs[0].bmc
        with pytest.raises(BmcError) as caught:
            async with connect(lab, http, password=SecretStr("wrong-password")):
                pass
        assert emulated.refusals == [404, 401]  # no sessions here, then one Basic login refused
    assert "Basic authentication" in str(caught.value) and caught.value.failure is FailureClass.AUTH


async def test_retries_are_logged_by_node_bmc_and_step(lab_factory: LabFactory, http,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    assert stamina.instrumentation.get_on_retry_hooks() == (log_retry,)
    caplog.set_level(logging.INFO)
    async with lab_factory(["standard"]) as lab:
        url = lab.bmcs[0].url
        async with connect(lab, http, timings=SHORT) as bmc:
            lab.bmcs[0].bmc.faults.error_rate = 1.0
            with pytest.raises(BmcError):
                await bmc.power_state()
            lab.bmcs[0].bmc.faults.error_rate = 0.0
    retries = [r for r in caplog.records if "trying again in" in r.getMessage()]
    assert retries and all(r.name.startswith("controller.") for r in retries)
    assert all(f"node001: BMC {url}: read power state: GET" in r.getMessage() for r in retries)
    assert [r.levelno for r in retries].count(logging.WARNING) == 1  # once per step: it keeps failing
    assert "still failing after 3 attempts" in next(r for r in retries if r.levelno == logging.WARNING).getMessage()
    assert not [r for r in caplog.records if r.name.startswith("stamina")]
