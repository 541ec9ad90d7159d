"""`pvcctl bmc info` and `pvcctl bmc secureboot` as an operator runs them: a real pvcctl process, lab BMCs."""

from __future__ import annotations

import json
from pathlib import Path

from tests.bmc.conftest import LabFactory, lab_password
from tests.bmc.test_cli import pvcctl, write_inventory
from tests.bmc.test_cli_consent import run


def patches(lab, index: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [w for w in lab.bmcs[index].bmc.writes if w.startswith("PATCH") and w.endswith("/SecureBoot")]


async def test_info_shows_each_nodes_secure_boot(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["idrac9", "supermicro", "openbmc"]) as lab:
        inventory = str(write_inventory(lab, tmp_path / "cluster.yml"))
        env = {"LAB_BMC_PW": lab_password(lab)}
        status, out, err = await pvcctl("bmc", "info", "-i", inventory, "--json", env=env)
        assert status == 0, err
        found = {row["node"]: row["secure_boot"] for row in json.loads(out)}
        assert found["hv1"] == {"state": "off", "enable": False, "current_boot": "Disabled", "mode": "DeployedMode",
                                "reason": "", "summary": "off (DeployedMode)"}
        assert (found["hv2"]["state"], found["hv2"]["reason"]) == ("unknown", "HTTP 403 OemLicenseNotPassed")
        assert found["hv3"]["summary"] == "unknown (the BMC offers no SecureBoot resource)"
        status, out, err = await pvcctl("bmc", "info", "-i", inventory, env=env)
        assert status == 0, err
        assert "secure_boot" in out and "off (DeployedMode)" in out and "unknown (HTTP 403 OemLicenseNotPassed)" in out


async def test_on_asks_first_restarts_what_is_on_and_reads_back(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["idrac9", "xcc", "standard"]) as lab:
        inventory = str(write_inventory(lab, tmp_path / "cluster.yml"))
        env = {"LAB_BMC_PW": lab_password(lab)}
        status, _, err = await run("bmc", "power", "on", "-i", inventory, "--node", "hv1", env=env)
        assert status == 0, err

        status, _, err = await run("bmc", "secureboot", "on", "-i", inventory, env=env)  # no terminal, no --yes
        assert status == 2 and "set Secure Boot on and force-restart 3 node(s): hv1, hv2, hv3: nothing done" in err
        assert patches(lab, 0) == patches(lab, 1) == []

        status, out, err = await run("bmc", "secureboot", "on", "-i", inventory, "--yes", "--json", env=env)
        assert status == 0, err
        rows = {row["node"]: row for row in json.loads(out)}
        # hv1 was on: restarted (announced, then logged as it happened), now in effect (Dell: after the reset)
        assert (rows["hv1"]["state"], rows["hv1"]["enable"], rows["hv1"]["restarted"]) == ("on", True, True)
        announced = err.index("setting Secure Boot on (and force-restarting it if it is on) on node hv1")
        assert announced < err.index("hv1: BMC https://") and "force restart (Secure Boot on takes effect" in err
        # hv2 was off: set, and pending until it is powered on
        assert (rows["hv2"]["enable"], rows["hv2"]["restarted"]) == (True, False)
        assert rows["hv2"]["summary"] == "off, on at next boot (UserMode); takes effect at power-on"
        assert lab.bmcs[1].bmc.machine.power_state == "Off"
        assert len(patches(lab, 0)) == len(patches(lab, 1)) == 1

        status, out, err = await run("bmc", "secureboot", "status", "-i", inventory, "--node", "hv1", env=env)
        assert status == 0 and "on (DeployedMode)" in out, err


async def test_on_where_it_cannot_be_set_is_an_error_row(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["supermicro"]) as lab:
        inventory = str(write_inventory(lab, tmp_path / "cluster.yml"))
        env = {"LAB_BMC_PW": lab_password(lab)}
        status, _, err = await run("bmc", "secureboot", "off", "-i", inventory, env=env)
        assert status == 1 and "Secure Boot cannot be set here: HTTP 403 OemLicenseNotPassed" in err
        assert lab_password(lab) not in err
