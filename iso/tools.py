"""The host tools an ISO build runs, and the Debian package each one comes from."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from iso.errors import IsoUserError

# tool (a command on PATH, or an absolute file) -> the Debian package that ships it
BUILD_TOOLS: dict[str, str] = {
    "debootstrap": "debootstrap",
    "chroot": "coreutils",
    "mksquashfs": "squashfs-tools",
    "unsquashfs": "squashfs-tools",
    "xorriso": "xorriso",
    "grub-mkstandalone": "grub-common",
    "mkfs.vfat": "dosfstools",
    "mmd": "mtools",
    "mcopy": "mtools",
    "/usr/lib/ISOLINUX/isohdpfx.bin": "isolinux",
    "/usr/lib/ISOLINUX/isolinux.bin": "isolinux",
    "/usr/lib/syslinux/modules/bios/ldlinux.c32": "syslinux-common",
    "/usr/lib/grub/x86_64-efi/linux.mod": "grub-efi-amd64-bin",
}
TARGET_TOOLS = ("debootstrap", "chroot", "mksquashfs")


def require_root(what: str = "building the installer ISO") -> None:
    if os.geteuid() != 0:
        raise IsoUserError(f"{what} must run as root (debootstrap, chroot and mounts need it); run it with sudo")


def require_tools(names: tuple[str, ...] | None = None) -> None:
    """Raise naming every missing tool and the Debian packages that bring them."""
    wanted = names if names is not None else tuple(BUILD_TOOLS)
    missing = [n for n in wanted if not (Path(n).is_file() if n.startswith("/") else shutil.which(n))]
    if missing:
        packages = sorted({BUILD_TOOLS[n] for n in missing})
        raise IsoUserError(
            f"missing build tools: {', '.join(missing)}; install them with: apt-get install {' '.join(packages)}"
        )
