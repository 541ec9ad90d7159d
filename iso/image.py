"""The hybrid ISO: isolinux for BIOS, a GRUB EFI image for UEFI, one file tree, made by xorriso.

Layout on the ISO:
    live/vmlinuz, live/initrd.img           the kernel and initramfs (live-boot inside)
    live/filesystem.squashfs                the live root
    live/zz-pvc.squashfs                    pvcctl's overlay layer (stacked on top by live-boot)
    pvc/target.squashfs                     the installed system's root for the `image` method
    pvc/seed.json                           the seed (controller URL, key, nodes), replaceable alone
    isolinux/, boot/grub/                   boot loaders (boot/grub/efiboot.img: iso/efi.py)
    .disk/info, .pvc-installer              mark the medium for the signed and the test-only unsigned GRUB
The kernel line has `toram`: live-boot copies the whole medium to RAM and mounts that copy at
/run/live/medium, so the media can be ejected at any time and /pvc/ stays readable.
`nonetworking` stops live-boot writing a DHCP-everything /etc/network/interfaces: the seed decides.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from iso.cache import atomic_output, content_key
from iso.chroot import fresh_dir, run
from iso.efi import DISK_INFO, MARKER
from iso.target import StageResult

VOLUME_ID = "PVC_INSTALLER"
KERNEL_ARGS = "boot=live toram nonetworking console=tty0 console=ttyS0,115200n8"
NO_RAM_ARGS = "boot=live nonetworking console=tty0 console=ttyS0,115200n8"
TARGET_ON_ISO = "pvc/target.squashfs"
SEED_ON_ISO = "pvc/seed.json"
ISOLINUX_DIR = Path("/usr/lib/ISOLINUX")
SYSLINUX_BIOS = Path("/usr/lib/syslinux/modules/bios")

ISOLINUX_CFG = f"""SERIAL 0 115200
DEFAULT live
PROMPT 0
TIMEOUT 30
LABEL live
  KERNEL /live/vmlinuz
  APPEND initrd=/live/initrd.img {KERNEL_ARGS}
LABEL live-noram
  KERNEL /live/vmlinuz
  APPEND initrd=/live/initrd.img {NO_RAM_ARGS}
"""
GRUB_CFG = f"""serial --speed=115200
terminal_input console serial
terminal_output console serial
set timeout=3
menuentry "PVC live installer" {{
  linux /live/vmlinuz {KERNEL_ARGS}
  initrd /live/initrd.img
}}
menuentry "PVC live installer (medium not copied to RAM)" {{
  linux /live/vmlinuz {NO_RAM_ARGS}
  initrd /live/initrd.img
}}
"""


@dataclass(frozen=True)
class IsoInputs:
    """The built pieces that go on the ISO."""

    vmlinuz: Path
    initrd: Path
    live_squashfs: Path
    overlay: Path
    target: Path
    seed_json: str | None


def iso_key(inputs: IsoInputs, efiboot: Path) -> str:
    # Cached inputs carry their own content key in their names; the seed and boot text count by content.
    return content_key("iso-v1", str(inputs.vmlinuz), str(inputs.initrd), str(inputs.live_squashfs),
                       str(inputs.overlay), str(inputs.target), str(efiboot), inputs.seed_json,
                       ISOLINUX_CFG, GRUB_CFG)


def iso_stage(cache_dir: Path, inputs: IsoInputs, efiboot: Path, out: Path, log: Path) -> StageResult:
    """Write the ISO at `out` (atomically), unless `out` is already this exact build."""
    start = time.monotonic()
    key = iso_key(inputs, efiboot)
    stamp = out.with_name(out.name + ".pvcctl-key")
    if out.is_file() and stamp.is_file() and stamp.read_text().split() == [key, str(out.stat().st_size)]:
        return StageResult("iso", out, time.monotonic() - start, cached=True)
    tree = fresh_dir(cache_dir / "work" / "iso-tree")
    stage_tree(tree, inputs, efiboot)
    with atomic_output(out) as partial:
        run(["xorriso", "-as", "mkisofs", "-iso-level", "3", "-full-iso9660-filenames", "-joliet", "-rational-rock",
             "-volid", VOLUME_ID, "-isohybrid-mbr", ISOLINUX_DIR / "isohdpfx.bin",
             "-eltorito-boot", "isolinux/isolinux.bin", "-eltorito-catalog", "isolinux/boot.cat",
             "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
             "-eltorito-alt-boot", "-e", "boot/grub/efiboot.img", "-no-emul-boot", "-isohybrid-gpt-basdat",
             "-output", partial, tree], phase="iso", log=log)
        partial.chmod(0o600)  # the overlay on it holds the live host's private key
    stamp.write_text(f"{key} {out.stat().st_size}\n")
    shutil.rmtree(tree)
    return StageResult("iso", out, time.monotonic() - start, cached=False)


def stage_tree(tree: Path, inputs: IsoInputs, efiboot: Path) -> None:
    """The ISO's file tree; big files are hard links into the cache, not copies."""
    for folder in ("live", "pvc", "isolinux", "boot/grub"):
        (tree / folder).mkdir(parents=True)
    for source, name in ((inputs.vmlinuz, "live/vmlinuz"), (inputs.initrd, "live/initrd.img"),
                         (inputs.live_squashfs, "live/filesystem.squashfs"), (inputs.overlay, "live/zz-pvc.squashfs"),
                         (inputs.target, TARGET_ON_ISO), (efiboot, "boot/grub/efiboot.img"),
                         (ISOLINUX_DIR / "isolinux.bin", "isolinux/isolinux.bin"),
                         (SYSLINUX_BIOS / "ldlinux.c32", "isolinux/ldlinux.c32")):
        _link_or_copy(source, tree / name)
    (tree / "isolinux/isolinux.cfg").write_text(ISOLINUX_CFG)
    (tree / "boot/grub/grub.cfg").write_text(GRUB_CFG)
    (tree / MARKER).write_text("PVC live installer medium (pvcctl)\n")
    (tree / DISK_INFO).parent.mkdir()
    (tree / DISK_INFO).write_text("PVC live installer (pvcctl)\n")  # Debian's signed CD GRUB looks for it
    if inputs.seed_json is not None:
        (tree / SEED_ON_ISO).write_text(inputs.seed_json)


def _link_or_copy(source: Path, dest: Path) -> None:
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy(source, dest)


def replace_seed(base_iso: Path, seed_json: str, out: Path) -> Path:
    """A copy of base_iso whose seed file is seed_json; boot records and hybrid layout replayed."""
    if not base_iso.is_file():
        from iso.errors import IsoUserError

        raise IsoUserError(f"{base_iso} is not an ISO file; build one first with: pvcctl iso build")
    with atomic_output(out) as partial:
        seed_file = partial.with_name(partial.name + ".seed.json")
        seed_file.write_text(seed_json)
        try:
            run(["xorriso", "-indev", base_iso, "-outdev", partial, "-boot_image", "any", "replay",
                 "-map", seed_file, f"/{SEED_ON_ISO}", "-commit"], phase="iso-seed")
            partial.chmod(0o600)  # the overlay on it holds the live host's private key
        finally:
            seed_file.unlink(missing_ok=True)
    out.with_name(out.name + ".pvcctl-key").unlink(missing_ok=True)
    return out
