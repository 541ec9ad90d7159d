"""Retries by failure class, the give-up message, and writes that are not repeated once done."""

from __future__ import annotations

import asyncio
import dataclasses
import socket

import pytest
import stamina
from pydantic import SecretStr

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.errors import BmcError, FailureClass
from controller.bmc.redfish import RedfishBmc
from controller.bmc.retry import RetryPolicy
from tests.bmc.conftest import FAST, LabFactory, connect, endpoint_for

SHORT = dataclasses.replace(FAST, request_timeout=0.3, step=RetryPolicy(deadline=1.0, wait_initial=0.01,
                                                                         wait_max=0.02, wait_jitter=0.0))


async def test_busy_answers_are_retried(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"], faults={"error_rate": 0.5}) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            for _ in range(10):
                await bmc.power_state()
            await bmc.power_on()
        assert emulated.machine.power_state == "On"
        assert emulated.requests > 25  # the 503s really happened and were retried


async def test_give_up_names_node_bmc_step_first_and_last_error(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http, timings=SHORT) as bmc:
            emulated.faults.error_rate = 1.0
            with pytest.raises(BmcError) as caught:
                await bmc.power_on()
            emulated.faults.error_rate = 0.0
    err = caught.value
    text = str(err)
    assert err.node == "node001" and err.bmc == lab.bmcs[0].url and err.step == "power on"
    assert err.attempts > 2 and err.failure is FailureClass.BUSY
    assert "node001" in text and lab.bmcs[0].url in text and "power on" in text
    assert f"gave up after {err.attempts} attempts" in text
    assert "HTTP 503" in err.first_error and "HTTP 503" in err.last_error
    assert "close other sessions" in err.hint
    assert emulated.actions == []  # never acted


async def test_testing_mode_removes_waiting(lab_factory: LabFactory, http) -> None:
    slow = dataclasses.replace(FAST, step=RetryPolicy(deadline=600, wait_initial=30, wait_max=60))
    async with lab_factory(["standard"]) as lab, connect(lab, http, timings=slow) as bmc:
        lab.bmcs[0].bmc.faults.error_rate = 1.0
        with stamina.set_testing(True, attempts=3), pytest.raises(BmcError) as caught:
            await bmc.power_state()
    assert caught.value.attempts == 3


async def test_session_limit_is_retried_until_a_session_frees(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac9"], faults={"max_sessions": 1}) as lab:
        emulated = lab.bmcs[0].bmc
        holder = connect(lab, http)
        await holder.__aenter__()
        with pytest.raises(BmcError) as caught:
            async with connect(lab, http, timings=SHORT):
                pass
        assert caught.value.failure is FailureClass.BUSY and "SessionLimitExceeded" in caught.value.last_error
        waiting = connect(lab, http)

        async def free_later() -> None:
            await asyncio.sleep(0.2)
            await holder.__aexit__(None, None, None)

        freeing = asyncio.create_task(free_later())
        async with waiting as bmc:
            assert (await bmc.identity()).serial == "PVC000001"
        await freeing
        assert emulated.sessions == {}


async def test_connection_resets_are_retried(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"], faults={"reset_rate": 0.3}) as lab, connect(lab, http) as bmc:
        for _ in range(10):
            await bmc.identity()


async def test_hangs_time_out_and_are_retried(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http, timings=SHORT) as bmc:
            emulated.faults.hang_rate = 0.3
            for _ in range(5):
                await bmc.power_state()
            emulated.faults.hang_rate = 1.0
            with pytest.raises(BmcError) as caught:
                await bmc.power_state()
            emulated.faults.hang_rate = 0.0
    assert caught.value.failure is FailureClass.TIMEOUT and "no answer in time" in caught.value.last_error


async def test_refused_connection_gives_up_with_hint(http) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = BmcEndpoint(f"https://127.0.0.1:{port}", "admin", SecretStr("pw"), verify_tls=False)
    with pytest.raises(BmcError) as caught:
        async with RedfishBmc(endpoint, session=http, node="hv9", timings=SHORT):
            pass
    err = caught.value
    assert err.failure is FailureClass.CONNECTION and err.step == "log in" and "reachable" in err.hint


async def test_write_not_repeated_when_the_bmc_acted(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            emulated.faults.lost_reply_rate = 1.0  # the Reset acts, its answer is lost
            await bmc.power_on()
            emulated.faults.lost_reply_rate = 0.0
        assert emulated.actions == ["reset On"]
        assert emulated.machine.power_state == "On"


async def test_write_repeated_when_the_bmc_did_not_act(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac10"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await bmc.power_on()
            await bmc.force_off()
            before = emulated.requests
            await bmc.power_on()  # 409s first: the iDRAC did not act, so On is sent again
        assert emulated.actions == ["reset On", "reset ForceOff", "reset On"]
        assert 409 in emulated.refusals
        assert emulated.requests - before > 4


async def test_stale_etag_falls_back_without_if_match(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"], faults={"reject_if_match": True}) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await bmc.set_boot_once_cd()
        assert emulated.machine.boot.target == "Cd"
        assert emulated.refusals == [412]  # with the ETag, then again without If-Match


async def test_wrong_password_is_an_auth_error_not_retried(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        with pytest.raises(BmcError) as caught:
            async with connect(lab, http, password=SecretStr("wrong-password")):
                pass
        assert lab.bmcs[0].bmc.requests < 6
    assert caught.value.failure is FailureClass.AUTH and "password" in caught.value.hint
    assert "wrong-password" not in str(caught.value)


async def test_basic_auth_when_the_bmc_has_no_sessions(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"], faults={"sessions_disabled": True}) as lab, connect(lab, http) as bmc:
        assert bmc.auth == "basic"
        assert (await bmc.identity()).serial == "PVC000001"


def test_endpoint_hides_password() -> None:
    endpoint = BmcEndpoint("https://127.0.0.1", "admin", SecretStr("s3cret-pw"))
    assert "s3cret-pw" not in repr(endpoint) and "s3cret-pw" not in str(endpoint)


async def test_no_session_leaked_after_100_operations(lab_factory: LabFactory, http, iso_server) -> None:
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc

        async def one(i: int) -> None:
            async with connect(lab, http) as bmc:
                if i % 3 == 0:
                    await bmc.power_state()
                elif i % 3 == 1:
                    await bmc.media_status()
                else:
                    with pytest.raises(BmcError):  # a failing step still logs out
                        await bmc.insert_media(f"{iso_server.http}/missing.iso")
                assert len(emulated.sessions) <= 8

        for batch in range(0, 100, 5):  # 5 at once: under the iDRAC's 8 sessions
            await asyncio.gather(*(one(i) for i in range(batch, batch + 5)))
        assert emulated.sessions == {}
        assert endpoint_for(lab).url == lab.bmcs[0].url


async def test_power_read_back_waits_through_transition(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"]) as lab:
        machine = lab.bmcs[0].bmc.machine
        machine.power_delay = 0.3  # type: ignore[attr-defined]
        async with connect(lab, http) as bmc:
            await bmc.power_on()
            assert machine.power_state == "On"  # returned only once it was On, not PoweringOn
            await bmc.force_off()
            assert machine.power_state == "Off"
        slow = dataclasses.replace(FAST, power_deadline=0.1)
        async with connect(lab, http, timings=slow) as bmc:
            with pytest.raises(BmcError, match="power state still PoweringOn"):
                await bmc.power_on()


async def test_busy_after_power_off_is_waited_out(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["standard"], faults={"busy_after_power_off": 30.0}) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            await bmc.power_on()
            await bmc.force_off()  # its read-back meets 503s for 0.3 s
            assert emulated.machine.power_state == "Off"
        assert 503 in emulated.refusals and emulated.sessions == {}


async def test_expired_session_is_renewed_for_writes(lab_factory: LabFactory, http) -> None:
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        async with connect(lab, http) as bmc:
            emulated.sessions.clear()  # the BMC dropped the session (idle timeout, BMC reset)
            reset = f"{emulated.system_path}/Actions/ComputerSystem.Reset"
            await bmc.channel.write("POST", reset, {"ResetType": "On"})  # 401, new session, sent again
            assert 401 in emulated.refusals and emulated.actions == ["reset On"]  # acted once
            emulated.sessions.clear()
            await bmc.set_boot_once_cd()  # its first read renews the session (the library does that)
        assert emulated.actions == ["reset On", "boot Cd Once"]
        assert emulated.sessions == {}
