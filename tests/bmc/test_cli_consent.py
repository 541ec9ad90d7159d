"""Consent before power actions, and a BMC with several systems: a real pvcctl process against lab BMCs."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
from pathlib import Path

import pytest

from inventory.load import load_inventory
from inventory.state import ClusterState, InstallResult
from tests.bmc.conftest import LabFactory, lab_password
from tests.bmc.test_cli import PVCCTL, write_inventory


async def run(*args: str, env: dict[str, str], answer: str | None = None) -> tuple[int, str, str]:
    """pvcctl with no terminal (stdin from /dev/null), or on a terminal that types `answer`."""
    primary, secondary = pty.openpty() if answer is not None else (-1, subprocess.DEVNULL)
    process = await asyncio.create_subprocess_exec(
        PVCCTL, *args, stdin=secondary, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env})
    if answer is not None:
        os.close(secondary)
        os.write(primary, answer.encode() + b"\n")
    out, err = await asyncio.wait_for(process.communicate(), 120)
    if answer is not None:
        os.close(primary)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_power_off_of_several_nodes_asks_once_or_refuses(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["standard", "ilo", "supermicro"]) as lab:
        inventory = str(write_inventory(lab, tmp_path / "cluster.yml"))
        env = {"LAB_BMC_PW": lab_password(lab)}
        machines = [b.bmc.machine for b in lab.bmcs]
        status, _, err = await run("bmc", "power", "on", "-i", inventory, env=env)  # on is never asked about
        assert status == 0, err
        assert [m.power_state for m in machines] == ["On", "On", "On"]

        status, out, err = await run("bmc", "power", "off", "-i", inventory, env=env)
        assert status == 2 and "power off (force) 3 node(s): hv1, hv2, hv3: nothing done" in err and "--yes" in err
        assert [m.power_state for m in machines] == ["On", "On", "On"]

        boots = [len(m.boots) for m in machines]
        status, out, err = await run("bmc", "power", "restart", "-i", inventory, env=env, answer="n")
        assert status == 1 and "restart (force) 3 node(s): hv1, hv2, hv3. Go ahead?" in err and "nothing done" in err
        assert err.count("Go ahead?") == 1 and [len(m.boots) for m in machines] == boots

        status, out, err = await run("bmc", "power", "off", "-i", inventory, env=env, answer="y")
        assert status == 0, err
        assert [m.power_state for m in machines] == ["Off", "Off", "Off"]

        status, out, err = await run("bmc", "media", "eject", "-i", inventory, env=env)
        assert status == 2 and "eject the media of 3 node(s)" in err
        status, out, err = await run("bmc", "media", "eject", "-i", inventory, "--yes", "--json", env=env)
        assert status == 0 and [r["inserted"] for r in json.loads(out)] == [False, False, False]


async def test_an_installed_node_is_asked_about_alone(lab_factory: LabFactory, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    async with lab_factory(["standard"] * 3) as lab:
        inventory = write_inventory(lab, tmp_path / "cluster.yml")
        env = {"LAB_BMC_PW": lab_password(lab)}
        monkeypatch.setenv("LAB_BMC_PW", env["LAB_BMC_PW"])
        ClusterState.open(load_inventory(inventory)).record_install("hv2", InstallResult("10.100.0.2"))
        machine2 = lab.bmcs[1].bmc.machine
        status, _, err = await run("bmc", "power", "on", "-i", str(inventory), env=env)
        assert status == 0, err

        status, _, err = await run("bmc", "power", "off", "-i", str(inventory), "-n", "hv1", env=env)
        assert status == 0, err  # one node, not installed: no question
        status, _, err = await run("bmc", "power", "off", "-i", str(inventory), "-n", "hv2", env=env)
        assert status == 2 and "hv2 (installed)" in err and machine2.power_state == "On"
        status, _, err = await run("bmc", "power", "off", "-i", str(inventory), "-n", "hv2", "-y", env=env)
        assert status == 0 and machine2.power_state == "Off"


async def test_a_bmc_with_several_systems_acts_on_the_chosen_one(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["standard"]) as lab:
        assert lab.pki is not None
        lab.bmcs[0].bmc.other_systems = ("2", "3")
        machine = lab.bmcs[0].bmc.machine
        target = ["--url", lab.bmcs[0].url, "--user", "admin", "--password-env", "LAB_BMC_PW",
                  "--ca-bundle", str(lab.pki.ca_path)]
        env = {"LAB_BMC_PW": lab_password(lab)}

        status, out, err = await run("bmc", "info", *target, "--json", env=env)
        assert status == 0, err
        rows = json.loads(out)
        assert [r["system"] for r in rows] == ["1", "2", "3"]
        assert rows[2]["serial"] == f"{machine.serial}-3"

        status, out, err = await run("bmc", "power", "on", *target, env=env)
        assert status == 2 and err.strip() == (f"pvcctl: the BMC at {lab.bmcs[0].url} has 3 systems: 1, 2, 3; "
                                               "choose one with --system ID")
        assert machine.power_state == "Off"

        status, out, err = await run("bmc", "power", "on", *target, "--system", "1", "--json", env=env)
        assert status == 0, err
        assert json.loads(out) == [{"node": "-", "bmc": lab.bmcs[0].url, "system": "1", "ok": True, "power": "On"}]
        assert machine.power_state == "On"

        status, out, err = await run("bmc", "power", "status", *target, "--system", "7", env=env)
        assert status != 0 and "no system 7; its systems: 1, 2, 3" in err
