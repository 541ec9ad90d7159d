"""Boot the live ISO in QEMU (TCG) under UEFI (OVMF) and SeaBIOS, from CD and from USB (slow).

Each boot proves, on the real live system: SSH answers with the host key the build reported
(pinned, no trust-on-first-use) and lets in only the controller's key; the check-in reaches a
controller on the host loopback, carrying the VM's MAC, is retried after a refusal and stops when
acknowledged; the seed's static entry for the VM's MAC gives it that address (UEFI run), or
DHCP when no entry matches (BIOS run); the medium was copied to RAM; the console screen shows.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncssh
import pytest

from iso.build import BuildReport
from iso.seed import Seed, SeedNode, write_iso_with_seed
from tests.iso.vm import CheckinServer, Vm, boot_until_ssh

pytestmark = pytest.mark.slow
# CDROMEJECT: the kernel refuses (EBUSY) while anything else holds the drive, such as a mounted medium.
EJECT_CD = 'import fcntl, os; fcntl.ioctl(os.open("/dev/sr0", os.O_RDONLY | os.O_NONBLOCK), 0x5309)'


async def _run(conn: asyncssh.SSHClientConnection, command: str) -> str:
    result = await conn.run(command, check=True, timeout=60)
    return str(result.stdout)


async def _boot_and_check(live_iso: BuildReport, tmp_path: Path, *, uefi: bool, static: bool,
                          usb: bool = False) -> None:
    controller_key = asyncssh.generate_private_key("ssh-ed25519")
    stranger_key = asyncssh.generate_private_key("ssh-ed25519")
    mac = f"52:54:00:c0:ff:{int(uefi)}{int(usb)}"
    with CheckinServer(refusals=1) as controller:
        nodes = (SeedNode("hv-static", macs=(mac,), address="10.0.2.50/24", gateway="10.0.2.2", dns=("10.0.2.3",)),
                 ) if static else (SeedNode("hv-other", macs=("52:54:00:00:00:99",), address="10.0.2.60/24"),)
        seed = Seed(f"http://10.0.2.2:{controller.port}", controller_key.export_public_key().decode().strip(), nodes)
        iso = write_iso_with_seed(Path(live_iso.iso), seed, tmp_path / "seeded.iso")
        vm = Vm(iso, tmp_path, uefi=uefi, mac=mac, guest_address="10.0.2.50" if static else "", usb=usb)
        try:
            conn, seconds = await boot_until_ssh(vm, live_iso.host_key_public, controller_key)
            print(f"{'UEFI' if uefi else 'BIOS'} {'USB' if usb else 'CD'} boot to SSH: {seconds:.0f} s")
            async with conn:
                await _check_live_system(conn, uefi=uefi, static=static, usb=usb)
            with pytest.raises(asyncssh.PermissionDenied):
                await asyncssh.connect("127.0.0.1", vm.ssh_port, username="root", known_hosts=None,
                                       client_keys=[stranger_key], agent_path=None, password="root",
                                       connect_timeout=30)
            received = await asyncio.to_thread(controller.wait_for_ack, 120)
            for _ in range(30):  # the console screen redraws every 5 s
                if "checked in to http://10.0.2.2" in vm.serial_log.read_text(errors="replace"):
                    break
                await asyncio.sleep(1)
        finally:
            vm.stop()
    assert len(received) == 2, "refused once, then acknowledged, then silent"
    checkin = received[-1]
    assert checkin["macs"] == [mac]
    assert checkin["boot_mode"] == ("uefi" if uefi else "bios")
    assert checkin["host_key_fingerprint"] == live_iso.host_key_fingerprint
    assert checkin["serial"] == vm.serial
    assert checkin["node"] == ("hv-static" if static else None)
    assert ("10.0.2.50/24" if static else "10.0.2.15/24") in checkin["addresses"]
    console = vm.serial_log.read_text(errors="replace")
    assert "PVC live installer (pvcctl)" in console and "checked in to http://10.0.2.2" in console


async def _check_live_system(conn: asyncssh.SSHClientConnection, *, uefi: bool, static: bool, usb: bool) -> None:
    addresses = await _run(conn, "ip -4 -o addr show scope global")
    if static:
        assert "10.0.2.50/24" in addresses and "10.0.2.15" not in addresses
        assert "default via 10.0.2.2" in await _run(conn, "ip -4 route")
    else:
        assert "10.0.2.15/24" in addresses and "10.0.2.60" not in addresses
    assert (await _run(conn, "findmnt -n -o FSTYPE /run/live/medium")).strip() == "tmpfs"  # toram
    assert (await _run(conn, "test -d /sys/firmware/efi && echo uefi || echo bios")).strip() == (
        "uefi" if uefi else "bios")
    assert int(await _run(conn, "stat -c %s /run/live/medium/pvc/target.squashfs")) > 100_000_000
    sshd = await _run(conn, "sshd -T")
    assert "passwordauthentication no" in sshd and "permitrootlogin without-password" in sshd
    assert "import ok" in await _run(
        conn, "PYTHONPATH=/usr/local/lib/pvcctl python3 -c 'import installer.plan; print(\"import ok\")'")
    assert (await _run(conn, "test -x /usr/local/sbin/pvc-installer && echo ok")).strip() == "ok"
    assert (await _run(conn, "systemctl is-active pvc-seed ssh systemd-networkd")).split() == ["active"] * 3
    assert "usage: python3 -m installer" in await _run(conn, "/usr/local/sbin/pvc-installer --help")
    # One installer at a time: a second one (console or SSH) is refused while the first holds the lock.
    busy = await conn.run("(flock /run/pvc/installer.lock sleep 20 &) ; sleep 2; /usr/local/sbin/pvc-installer --help",
                          check=False, timeout=60)
    assert busy.exit_status == 75 and "already running" in str(busy.stderr)
    # The medium can go: everything the live system needs was copied to RAM at boot.
    if not usb:
        await _run(conn, f"python3 -c '{EJECT_CD}'")
    assert "controller_url" in await _run(conn, "cat /run/live/medium/pvc/seed.json")
    assert "import ok" in await _run(
        conn, "PYTHONPATH=/usr/local/lib/pvcctl python3 -c 'import iso.live.checkin; print(\"import ok\")'")


async def test_uefi_boot_with_static_seed_entry(live_iso: BuildReport, tmp_path: Path) -> None:
    await _boot_and_check(live_iso, tmp_path, uefi=True, static=True)


async def test_bios_boot_with_dhcp(live_iso: BuildReport, tmp_path: Path) -> None:
    await _boot_and_check(live_iso, tmp_path, uefi=False, static=False)


@pytest.mark.parametrize("uefi", [True, False], ids=["uefi", "bios"])
async def test_usb_stick_boot(live_iso: BuildReport, tmp_path: Path, uefi: bool) -> None:
    """The same ISO written to a USB stick boots through its hybrid MBR (BIOS) or GPT ESP (UEFI)."""
    await _boot_and_check(live_iso, tmp_path, uefi=uefi, static=False, usb=True)
