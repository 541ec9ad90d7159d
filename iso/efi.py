"""efiboot.img: the ISO's EFI system partition, booting through Debian's signed chain.

UEFI firmware with Secure Boot on runs only what a key in its db signed: Microsoft's UEFI CA signs
Debian's shim, shim carries Debian's CA, which signs Debian's GRUB and kernel. So the image holds,
in the removable-media path every firmware looks at:

    EFI/BOOT/BOOTX64.EFI   shimx64.efi.signed (shim-signed)
    EFI/BOOT/grubx64.efi   gcdx64.efi.signed (grub-efi-amd64-signed): the CD build of GRUB, which
                           finds the medium by /.disk/info and reads /boot/grub/grub.cfg from it
    EFI/BOOT/mmx64.efi     MokManager (shim-helpers-amd64-signed), which shim starts when asked to

Nothing is built or signed here: the three files come out of the target image, where apt installed
them from the Debian mirror. fbx64.efi (shim's fallback) is left out on purpose: on a medium it
would write a boot entry into the node's NVRAM. With Secure Boot off the same chain boots as well.

`chain="unsigned"` is the test-only switch: a standalone GRUB made here by grub-mkstandalone, which
Secure Boot firmware must refuse (tests/iso/test_secure_boot.py proves the refusal).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Literal

from iso.cache import atomic_output, content_key, file_sha256
from iso.chroot import fresh_dir, run
from iso.errors import BuildError
from iso.target import StageResult

EfiChain = Literal["signed", "unsigned"]

# CD GRUB's built-in config searches for this file to find the medium (debian/build-efi-images in grub2)
DISK_INFO = ".disk/info"
# (path in the target image, name in EFI/BOOT)
SIGNED_CHAIN = (
    ("usr/lib/shim/shimx64.efi.signed", "BOOTX64.EFI"),
    ("usr/lib/grub/x86_64-efi-signed/gcdx64.efi.signed", "grubx64.efi"),
    ("usr/lib/shim/mmx64.efi.signed", "mmx64.efi"),
)
MARKER = ".pvc-installer"  # the unsigned GRUB finds the medium by it
UNSIGNED_EMBED_CFG = f"""search --no-floppy --set=root --file /{MARKER}
set prefix=($root)/boot/grub
configfile ($root)/boot/grub/grub.cfg
"""
UNSIGNED_MODULES = "part_gpt part_msdos iso9660 fat search search_fs_file linux normal configfile serial terminal"
FAT_KIB = 12 * 1024  # room for shim, CD GRUB and MokManager (about 5.8 MB) with margin


def boot_loader_stage(cache_dir: Path, target_image: Path, log: Path, chain: EfiChain = "signed") -> StageResult:
    """efiboot.img for the ISO, cached by the content of the loaders it holds."""
    start = time.monotonic()
    work = fresh_dir(cache_dir / "work" / "efi")
    loaders = _signed_loaders(target_image, work, log) if chain == "signed" else _unsigned_loader(work, log)
    key = content_key("efi-v2", chain, *(f"{name}:{file_sha256(path)}" for path, name in loaders))
    out = cache_dir / "boot" / f"efiboot-{key}.img"
    cached = out.is_file()
    if not cached:
        _fat_image(out, loaders, log)
    shutil.rmtree(work)
    return StageResult("boot-loader", out, time.monotonic() - start, cached=cached)


def _signed_loaders(target_image: Path, work: Path, log: Path) -> list[tuple[Path, str]]:
    """Debian's signed shim, CD GRUB and MokManager, read out of the target image's squashfs."""
    tree = work / "signed"
    run(["unsquashfs", "-no-progress", "-quiet", "-d", tree, target_image, *(path for path, _ in SIGNED_CHAIN)],
        phase="boot-loader", log=log)
    loaders = [(tree / path, name) for path, name in SIGNED_CHAIN]
    missing = [str(path.relative_to(tree)) for path, _ in loaders if not path.is_file()]
    if missing:
        raise BuildError(f"the target image lacks {', '.join(missing)}", phase="boot-loader",
                         hint="its packages include shim-signed and grub-efi-amd64-signed; rebuild it with "
                              "pvcctl iso build (the cache key changes with the package list)")
    return loaders


def _unsigned_loader(work: Path, log: Path) -> list[tuple[Path, str]]:
    """Test only: a GRUB built on this machine, signed by nobody."""
    (work / "grub-embed.cfg").write_text(UNSIGNED_EMBED_CFG)
    run(["grub-mkstandalone", "-O", "x86_64-efi", f"--modules={UNSIGNED_MODULES}", "--locales=", "--themes=",
         "--fonts=", "-o", work / "bootx64.efi", f"boot/grub/grub.cfg={work / 'grub-embed.cfg'}"],
        phase="boot-loader", log=log)
    return [(work / "bootx64.efi", "BOOTX64.EFI")]


def _fat_image(out: Path, loaders: list[tuple[Path, str]], log: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as partial:
        run(["mkfs.vfat", "-C", partial, str(FAT_KIB)], phase="boot-loader", log=log)
        run(["mmd", "-i", partial, "::/EFI", "::/EFI/BOOT"], phase="boot-loader", log=log)
        for path, name in loaders:
            run(["mcopy", "-i", partial, path, f"::/EFI/BOOT/{name}"], phase="boot-loader", log=log)


def efi_listing(efiboot: Path) -> list[str]:
    """The files in an efiboot.img's EFI/BOOT (for reports and tests)."""
    out = subprocess.run(["mdir", "-b", "-i", str(efiboot), "::/EFI/BOOT"], capture_output=True, text=True,
                         check=True).stdout
    return sorted(line.rsplit("/", 1)[-1] for line in out.split())
