"""The pvc-installer disk layout: GPT with BIOS boot, ESP, /boot and one LVM PV holding `vgx`.

Logical volume sizes follow pvc-installer: a disk of 100 GiB or more gets root 32, ceph 8,
zookeeper 32 and swap 16 GiB; a smaller one 8/4/8/8 GiB. The rest of the VG stays free.
"""

from __future__ import annotations

from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2
VG_NAME = "vgx"
LARGE_DISK = 100 * GIB

# gdisk type codes, as pvc-installer uses them (sgdisk takes them without keystroke scripts).
BIOS_BOOT, ESP, LINUX_FS, LINUX_LVM = "ef02", "ef00", "8300", "8e00"


@dataclass(frozen=True)
class Partition:
    number: int
    name: str
    size: int | None  # bytes; None takes the rest of the disk
    type_code: str


@dataclass(frozen=True)
class Volume:
    name: str
    size: int
    mountpoint: str | None  # None for swap


PARTITIONS = (
    Partition(1, "bios", 32 * MIB, BIOS_BOOT),
    Partition(2, "efi", 64 * MIB, ESP),
    Partition(3, "boot", 928 * MIB, LINUX_FS),
    Partition(4, "pvc-lvm", None, LINUX_LVM),
)
ALIGNMENT_AND_GPT = 2 * MIB  # 1 MiB before the first partition, GPT backup at the end, rounding
LVM_METADATA = 4 * MIB


def volumes(disk_size: int) -> tuple[Volume, ...]:
    large = disk_size >= LARGE_DISK
    sizes = (32, 8, 32, 16) if large else (8, 4, 8, 8)
    names = (("root", "/"), ("ceph", "/var/lib/ceph"), ("zookeeper", "/var/lib/zookeeper"), ("swap", None))
    return tuple(Volume(name, size * GIB, mount) for (name, mount), size in zip(names, sizes, strict=True))


def minimum_disk_size() -> int:
    """The smallest disk the small layout fits on (about 29 GiB; pvc-installer asks for 30 GB)."""
    fixed = sum(p.size or 0 for p in PARTITIONS)
    return fixed + ALIGNMENT_AND_GPT + LVM_METADATA + sum(v.size for v in volumes(0))


def sgdisk_arguments() -> list[str]:
    """One sgdisk call creating the whole table (partitions 1 MiB aligned, the last takes the rest)."""
    args = []
    for part in PARTITIONS:
        end = f"+{part.size // 1024}K" if part.size else "0"
        args += [f"--new={part.number}:0:{end}", f"--typecode={part.number}:{part.type_code}",
                 f"--change-name={part.number}:{part.name}"]
    return args


def partition_path(disk: str, number: int) -> str:
    """/dev/sda → /dev/sda3; /dev/nvme0n1, /dev/loop0, /dev/mmcblk0 → ...p3 (a digit-ending name)."""
    return f"{disk}p{number}" if disk[-1].isdigit() else f"{disk}{number}"
