"""The root of the installer tests' live VM (tests/installer/vm.py): debootstrap of bookworm with
what the installer runs on a live system (sgdisk, LVM, mkfs, unsquashfs, debootstrap for the
baseline bench) plus a kernel whose generic initramfs boots it. It could also stand in for the
target image (both GRUB binary sets, sshd, sudo, python3, ifupdown; hpwdt blacklisted).
Packed as a zstd squashfs, cached by package list.

Run by hand: `python3 -m tests.installer.standin CACHE_DIR` (as root).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = [
    "linux-image-amd64", "initramfs-tools", "zstd", "lvm2", "grub-efi-amd64-bin", "grub-pc-bin",
    "grub2-common", "efibootmgr", "openssh-server", "sudo", "python3", "ifupdown",
    "isc-dhcp-client", "vlan", "ifenslave", "systemd-sysv", "udev", "kmod", "iproute2",
    "dosfstools", "e2fsprogs", "xfsprogs", "fdisk", "gdisk", "squashfs-tools", "ca-certificates",
    "netbase", "procps", "debootstrap", "wget", "gpgv", "debian-archive-keyring",
]


def debian_mirror() -> str:
    """The machine's own Debian mirror, read from its apt sources (never hard-coded)."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            match = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+\S+", line)
            if match and "security" not in match.group(1):
                return match.group(1)
    raise RuntimeError("no Debian mirror found in /etc/apt/sources.list{,.d/debian.sources}")


def build_standin_image(cache_dir: Path, mirror: str | None = None) -> Path:
    """The squashfs, built once per package list and kept in cache_dir."""
    mirror = mirror or debian_mirror()
    key = hashlib.sha256(" ".join([mirror, *PACKAGES, "v2"]).encode()).hexdigest()[:12]
    image = cache_dir / f"standin-{key}.squashfs"
    if image.exists():
        return image
    root = cache_dir / f"standin-{key}.root"
    shutil.rmtree(root, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    heavy = ["flock", "/tmp/pvcctl-heavy.lock"]
    subprocess.run([*heavy, "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                    "bookworm", str(root), mirror], check=True, stdout=subprocess.DEVNULL)
    # The image carries the blacklist and a generic initramfs, so the install rebuilds nothing.
    (root / "etc/modprobe.d/pvc-blacklist.conf").write_text("blacklist hpwdt\n")
    subprocess.run([*heavy, "chroot", str(root), "update-initramfs", "-u", "-k", "all"], check=True,
                   stdout=subprocess.DEVNULL, env={**os.environ, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    for key_file in (root / "etc/ssh").glob("ssh_host_*"):
        key_file.unlink()  # every install generates its own
    (root / "etc/machine-id").write_text("")
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
    partial = image.with_suffix(".partial")
    subprocess.run([*heavy, "mksquashfs", str(root), str(partial), "-comp", "zstd", "-Xcompression-level",
                    "3", "-noappend", "-quiet"], check=True, stdout=subprocess.DEVNULL)
    partial.rename(image)
    shutil.rmtree(root)
    return image


if __name__ == "__main__":
    print(build_standin_image(Path(sys.argv[1])))
