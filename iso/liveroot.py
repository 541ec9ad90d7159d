"""The live root: the target root plus live-boot and the installer's tools, as a squashfs.

Built on top of the target image (unsquashed), so the two share one debootstrap and one kernel;
its cache key includes the target's. Everything pvcctl-specific (host key, scripts, units, the
installer) is not here but in the overlay layer (iso/overlay.py), so changing it never rebuilds
this stage.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from iso.cache import atomic_output, content_key, remove_tree
from iso.chroot import Chroot, Source, fresh_dir, run
from iso.target import StageResult, recipe, squash, target_key

LIVE_PACKAGES = (
    "live-boot", "live-boot-initramfs-tools", "systemd-resolved", "openssh-server",
    "parted", "gdisk", "lvm2", "dosfstools", "e2fsprogs", "xfsprogs", "debootstrap", "squashfs-tools",
    "grub-efi-amd64-bin", "grub-pc-bin", "efibootmgr", "ipmitool", "nvme-cli", "lsscsi", "hdparm",
    "curl", "jq", "psmisc", "python3", "firmware-bnx2", "firmware-bnx2x",
)

_SSHD_CONFIG = (
    "# pvcctl live system: root by the controller's key only\n"
    "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
    "UseDNS no\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
)


@dataclass(frozen=True)
class LiveRoot:
    """The live root's files in the cache: squashfs, kernel and initrd."""

    squashfs: Path
    vmlinuz: Path
    initrd: Path


def live_key(source: Source) -> str:
    return content_key("live-v2", target_key(source), LIVE_PACKAGES, _SSHD_CONFIG,
                       recipe(live_root_stage, _install_live_packages, _configure_live_root))


def live_paths(cache_dir: Path, source: Source) -> LiveRoot:
    stage = cache_dir / "live" / live_key(source)
    return LiveRoot(stage / "filesystem.squashfs", stage / "vmlinuz", stage / "initrd.img")


def live_root_stage(cache_dir: Path, source: Source, target_image: Path, log: Path) -> StageResult:
    start = time.monotonic()
    paths = live_paths(cache_dir, source)
    stage_dir = paths.squashfs.parent
    if stage_dir.is_dir():
        return StageResult("live-root", stage_dir, time.monotonic() - start, cached=True)
    root = fresh_dir(cache_dir / "work" / "live-root")
    root.rmdir()  # unsquashfs makes it
    run(["unsquashfs", "-no-progress", "-d", root, target_image], phase="unsquashfs", log=log)
    _install_live_packages(root, source, log)
    _configure_live_root(root)
    with atomic_output(stage_dir) as partial:
        partial.mkdir()
        squash(root, partial / "filesystem.squashfs", log=log, exclude_boot=True)
        shutil.copy(_newest(root / "boot", "vmlinuz-*"), partial / "vmlinuz")
        shutil.copy(_newest(root / "boot", "initrd.img-*"), partial / "initrd.img")
    remove_tree(root)
    return StageResult("live-root", stage_dir, time.monotonic() - start, cached=False)


def _install_live_packages(root: Path, source: Source, log: Path) -> None:
    with Chroot(root, source, log).mounted() as chroot:
        chroot.run("apt-get", "update", "-q", phase="apt-update")
        chroot.apt_install(LIVE_PACKAGES, phase="apt-install")
        chroot.fix_resolv()  # systemd-resolved replaced it by a symlink that is dangling in the chroot
        chroot.run("systemctl", "enable", "systemd-networkd", "systemd-resolved", "ssh", phase="configure")
        chroot.run("update-initramfs", "-u", "-k", "all", phase="initramfs")
        chroot.clean()


def _configure_live_root(root: Path) -> None:
    (root / "etc/hostname").write_text("pvc-live\n")
    (root / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tpvc-live\n::1\tlocalhost ip6-localhost\n")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()  # the build's own key comes in the overlay layer
    (root / "etc/ssh/sshd_config.d/10-pvc-live.conf").write_text(_SSHD_CONFIG)
    (root / "etc/network/interfaces").write_text("auto lo\niface lo inet loopback\n")  # networkd owns NICs
    resolv = root / "etc/resolv.conf"
    resolv.unlink(missing_ok=True)
    resolv.symlink_to("../run/systemd/resolve/stub-resolv.conf")
    (root / "etc/machine-id").write_text("")


def _newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(f"no {pattern} in {folder}")
    return found[-1]
