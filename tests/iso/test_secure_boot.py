"""The live ISO under UEFI Secure Boot (slow): Debian's signed chain boots, an unsigned GRUB is refused.

The firmware is Debian's OVMF built to enforce Secure Boot, with Microsoft's keys enrolled
(tests/ovmf.py), as a server shipped with Secure Boot on has. The live system is reached over SSH
with the host key the build reported, and asked what the kernel made of the firmware.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncssh
import pytest

from iso.build import BuildReport, build_iso
from iso.seed import Seed, write_iso_with_seed
from tests import ovmf
from tests.conftest import TEST_CACHE
from tests.iso.vm import CheckinServer, Vm, boot_until_ssh

pytestmark = pytest.mark.slow
# What OVMF prints when an image's signature is not in its db (BdsDxe, on the serial console)
FIRMWARE_REFUSES = "Access Denied"
TAINT_UNSIGNED_MODULE = 1 << 13  # kernel taint E: a module without a valid signature was loaded


async def _run(conn: asyncssh.SSHClientConnection, command: str) -> str:
    return str((await conn.run(command, check=True, timeout=60)).stdout)


async def test_live_iso_boots_with_secure_boot_on(live_iso: BuildReport, tmp_path: Path) -> None:
    controller_key = asyncssh.generate_private_key("ssh-ed25519")
    with CheckinServer(refusals=0) as controller:
        seed = Seed(f"http://10.0.2.2:{controller.port}", controller_key.export_public_key().decode().strip(), ())
        iso = write_iso_with_seed(Path(live_iso.iso), seed, tmp_path / "seeded.iso")
        vm = Vm(iso, tmp_path, uefi=True, mac="52:54:00:5b:00:01", secure_boot=True)
        try:
            conn, seconds = await boot_until_ssh(vm, live_iso.host_key_public, controller_key)
            print(f"Secure Boot CD boot to SSH: {seconds:.0f} s")
            async with conn:
                secure_boot = await _run(conn, f"od -An -t u1 {ovmf.SECURE_BOOT_VAR}")
                lockdown = await _run(conn, "cat /sys/kernel/security/lockdown")
                tainted = int(await _run(conn, "cat /proc/sys/kernel/tainted"))
                # the live tools the installer needs still work under lockdown
                assert "usage: python3 -m installer" in await _run(conn, "/usr/local/sbin/pvc-installer --help")
                assert "BootCurrent" in await _run(conn, "efibootmgr")
                assert "SecureBoot enabled" in await _run(conn, "mokutil --sb-state")
            await asyncio.to_thread(controller.wait_for_ack, 120)
        finally:
            vm.stop()
    assert secure_boot.split()[-1] == "1", f"the firmware does not enforce Secure Boot: {secure_boot}"
    assert "[none]" not in lockdown, lockdown  # Debian's kernel locks itself down under Secure Boot
    assert not tainted & TAINT_UNSIGNED_MODULE, f"an unsigned module was loaded (tainted={tainted})"
    assert ovmf.KERNEL_SAYS_SECURE_BOOT in vm.serial_log.read_text(errors="replace")


def test_unsigned_boot_loader_is_refused(debian_mirror: str, tmp_path: Path) -> None:
    """The same ISO with a GRUB built here (the test-only unsigned chain): the firmware must refuse
    it, so the test above would fail if the signed chain were not what made it boot."""
    cache = TEST_CACHE / "iso"
    unsigned = build_iso(cache, tmp_path / "unsigned.iso", mirror=debian_mirror, efi_chain="unsigned")
    vm = Vm(Path(unsigned.iso), tmp_path, uefi=True, mac="52:54:00:5b:00:02", secure_boot=True)
    vm.start()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and FIRMWARE_REFUSES not in _console(vm):
            time.sleep(2)
    finally:
        vm.stop()
    console = _console(vm)
    assert FIRMWARE_REFUSES in console, f"no refusal from the firmware; console tail:\n{console[-2000:]}"
    assert "Linux version" not in console and "GNU GRUB" not in console


def _console(vm: Vm) -> str:
    return vm.serial_log.read_text(errors="replace") if vm.serial_log.exists() else ""
