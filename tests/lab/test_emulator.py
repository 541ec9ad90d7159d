"""The lab BMC as a Redfish service, seen with a plain HTTP client: auth, sessions, ETags, tasks, faults."""

from __future__ import annotations

import ssl
import time

import aiohttp
from pydantic import SecretStr

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import RedfishBmc
from lab.server import BmcLab, LabConfig
from tests.bmc.conftest import FAST, LabFactory, lab_password, raw_request


async def test_root_is_public_everything_else_needs_auth(lab_factory: LabFactory) -> None:
    async with lab_factory(["standard"]) as lab:
        assert lab.pki is not None
        context = ssl.create_default_context(cafile=lab.pki.ca_path)
        async with aiohttp.ClientSession() as session:
            async with session.get(lab.bmcs[0].url + "/redfish/v1/", ssl=context) as root:
                assert root.status == 200 and (await root.json())["Links"]["Sessions"]
            async with session.get(lab.bmcs[0].url + "/redfish/v1/Systems", ssl=context) as systems:
                assert systems.status == 401 and "Basic" in systems.headers["WWW-Authenticate"]
            body = {"UserName": "admin", "Password": lab_password(lab)}
            async with session.post(lab.bmcs[0].url + "/redfish/v1/SessionService/Sessions", json=body,
                                    ssl=context) as created:
                assert created.status == 201
                token, location = created.headers["X-Auth-Token"], created.headers["Location"]
            async with session.get(lab.bmcs[0].url + "/redfish/v1/Systems", ssl=context,
                                   headers={"X-Auth-Token": token}) as systems:
                assert systems.status == 200
            async with session.delete(lab.bmcs[0].url + location, ssl=context,
                                      headers={"X-Auth-Token": token}) as deleted:
                assert deleted.status == 204
            async with session.get(lab.bmcs[0].url + "/redfish/v1/Systems", ssl=context,
                                   headers={"X-Auth-Token": token}) as systems:
                assert systems.status == 401
        assert lab.bmcs[0].bmc.sessions == {}


async def test_stale_etag_gets_412(lab_factory: LabFactory) -> None:
    async with lab_factory(["standard"]) as lab:
        emulated = lab.bmcs[0].bmc
        etag = emulated.etag("system")
        boot = {"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}}
        first = await raw_request(lab, "PATCH", emulated.system_path, json=boot, headers={"If-Match": etag})
        assert first.status == 204
        second = await raw_request(lab, "PATCH", emulated.system_path, json=boot, headers={"If-Match": etag})
        assert second.status == 412
        assert emulated.machine.boot.target == "Pxe"


async def test_insert_reads_the_image_with_head_and_range(lab_factory: LabFactory, iso_server) -> None:
    async with lab_factory(["idrac9"]) as lab:
        emulated = lab.bmcs[0].bmc
        action = f"{emulated.media_path}/1/Actions/VirtualMedia.InsertMedia"
        foreign = await raw_request(lab, "POST", action, json={"Image": "http://192.0.2.1/x.iso"})
        assert foreign.status == 400  # the lab never fetches beyond loopback
        accepted = await raw_request(lab, "POST", action, json={"Image": f"{iso_server.http}/pvc.iso"})
        assert accepted.status == 202
        monitor = accepted.headers["Location"]
        # still running, however loaded this machine is
        emulated._tasks = {k: (time.monotonic() + 600, v[1]) for k, v in emulated._tasks.items()}
        assert (await raw_request(lab, "GET", monitor)).status == 202
        emulated._tasks = {k: (0.0, v[1]) for k, v in emulated._tasks.items()}  # let the task finish now
        assert (await raw_request(lab, "GET", monitor)).status == 200
        assert emulated.slot("1").image == f"{iso_server.http}/pvc.iso"


async def test_session_limit_and_busy_after_power_off(lab_factory: LabFactory) -> None:
    async with lab_factory(["standard"], faults={"max_sessions": 2, "busy_after_power_off": 100.0}) as lab:
        emulated = lab.bmcs[0].bmc
        emulated.open_session("admin", lab_password(lab))
        emulated.open_session("admin", lab_password(lab))
        third = await raw_request(lab, "POST", "/redfish/v1/SessionService/Sessions",
                                  json={"UserName": "admin", "Password": lab_password(lab)})
        assert third.status == 503
        await emulated.machine.power_on()
        off = await raw_request(lab, "POST", f"{emulated.system_path}/Actions/ComputerSystem.Reset",
                                json={"ResetType": "ForceOff"})
        assert off.status == 204
        busy = await raw_request(lab, "GET", emulated.system_path)
        assert busy.status == 503  # 100 s * time_scale 0.01 = 1 s of busy


async def test_lab_from_yaml_with_predictable_serial_and_macs(tmp_path, http, monkeypatch) -> None:
    config = tmp_path / "lab.yml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\nport: 0\nusername: root\npassword_env: LAB_YAML_PW\n"
        "bmcs:\n"
        "  - {name: hv1, address: 127.0.1.77, personality: ilo, serial: CZ2D1X0ABC,\n"
        "     macs: ['b4:7a:f1:00:00:01', 'b4:7a:f1:00:00:02'], faults: {latency: 0.01}}\n"
    )
    monkeypatch.setenv("LAB_YAML_PW", "yaml-pw")
    async with BmcLab(LabConfig.from_yaml(config)) as lab:
        assert lab.pki is not None and lab.password_source == "environment variable LAB_YAML_PW"
        endpoint = BmcEndpoint(lab.bmcs[0].url, "root", SecretStr("yaml-pw"), ca_bundle=lab.pki.ca_path)
        async with RedfishBmc(endpoint, session=http, timings=FAST) as bmc:
            ident = await bmc.identity()
    assert ident.serial == "CZ2D1X0ABC" and ident.macs == ("b4:7a:f1:00:00:01", "b4:7a:f1:00:00:02")
    assert ident.profile == "hpe-ilo"
