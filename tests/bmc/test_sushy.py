"""RedfishBmc against sushy-tools' sushy-emulator (fake driver, TLS, Basic auth, three systems).

An independent Redfish service: every change is read back from the emulator's own answers with a
separate plain aiohttp client. Known gaps of the emulator (no sessions, no ETags, no serial number,
Once reported as Continuous, SecureBootCurrentBoot following SecureBootEnable without a reset) are
what RedfishBmc must cope with.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import bcrypt
import pytest
from pydantic import SecretStr

from controller.bmc.base import PowerState
from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import BmcTimings, RedfishBmc
from controller.bmc.retry import RetryPolicy
from lab.pki import make_lab_pki

SUSHY = str(Path(sys.executable).with_name("sushy-emulator"))
SYSTEMS = [
    {"uuid": f"00005ec0-0000-0000-0000-00000000000{i}", "name": f"sushy{i}", "power_state": "Off",
     "nics": [{"mac": f"52:54:00:5e:c0:0{i}", "ip": "127.0.0.1"}]}
    for i in (1, 2, 3)
]
# The fake driver applies power changes after a random 1-11 s.
TIMINGS = BmcTimings(request_timeout=10, step=RetryPolicy(deadline=20, wait_initial=0.2, wait_max=1.0),
                     power_deadline=30, media_deadline=10, poll_interval=0.3)


@dataclass(frozen=True)
class Sushy:
    url: str
    ca: Path
    password: str

    def endpoint(self) -> BmcEndpoint:
        return BmcEndpoint(self.url, "admin", SecretStr(self.password), ca_bundle=self.ca)

    async def get(self, path: str) -> dict[str, Any]:
        """The emulator's own state, read without pvcctl."""
        context = ssl.create_default_context(cafile=self.ca)
        auth = {"Authorization": aiohttp.encode_basic_auth("admin", self.password)}
        async with aiohttp.ClientSession() as session, session.get(self.url + path, headers=auth, ssl=context) as r:
            assert r.status == 200, await r.text()
            data: dict[str, Any] = await r.json()
            return data


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
async def sushy(tmp_path: Path) -> AsyncIterator[Sushy]:
    pki = make_lab_pki(tmp_path / "pki", ["127.0.0.1"])
    password = "sushy-test-pw"
    htpasswd = tmp_path / "htpasswd"
    # bcrypt cost 4: the emulator checks the hash on every request.
    htpasswd.write_text("admin:" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode() + "\n")
    port = _free_port()
    (tmp_path / "state").mkdir()
    (tmp_path / "tmp").mkdir()
    config = tmp_path / "sushy.conf"
    config.write_text(
        f"SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\nSUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_SSL_CERT = '{pki.cert_path}'\nSUSHY_EMULATOR_SSL_KEY = '{pki.key_path}'\n"
        f"SUSHY_EMULATOR_AUTH_FILE = '{htpasswd}'\nSUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_STATE_DIR = '{tmp_path / 'state'}'\nSUSHY_EMULATOR_FAKE_SYSTEMS = {SYSTEMS!r}\n"
    )
    log = (tmp_path / "sushy.log").open("w")
    process = subprocess.Popen([SUSHY, "--config", str(config)], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "TMPDIR": str(tmp_path / "tmp")})
    handle = Sushy(f"https://127.0.0.1:{port}", pki.ca_path, password)
    try:
        for _ in range(150):
            if process.poll() is not None:
                pytest.fail(f"sushy-emulator exited: {(tmp_path / 'sushy.log').read_text()[-2000:]}")
            try:
                await handle.get("/redfish/v1/")
                break
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)
        else:
            pytest.fail("sushy-emulator did not answer within 15 s")
        yield handle
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def test_identity_of_several_systems(sushy: Sushy, http: aiohttp.ClientSession) -> None:
    for system in SYSTEMS:
        async with RedfishBmc(sushy.endpoint(), session=http, node=str(system["name"]), timings=TIMINGS,
                              system_id=str(system["uuid"])) as bmc:
            assert bmc.auth == "basic"  # sushy-emulator has no SessionService
            ident = await bmc.identity()
            own = await sushy.get(f"/redfish/v1/Systems/{system['uuid']}")
            assert ident.macs == tuple(nic["mac"] for nic in system["nics"])
            assert ident.power is PowerState.OFF and own["PowerState"] == "Off"
            assert ident.serial == str(own.get("SerialNumber") or "")
            assert ident.profile == "standard"


