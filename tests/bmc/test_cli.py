"""`pvcctl bmc ...` as an operator runs it: a real pvcctl process against lab BMCs on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from lab.server import BmcLab
from tests.bmc.conftest import LabFactory, lab_password

PVCCTL = str(Path(sys.executable).with_name("pvcctl"))

INVENTORY = """\
version: 1
cluster: {{name: lab1, domain: lab.example.tld}}
controller: {{listen: 127.0.0.1:8740, url: "http://127.0.0.1:8740"}}
defaults:
  bmc: {{username: admin, password: {{env: LAB_BMC_PW}}, ca_bundle: "{ca}"}}
  install: {{method: image, disk: largest, ssh_keys: ["{key}"]}}
  install_network: {{interface: eno1}}
networks:
  upstream: {{subnet: 10.100.0.0/24, gateway: 10.100.0.254, floating_ip: 10.100.0.250, device: eno1}}
  cluster: {{subnet: 10.0.0.0/24, floating_ip: 10.0.0.254, device: eno2}}
  storage: {{subnet: 10.0.1.0/24, floating_ip: 10.0.1.254, device: eno3}}
  bmc: {{subnet: 127.0.0.0/16, gateway: 127.0.255.254}}
nodes:
{nodes}
"""
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3p1W0f6Tz0k2bJ8m1Yq8mQd0w4v3Qy9mH0mJ1sKx0e admin@example.tld"


async def pvcctl(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        PVCCTL, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def write_inventory(lab: BmcLab, path: Path) -> Path:
    assert lab.pki is not None
    nodes = "\n".join(
        f"  - {{hostname: hv{i + 1}, coordinator: true, bmc: {{address: \"{b.url}\"}}}}" for i, b in enumerate(lab.bmcs)
    )
    path.write_text(INVENTORY.format(ca=lab.pki.ca_path, key=KEY, nodes=nodes))
    return path


async def test_info_on_every_inventory_node_as_json(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["idrac9", "ilo", "supermicro"]) as lab:
        inventory = write_inventory(lab, tmp_path / "cluster.yml")
        env = {"LAB_BMC_PW": lab_password(lab)}
        status, out, err = await pvcctl("bmc", "info", "--inventory", str(inventory), "--json", env=env)
        assert status == 0, err
        rows = json.loads(out)
        assert [r["node"] for r in rows] == ["hv1", "hv2", "hv3"]
        assert [r["serial"] for r in rows] == ["PVC000001", "PVC000002", "PVC000003"]
        assert [r["profile"] for r in rows] == ["dell-idrac9", "hpe-ilo", "supermicro"]
        assert rows[1]["macs"] == list(lab.bmcs[1].bmc.machine.macs)

        status, out, err = await pvcctl("bmc", "power", "on", "-i", str(inventory), "--node", "hv2", env=env)
        assert status == 0, err
        assert [b.bmc.machine.power_state for b in lab.bmcs] == ["Off", "On", "Off"]
        assert "hv2" in out and "On" in out  # the table

        status, _, err = await pvcctl("bmc", "info", "-i", str(inventory), "--node", "hv7", env=env)
        assert status == 2 and "no node hv7" in err and "hv1, hv2, hv3" in err


async def test_single_url_media_boot_power(lab_factory: LabFactory, tmp_path: Path, iso_server) -> None:
    async with lab_factory(["ami"]) as lab:
        assert lab.pki is not None
        machine = lab.bmcs[0].bmc.machine
        secret = tmp_path / "pw"
        secret.write_text(lab_password(lab) + "\n")
        target = ["--url", lab.bmcs[0].url, "--user", "admin", "--password-file", str(secret),
                  "--fingerprint", lab.pki.fingerprint()]
        image = f"{iso_server.http}/pvc.iso"
        status, out, err = await pvcctl("bmc", "media", "insert", image, *target, "--json")
        assert status == 0, err
        assert json.loads(out)[0]["image"] == image and machine.cd_image == image
        status, out, err = await pvcctl("bmc", "boot", "cd", *target, "--json")
        assert status == 0, err
        assert json.loads(out)[0]["target"] == "cd" and machine.boot.enabled == "Once"
        status, out, err = await pvcctl("bmc", "power", "restart", *target)
        assert status == 0, err
        assert f"restarting (force) node - (BMC {lab.bmcs[0].url}) now" in err
        assert machine.boots[-1].image_url == image
        status, out, err = await pvcctl("bmc", "power", "off", *target)
        assert status == 0 and "powering off (force)" in err and machine.power_state == "Off"
        status, out, err = await pvcctl("bmc", "media", "eject", *target, "--json")
        assert status == 0 and json.loads(out)[0]["inserted"] is False
        assert lab_password(lab) not in out + err


async def test_dgx_media_boot_power_with_placeholder_image_credentials(lab_factory: LabFactory, iso_server) -> None:
    """NVIDIA DGX: the insert is refused for missing UserName/Password and sent again with placeholders."""
    async with lab_factory(["dgx"]) as lab:
        assert lab.pki is not None
        emulated = lab.bmcs[0].bmc
        target = ["--url", lab.bmcs[0].url, "--user", "admin", "--password-env", "LAB_BMC_PW",
                  "--ca-bundle", str(lab.pki.ca_path)]
        env = {"LAB_BMC_PW": lab_password(lab)}
        image = f"{iso_server.http}/pvc.iso"
        said = ""
        for args in (["bmc", "info", "--json"], ["bmc", "media", "insert", image, "--json", "--verbose"],
                     ["bmc", "boot", "cd", "--json"], ["bmc", "power", "on"]):
            status, out, err = await pvcctl(*args, *target, env=env)
            assert status == 0, err
            said += out + err
            if args[1] == "info":
                assert json.loads(out)[0]["profile"] == "nvidia-dgx"
            if args[1] == "media":
                assert json.loads(out)[0]["image"] == image
                assert "UserName=none, Password=none (placeholder image credentials, not the BMC's)" in err
        assert emulated.slot("CD1").credentials == ("none", "none")
        assert emulated.machine.boots[-1].image_url == image
        assert lab_password(lab) not in said


async def test_operator_mistakes_are_one_line_exit_2(lab_factory: LabFactory, tmp_path: Path) -> None:
    async with lab_factory(["standard"]) as lab:
        url = lab.bmcs[0].url
        cases = [
            (["bmc", "info", "--url", url.replace("https", "http"), "--user", "a", "--password-env", "X"],
             "must look like https://host"),
            (["bmc", "info", "--url", url, "--user", "admin"], "exactly one of --password-env"),
            (["bmc", "info", "--url", url, "--user", "admin", "--password-env", "PVC_UNSET_VAR"],
             "PVC_UNSET_VAR (the BMC password) is not set"),
            (["bmc", "info"], "say which BMCs"),
            (["bmc", "info", "--url", url, "--user", "a", "--password-env", "X", "--fingerprint", "12:34"],
             "64 hex digits"),
            (["bmc", "info", "--inventory", str(tmp_path / "none.yml"), "--url", url], "not both"),
            (["bmc", "media", "insert", "--url", url, "--user", "a", "--password-env", "X"], "give an image URL"),
        ]
        for args, message in cases:
            status, _out, err = await pvcctl(*args, env={"X": "pw"})
            assert status == 2, (args, err)
            assert message in err and "Traceback" not in err, (args, err)
            assert len(err.strip().splitlines()) == 1, err
        status, _, err = await pvcctl("bmc", "info", "--url", url, "--user", "admin", "--password", "pw")
        assert status == 2 and "No such option" in err  # never a password on the command line


async def test_unreachable_or_untrusted_bmc_exits_1(lab_factory: LabFactory) -> None:
    async with lab_factory(["standard"]) as lab:
        status, _out, err = await pvcctl("bmc", "info", "--url", lab.bmcs[0].url, "--user", "admin",
                                        "--password-env", "X", env={"X": lab_password(lab)})
        assert status == 1
        assert "TLS verification failed" in err and "--ca-bundle" in err and "Traceback" not in err
