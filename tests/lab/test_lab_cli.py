"""`pvcctl lab bmc` as a process: prints URLs, CA and credentials' source, serves, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import RedfishBmc
from controller.bmc.transport import new_http_session
from tests.bmc.conftest import FAST

PVCCTL = str(Path(sys.executable).with_name("pvcctl"))


async def test_lab_bmc_serves_until_ctrl_c(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        PVCCTL, "lab", "bmc", "--count", "2", "-p", "idrac10", "-p", "xcc", "--port", "0",
        "--base-address", "127.0.1.201", "--state-dir", str(tmp_path), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("credentials"):
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert line, (await process.stderr.read()).decode()
        lines.append(line.decode().strip())
    bmcs = [line.split() for line in lines if line.startswith("bmc ")]
    ca = Path(next(line.split(" ", 1)[1] for line in lines if line.startswith("ca ")))
    assert [b[1] for b in bmcs] == ["node001", "node002"] and bmcs[0][2].startswith("https://127.0.1.201:")
    assert "personality=idrac10" in bmcs[0] and "serial=PVC000002" in bmcs[1]
    assert bmcs[0][6].startswith("fingerprint=") and bmcs[0][6] != bmcs[1][6]
    assert lines[-1] == f"credentials user=admin password from file {tmp_path / 'password'}"
    password = (tmp_path / "password").read_text().strip()
    assert password not in "\n".join(lines)
    async with new_http_session() as http:
        for fields in bmcs:
            endpoint = BmcEndpoint(fields[2], "admin", SecretStr(password), ca_bundle=ca)
            async with RedfishBmc(endpoint, session=http, timings=FAST) as bmc:
                assert (await bmc.identity()).serial == fields[4].removeprefix("serial=")
    process.send_signal(signal.SIGINT)
    assert await asyncio.wait_for(process.wait(), 20) == 0
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(bmcs[0][2] + "/redfish/v1/", ssl=False) as response:
                raise AssertionError(f"still serving: {response.status}")
        except aiohttp.ClientConnectionError:
            pass


async def test_lab_bmc_mistakes_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "lab.yml"
    bad.write_text(f"state_dir: {tmp_path}\nbmcs:\n  - name: a\n    address: 127.0.1.9\n    serial: S\n")
    cases = [
        (["--personality", "idrac7"], "unknown personality idrac7"),
        (["--base-address", "10.0.0.1"], "is not loopback"),
        (["--config", str(bad)], "bmcs.0.macs: Field required"),
    ]
    for args, message in cases:
        process = await asyncio.create_subprocess_exec(
            PVCCTL, "lab", "bmc", "--state-dir", str(tmp_path), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 2, err
        assert message in err.decode() and len(err.decode().strip().splitlines()) == 1, err


async def test_lab_up_qemu_refuses_a_namespace_with_a_network_of_its_own(tmp_path: Path) -> None:
    # this test's namespace has interfaces that are not the lab's (CI's and this machine's have eth0)
    import socket

    foreign = [name for _, name in socket.if_nameindex() if name != "lo"]
    process = await asyncio.create_subprocess_exec(
        PVCCTL, "lab", "up", "--qemu", "1", "--dir", str(tmp_path / "vlab"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, out.decode() + err.decode()
    message = err.decode().strip()
    assert len(message.splitlines()) == 1 and "ip netns add" in message and "Traceback" not in message
    assert all(name in message for name in foreign)
    assert not (tmp_path / "vlab").exists()  # nothing made: no directory, no bridge
    assert "pvcbr0" not in [name for _, name in socket.if_nameindex()]


async def test_lab_up_wants_sim_or_qemu(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        PVCCTL, "lab", "up", "--dir", str(tmp_path / "lab"), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2 and "give --sim N" in err.decode()


async def test_lab_up_names_the_firmware_it_takes(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        PVCCTL, "lab", "up", "--qemu", "1", "--firmware", "efi", "--dir", str(tmp_path / "vlab"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    message = err.decode().strip()
    assert process.returncode == 2 and len(message.splitlines()) == 1, message
    assert "--firmware efi: give uefi (OVMF) or bios (SeaBIOS)" in message
    assert not (tmp_path / "vlab").exists()


@pytest.mark.parametrize(("machines", "said"), [
    (["--sim", "1"], "--secure-boot goes with --qemu N"),
    (["--qemu", "1", "--firmware", "bios"], "--secure-boot needs UEFI machines"),
])
async def test_lab_up_secure_boot_needs_uefi_qemu_machines(tmp_path: Path, machines: list[str], said: str) -> None:
    process = await asyncio.create_subprocess_exec(
        PVCCTL, "lab", "up", *machines, "--secure-boot", "--dir", str(tmp_path / "lab"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), 60)
    message = err.decode().strip()
    assert process.returncode == 2 and len(message.splitlines()) == 1 and said in message, message
    assert not (tmp_path / "lab").exists()
