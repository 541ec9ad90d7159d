"""The target image: the installed PVC base system's root, as a squashfs.

The installer's `image` method unpacks it onto the disk, so an install needs no network and no
package installs. It boots as is: a generic initramfs (MODULES=most, lvm2), both GRUB platforms'
files so the installer can `grub-install` for UEFI and BIOS from a chroot, and no SSH host keys
(the installer makes them per node). The live root is built on top of this root (iso/liveroot.py).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from pathlib import Path

from core.mirror import resolve_mirrors
from iso.cache import atomic_output, cache_lock, content_key, remove_tree
from iso.chroot import Chroot, Source, debootstrap, fresh_dir, run
from iso.tools import TARGET_TOOLS, require_root, require_tools

TARGET_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "zstd", "systemd-sysv", "udev", "kmod", "dbus",
    "grub-efi-amd64-bin", "grub-pc-bin", "grub2-common", "efibootmgr",
    # Debian's signed boot chain (Secure Boot): the installer's grub-install --uefi-secure-boot puts
    # shim and the signed GRUB on the disk; the ISO's EFI image takes them from here (iso/efi.py)
    "shim-signed", "grub-efi-amd64-signed",
    "openssh-server", "sudo", "python3", "python-is-python3", "locales",
    "ifupdown", "isc-dhcp-client", "vlan", "ifenslave", "iproute2", "iputils-ping", "netbase",
    "lvm2", "xfsprogs", "e2fsprogs", "dosfstools", "ca-certificates", "curl", "gpg", "lsb-release",
    "ipmitool", "chrony", "less", "procps", "nano",
    # firmware pvc-installer ships (Broadcom NICs common in PVC nodes), from non-free-firmware
    "firmware-bnx2", "firmware-bnx2x",
)

# Files that decide the target root, beyond the package list (each is part of the cache key).
_INITRAMFS_CONF = "MODULES=most\nCOMPRESS=zstd\n"
_BLACKLIST = "# HP watchdog resets servers during installs (as pvc-installer does)\nblacklist hpwdt\n"
SQUASHFS_LEVEL = 3  # zstd level 3: 4 s instead of 55 s at the default level, ~15% larger


@dataclass(frozen=True)
class StageResult:
    """One stage's output, whether it came from the cache, and how long it took."""

    name: str
    path: Path
    seconds: float
    cached: bool


def recipe(*steps: object) -> tuple[str, ...]:
    """The source of the functions that make a stage: part of its key, so changing how a stage
    is made rebuilds it, while edits elsewhere in the module do not throw away a 2-minute build."""
    return tuple(inspect.getsource(step) for step in steps)  # type: ignore[arg-type]


def target_key(source: Source) -> str:
    return content_key("target-v2", source.release, source.mirrors.debian, source.mirrors.security,
                       TARGET_PACKAGES, _INITRAMFS_CONF, _BLACKLIST, SQUASHFS_LEVEL,
                       recipe(build_target_root, finish_target_config, squash, debootstrap, Chroot, Source))


def build_target_root(root: Path, source: Source, log: Path) -> None:
    """debootstrap + apt + configuration of the target root, in `root` (an empty directory)."""
    debootstrap(root, source, log=log)
    (root / "etc/initramfs-tools/conf.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/initramfs-tools/conf.d/pvc.conf").write_text(_INITRAMFS_CONF)
    (root / "etc/modprobe.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/modprobe.d/pvc-blacklist.conf").write_text(_BLACKLIST)
    with Chroot(root, source, log).mounted() as chroot:
        chroot.run("apt-get", "update", "-q", phase="apt-update")
        chroot.run("apt-get", "-y", "-q", "dist-upgrade", phase="apt-upgrade")
        chroot.apt_install(TARGET_PACKAGES, phase="apt-install")
        chroot.run("update-initramfs", "-u", "-k", "all", phase="initramfs")
        chroot.clean()
    finish_target_config(root)


def finish_target_config(root: Path) -> None:
    """What every installed node needs and the installer does not set per node."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # the installer generates host keys per node
    (root / "etc/machine-id").write_text("")  # a fresh id on first boot
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/default/grub.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/default/grub.d/pvc-console.cfg").write_text(
        'GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200n8"\n'
        'GRUB_TERMINAL="console serial"\nGRUB_SERIAL_COMMAND="serial --speed=115200"\n')


def squash(root: Path, out: Path, *, log: Path, exclude_boot: bool = False) -> None:
    """mksquashfs `root` into `out` atomically (zstd, fast level)."""
    with atomic_output(out) as partial:
        extra = ["-e", "boot"] if exclude_boot else []
        run(["mksquashfs", root, partial, "-noappend", "-comp", "zstd", "-Xcompression-level",
             str(SQUASHFS_LEVEL), "-no-progress", *extra], phase="mksquashfs", log=log)


def build_target_image(cache_dir: Path, *, mirror: str | None = None, release: str = "bookworm",
                       proxy: str | None = None) -> Path:
    """The squashfs of the installed system's root, built once per content key under cache_dir."""
    source = Source(resolve_mirrors(mirror), release, proxy)
    with cache_lock(cache_dir):
        return target_image_stage(cache_dir, source).path


def target_image_stage(cache_dir: Path, source: Source) -> StageResult:
    start = time.monotonic()
    out = cache_dir / "target" / f"target-{target_key(source)}.squashfs"
    if out.is_file():
        return StageResult("target-image", out, time.monotonic() - start, cached=True)
    require_root("building the target image")
    require_tools(TARGET_TOOLS)
    log = _log_path(cache_dir, "target")
    root = fresh_dir(cache_dir / "work" / "target-root")
    build_target_root(root, source, log)
    squash(root, out, log=log)
    remove_tree(root)
    return StageResult("target-image", out, time.monotonic() - start, cached=False)


def _log_path(cache_dir: Path, name: str) -> Path:
    (cache_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = cache_dir / "logs" / f"{name}.log"
    log.write_text("")
    return log