async def test_insert_eject_and_boot_override(sushy: Sushy, http: aiohttp.ClientSession, iso_server) -> None:
    uuid = str(SYSTEMS[1]["uuid"])
    image = f"{iso_server.http}/pvc.iso"
    async with RedfishBmc(sushy.endpoint(), session=http, node="sushy2", timings=TIMINGS, system_id=uuid) as bmc:
        await bmc.eject_all_media()
        status = await bmc.insert_media(image)
        own = await sushy.get(f"/redfish/v1/Systems/{uuid}/VirtualMedia/Cd")
        assert status.inserted and own["Inserted"] is True and own["Image"] == image
        boot = await bmc.set_boot_once_cd()
        own_boot = (await sushy.get(f"/redfish/v1/Systems/{uuid}"))["Boot"]
        assert own_boot["BootSourceOverrideTarget"] == "Cd" and own_boot["BootSourceOverrideMode"] == "UEFI"
        assert boot.enabled == own_boot["BootSourceOverrideEnabled"]  # sushy says Continuous for Once
        await bmc.eject_all_media()
        own = await sushy.get(f"/redfish/v1/Systems/{uuid}/VirtualMedia/Cd")
        assert own["Inserted"] is False and not (await bmc.media_status()).inserted
        await bmc.set_boot_disk()
        own_boot = (await sushy.get(f"/redfish/v1/Systems/{uuid}"))["Boot"]
        assert own_boot["BootSourceOverrideTarget"] == "Hdd"
    other = await sushy.get(f"/redfish/v1/Systems/{SYSTEMS[0]['uuid']}/VirtualMedia/Cd")
    assert not other.get("Image")  # only the system it was told


async def test_power_on_and_off(sushy: Sushy, http: aiohttp.ClientSession) -> None:
    uuid = str(SYSTEMS[2]["uuid"])
    async with RedfishBmc(sushy.endpoint(), session=http, node="sushy3", timings=TIMINGS, system_id=uuid) as bmc:
        await bmc.power_on()
        assert (await sushy.get(f"/redfish/v1/Systems/{uuid}"))["PowerState"] == "On"
        await bmc.force_off()
        assert (await sushy.get(f"/redfish/v1/Systems/{uuid}"))["PowerState"] == "Off"
    assert (await sushy.get(f"/redfish/v1/Systems/{SYSTEMS[0]['uuid']}"))["PowerState"] == "Off"


async def test_pvcctl_bmc_against_sushy(sushy: Sushy, iso_server) -> None:
    from tests.bmc.test_cli import pvcctl

    target = ["--url", sushy.url, "--user", "admin", "--password-env", "SUSHY_PW", "--ca-bundle", str(sushy.ca)]
    env = {"SUSHY_PW": sushy.password}
    status, out, err = await pvcctl("bmc", "info", *target, "--json", env=env)
    assert status == 0, err
    first = SYSTEMS[0]
    assert json.loads(out)[0]["macs"] == [nic["mac"] for nic in first["nics"]]
    image = f"{iso_server.http}/pvc.iso"
    status, out, err = await pvcctl("bmc", "media", "insert", image, *target, "--json", env=env)
    assert status == 2 and f"has {len(SYSTEMS)} systems: {first['uuid']}" in err  # sushy serves several: say which
    target += ["--system", first["uuid"]]
    status, out, err = await pvcctl("bmc", "media", "insert", image, *target, "--json", env=env)
    assert status == 0, err
    assert (await sushy.get(f"/redfish/v1/Systems/{first['uuid']}/VirtualMedia/Cd"))["Image"] == image
    status, out, err = await pvcctl("bmc", "boot", "status", *target, "--json", env=env)
    assert status == 0 and json.loads(out)[0]["mode"] == "UEFI", err


async def test_secure_boot_is_read_and_set(sushy: Sushy, http: aiohttp.ClientSession) -> None:
    # sushy-emulator's fake driver keeps SecureBootEnable and shows SecureBootCurrentBoot following it at
    # once (no reset needed, unlike a real server); its mode is always DeployedMode.
    uuid = str(SYSTEMS[0]["uuid"])
    async with RedfishBmc(sushy.endpoint(), session=http, node="sushy1", timings=TIMINGS, system_id=uuid) as bmc:
        found = (await bmc.identity()).secure_boot
        assert (found.known, found.enable, found.current_boot, found.mode) == (True, False, "Disabled", "DeployedMode")
        after = await bmc.set_secure_boot(True)
        own = await sushy.get(f"/redfish/v1/Systems/{uuid}/SecureBoot")
        assert after.enable is True and own["SecureBootEnable"] is True and own["SecureBootCurrentBoot"] == "Enabled"
        assert (await bmc.set_secure_boot(False)).state == "off"
    other = await sushy.get(f"/redfish/v1/Systems/{SYSTEMS[1]['uuid']}/SecureBoot")
    assert other["SecureBootEnable"] is False  # only the system it was told
