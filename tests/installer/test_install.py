"""A real install of the target image onto a disk image, checked by mounting the result, then the
installed disk booted under OVMF (UEFI) and SeaBIOS until its SSH answers with the reported key.

Where the host has no device-mapper (this sandbox), LVM cannot be activated here, so the install runs
inside a QEMU VM on the same raw disk image (tests/installer/vm.py); the host-side loop test is then
skipped with the exact error. Every check below reads the disk image on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import ovmf
from tests.conftest import TEST_CACHE
from tests.installer import harness, vm
from tests.installer.standin import build_standin_image

pytestmark = [pytest.mark.slow, pytest.mark.root,
              pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root")]
ROOT_PASSWORD = "correct horse battery staple"


def device_mapper_error() -> str | None:
    proc = subprocess.run(["dmsetup", "version"], capture_output=True, text=True)
    return None if proc.returncode == 0 else (proc.stderr.strip().replace("\n", " | ") or "dmsetup failed")


@pytest.fixture(scope="session")
def install_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    folder = tmp_path_factory.mktemp("keys")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / "id")], check=True)
    root_hash = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=ROOT_PASSWORD, capture_output=True,
                               text=True, check=True).stdout.strip()
    return folder / "id", root_hash


@pytest.fixture(scope="session")
def installed(target_image: Path, install_keys: tuple[Path, str], debian_mirror: str,
              tmp_path_factory: pytest.TempPathFactory) -> harness.InstallResult:
    """The real installer, in the live test VM, onto a 30 GiB raw disk: once stopped after `mount`,
    then again to the end over the half-done install."""
    cache = TEST_CACHE / "installer"
    kit = vm.live_kit(build_standin_image(cache), cache)
    key, root_hash = install_keys
    plan = harness.test_plan("/payload/target.squashfs", key.with_suffix(".pub").read_text().strip(), root_hash,
                             debian_mirror)
    result = harness.install_in_vm(kit, target_image, plan, tmp_path_factory.mktemp("install"))
    print(f"install in the VM (both runs, boot included): {result.seconds:.0f} s", file=sys.stderr)
    return result


def test_loop_device_install_on_this_host(target_image: Path, tmp_path: Path) -> None:
    problem = device_mapper_error()
    if problem:
        pytest.skip(f"device-mapper refused on this host (`dmsetup version`: {problem}); "
                    "the same install runs in a QEMU VM instead: see test_install_*")
    image = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", harness.DISK_SIZE, str(image)], check=True)
    loop = subprocess.run(["losetup", "--find", "--show", "--partscan", str(image)], capture_output=True,
                          text=True, check=True).stdout.strip()
    plan = {"hostname": "hv9.cluster.test", "disk": loop, "image": str(target_image), "boot_mode": "both",
            "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcnRlc3RzMDAw t@t"],
            "network": {"interface": "ens4"}}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    try:
        proc = subprocess.run([sys.executable, "-m", "installer", "run", str(tmp_path / "plan.json"),
                               "--target", str(tmp_path / "target"), "--log", str(tmp_path / "log"),
                               "--report", str(tmp_path / "report.json")], capture_output=True, text=True,
                              cwd=harness.REPO, timeout=900)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    with harness.MountedDisk(image, tmp_path / "mnt") as disk:
        root = disk.mount(disk.volumes["root"], "root")
        assert "hv9" in (root / "etc/hostname").read_text()


def test_install_finishes_over_a_half_done_run(installed: harness.InstallResult) -> None:
    assert installed.rc_half == 4 and installed.events_half[-1] == {**installed.events_half[-1], "event": "stopped",
                                                                   "step": "mount"}
    assert installed.rc_full == 0, installed.console[-3000:]
    final = installed.events_full[-1]
    assert final["event"] == "done" and final["report"] == installed.report
    release = [e for e in installed.events_full if e.get("step") == "release"]
    assert release, "the second run starts by releasing the first run's mounts and vgx"
    report = installed.report
    assert report["disk"]["serial"] == "pvc-target" and report["disk"]["path"] == "/dev/vdc"
    assert "/dev/disk/by-id/virtio-pvc-target" in report["disk"]["links"]
    assert report["boot_modes"] == ["uefi", "bios"] and report["macs"] == {"enp0s5": vm.NIC_MAC}
    assert report["secure_boot_chain"] == "signed"
    assert report["network"]["interface"] == "enp0s5"
    assert {"os", "bootloader", "host-keys"} <= set(report["step_seconds"])
    assert report["ssh_host_keys_fake"] is False and len(report["ssh_host_keys"]) >= 2


def test_install_layout_and_files_on_the_disk(installed: harness.InstallResult, install_keys: tuple[Path, str],
                                              debian_mirror: str, target_image: Path, tmp_path: Path) -> None:
    key, root_hash = install_keys
    with harness.MountedDisk(installed.disk, tmp_path / "mnt") as disk:
        assert list(disk.partitions) == ["bios", "efi", "boot", "pvc-lvm"]
        assert disk.partitions["bios"][1] == 32 * 2**20 and disk.partitions["efi"][1] == 64 * 2**20
        sizes = {n: s // 2**30 for n, (_, s) in disk.volumes.items()}
        assert sizes == {"root": 8, "ceph": 4, "zookeeper": 8, "swap": 8}
        uuids = {name: disk.blkid(disk.volumes[name])["UUID"] for name in ("root", "ceph", "zookeeper", "swap")}
        uuids["boot"] = disk.blkid(disk.partitions["boot"])["UUID"]
        uuids["efi"] = disk.blkid(disk.partitions["efi"])["UUID"]
        root = disk.mount(disk.volumes["root"], "root")
        boot = disk.mount(disk.partitions["boot"], "boot")
        fstab = {line.split()[1]: line.split()[0] for line in (root / "etc/fstab").read_text().splitlines()
                 if line.startswith("UUID=")}
        assert fstab == {"/": f"UUID={uuids['root']}", "/boot": f"UUID={uuids['boot']}",
                         "/boot/efi": f"UUID={uuids['efi']}", "/var/lib/ceph": f"UUID={uuids['ceph']}",
                         "/var/lib/zookeeper": f"UUID={uuids['zookeeper']}", "none": f"UUID={uuids['swap']}"}
        passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
        assert passwd["deploy"][2:4] == ["200", "37"] and passwd["deploy"][5] == "/var/home/deploy"
        assert "deploy" in next(line for line in (root / "etc/group").read_text().splitlines()
                                if line.startswith("sudo:"))
        keys_file = root / "var/home/deploy/.ssh/authorized_keys"
        assert keys_file.read_text().strip() == key.with_suffix(".pub").read_text().strip()
        assert oct(keys_file.stat().st_mode & 0o777) == "0o600" and keys_file.stat().st_uid == 200
        shadow = {line.split(":")[0]: line.split(":")[1] for line in (root / "etc/shadow").read_text().splitlines()}
        assert shadow["root"] == root_hash
        assert "NOPASSWD: ALL" in (root / "etc/sudoers.d/90-pvc-deploy").read_text()
        assert (root / "etc/hostname").read_text() == "hv1\n"
        assert "10.0.2.15\thv1.cluster.test hv1" in (root / "etc/hosts").read_text()
        assert not (root / "etc/resolv.conf").is_symlink()
        assert (root / "etc/resolv.conf").read_text() == "nameserver 10.0.2.3\n"
        net = (root / "etc/network/interfaces.d/enp0s5").read_text()
        assert "iface enp0s5 inet static" in net and "address 10.0.2.15" in net and "gateway 10.0.2.2" in net
        sources = (root / "etc/apt/sources.list.d/debian.sources").read_text()
        assert f"URIs: {debian_mirror}\nSuites: bookworm bookworm-updates" in sources
        assert "Suites: bookworm-security\nComponents: main contrib non-free-firmware" in sources
        assert not (root / "etc/apt/sources.list").exists()
        assert "blacklist hpwdt" in (root / "etc/modprobe.d/pvc-blacklist.conf").read_text()
        public = sorted((root / "etc/ssh").glob("ssh_host_*_key.pub"))
        assert [p.read_text().strip() for p in public] == installed.report["ssh_host_keys"]
        assert "serial:pvc-target" in (root / "var/log/pvc-install.log").read_text()
        grub = boot / "grub"
        assert (grub / "i386-pc/core.img").exists() and (grub / "x86_64-efi").is_dir()
        assert "root=/dev/mapper/vgx-root" in (grub / "grub.cfg").read_text()
        assert "blacklist=hpwdt" in (grub / "grub.cfg").read_text()
    esp_image = f"{installed.disk}@@{disk.partitions['efi'][0]}"
    esp = subprocess.run(["mdir", "-/", "-b", "-i", esp_image, "::/"], capture_output=True, text=True,
                         check=True).stdout.split()
    # Debian's signed chain on both paths: shim first, the signed GRUB beside it
    assert {"::/EFI/debian/shimx64.efi", "::/EFI/debian/grubx64.efi", "::/EFI/BOOT/BOOTX64.EFI",
            "::/EFI/BOOT/grubx64.efi"} <= set(esp), esp
    shim = subprocess.run(["unsquashfs", "-cat", str(target_image), "usr/lib/shim/shimx64.efi.signed"],
                          capture_output=True, check=True).stdout
    for path in ("::/EFI/BOOT/BOOTX64.EFI", "::/EFI/debian/shimx64.efi"):
        copy = subprocess.run(["mtype", "-i", esp_image, path], capture_output=True, check=True).stdout
        assert copy == shim, f"{path} is not Debian's signed shim"


@pytest.mark.parametrize("firmware", ["uefi", "bios"])
def test_installed_disk_boots_and_ssh_answers_with_the_reported_key(
        installed: harness.InstallResult, install_keys: tuple[Path, str], firmware: str, tmp_path: Path) -> None:
    key, _ = install_keys
    out = vm.boot_and_check(installed.disk, firmware, tmp_path, installed.report["ssh_host_keys"], key, "deploy",
                            "hostname; sudo -n id -u; findmnt -no SOURCE /; ls /sys/firmware/efi >/dev/null "
                            "2>&1 && echo efi || echo bios; ip -4 -br addr show enp0s5")
    lines = out.splitlines()
    assert lines[:4] == ["hv1", "0", "/dev/mapper/vgx-root", "efi" if firmware == "uefi" else "bios"], out
    assert "10.0.2.15/24" in lines[4]


def test_installed_disk_boots_under_secure_boot(installed: harness.InstallResult, install_keys: tuple[Path, str],
                                                tmp_path: Path) -> None:
    """OVMF enforcing Secure Boot with Microsoft's keys and a fresh NVRAM: the removable-media path
    (shim, signed GRUB, signed kernel) boots to SSH with the reported host key."""
    key, _ = install_keys
    out = vm.boot_and_check(installed.disk, "uefi-sb", tmp_path, installed.report["ssh_host_keys"], key, "deploy",
                            f"findmnt -no SOURCE /; od -An -t u1 {ovmf.SECURE_BOOT_VAR}; "
                            "cat /sys/kernel/security/lockdown")
    root, secure_boot, lockdown = out.splitlines()[:3]
    assert root == "/dev/mapper/vgx-root"
    assert secure_boot.split()[-1] == "1", f"the firmware does not enforce Secure Boot: {secure_boot}"
    assert "[none]" not in lockdown, lockdown  # Debian's kernel locks itself down under Secure Boot
    assert ovmf.KERNEL_SAYS_SECURE_BOOT in (tmp_path / "serial-uefi-sb.log").read_text(errors="replace")
