"""The target image: a bootable installed-system root, built by debootstrap and cached by content."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from iso.build import build_target_image

pytestmark = pytest.mark.slow


def _listing(image: Path) -> set[str]:
    out = subprocess.run(["unsquashfs", "-lc", "-d", "", str(image)], capture_output=True, text=True, check=True)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


def _cat(image: Path, path: str) -> str:
    return subprocess.run(["unsquashfs", "-cat", str(image), path], capture_output=True, text=True,
                          check=True).stdout


def test_target_image_is_a_bootable_pvc_base_root(target_image: Path) -> None:
    files = _listing(target_image)
    assert any(f.startswith("/boot/vmlinuz-") for f in files)
    assert any(f.startswith("/boot/initrd.img-") for f in files)
    for needed in ("/usr/lib/grub/x86_64-efi/linux.mod", "/usr/lib/grub/i386-pc/boot.img", "/usr/sbin/grub-install",
                   "/usr/sbin/update-grub", "/usr/bin/efibootmgr", "/usr/sbin/sshd", "/usr/bin/sudo",
                   "/usr/bin/python", "/usr/sbin/ifup", "/usr/sbin/vconfig", "/usr/sbin/lvm", "/usr/sbin/mkfs.xfs",
                   "/usr/sbin/mkfs.vfat", "/usr/bin/ipmitool", "/usr/sbin/chronyd", "/usr/bin/zstd",
                   "/usr/share/initramfs-tools/hooks/lvm2"):
        assert needed in files, needed
    assert any("bnx2x" in f for f in files if f.startswith("/usr/lib/firmware/"))
    assert not [f for f in files if f.startswith("/etc/ssh/ssh_host_")], "host keys must be made per node"
    assert not [f for f in files if f.startswith("/lib/live/boot")], "no live-boot in the installed system"
    assert "MODULES=most" in _cat(target_image, "etc/initramfs-tools/conf.d/pvc.conf")
    assert "blacklist hpwdt" in _cat(target_image, "etc/modprobe.d/pvc-blacklist.conf")


def test_target_image_is_cached_by_content(target_image: Path, debian_mirror: str) -> None:
    before = target_image.stat().st_mtime_ns
    again = build_target_image(target_image.parent.parent, mirror=debian_mirror)
    assert again == target_image
    assert again.stat().st_mtime_ns == before
