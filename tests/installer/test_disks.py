"""Disk choice by hint, on recorded lsblk + udev output of four kinds of machine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from installer.disks import Disk, DiskRefused, boot_devices, choose_disk, disks_from_lsblk
from installer.layout import GIB, minimum_disk_size
from installer.plan import DiskHint

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "installer"


def machine(name: str) -> tuple[list[Disk], set[str]]:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    return disks_from_lsblk(data["lsblk"], data["udev"]), set(data["boot_devices"])


def choose(name: str, hint: str) -> Disk:
    disks, booted = machine(name)
    return choose_disk(disks, DiskHint.parse(hint), boot_devices=booted, min_size=minimum_disk_size())


@pytest.mark.parametrize(("name", "hint", "path"), [
    ("sata", "/dev/sdb", "/dev/sdb"),
    ("sata", "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A", "/dev/sda"),
    ("sata", "/dev/disk/by-path/pci-0000:00:17.0-ata-2", "/dev/sdb"),
    ("sata", "serial:S3Z1NB0K654321B", "/dev/sdb"),
    ("sata", "serial:s3z1nb0k654321b", "/dev/sdb"),
    ("sata", "wwn:0x5002538e40a1b2c3", "/dev/sda"),
    ("sata", "serial:S3Z1NB0K123456A", "/dev/sda"),
    ("sas-raid", "smallest", "/dev/sda"),
    ("sas-raid", "largest", "/dev/sdb"),
    ("sas-raid", "model:PERC H730P:480G", "/dev/sda"),
    ("sas-raid", "model:perc:4T", "/dev/sdb"),
    ("sas-raid", "serial:6d0946606f0f8a002a00b1c2d3e4f506", "/dev/sda"),  # udev ID_SERIAL_SHORT (NAA)
    ("sas-raid", "serial:006c2d4a0f3b4e1f2a00b1c2d3e4f506", "/dev/sda"),  # the controller's serial
    ("sas-raid", "wwn:6d0946606f0f8a002b00b1c2d3e4f507", "/dev/sdb"),
    ("sas-raid", "/dev/disk/by-id/scsi-36d0946606f0f8a002b00b1c2d3e4f507", "/dev/sdb"),
    ("nvme", "model:MZQL2960:960G", "/dev/nvme1n1"),
    ("nvme", "model:Dell Ent NVMe:1.6T", "/dev/nvme0n1"),
    ("nvme", "wwn:0025388b91b2c3d4", "/dev/nvme1n1"),
    ("nvme", "smallest", "/dev/nvme1n1"),
    ("nvme", "/dev/disk/by-id/nvme-eui.36344630529001230025384500000001", "/dev/nvme0n1"),
    ("virtio", "serial:pvc-disk-1", "/dev/vda"),
    ("virtio", "/dev/disk/by-path/virtio-pci-0000:00:05.0", "/dev/vdb"),
    ("virtio", "largest", "/dev/vdb"),
])
def test_hint_names_exactly_this_disk(name: str, hint: str, path: str) -> None:
    assert choose(name, hint).path == path


def test_model_size_within_three_percent_only() -> None:
    assert choose("nvme", "model:MZQL2:985G").path == "/dev/nvme1n1"  # 960.2 GB is 2.5% under 985 GB
    with pytest.raises(DiskRefused, match="no disk matches"):
        choose("nvme", "model:MZQL2:1000G")  # 4% off


@pytest.mark.parametrize(("name", "hint", "reason"), [
    ("sata", "model:Samsung SSD 860", "2 disks match"),  # identical models: ambiguous
    ("sata", "wwn:5002538e40ffffff", "no disk matches"),
    ("sas-raid", "model:PERC", "2 disks match"),
    ("sata", "/dev/sr0", "booted from"),  # the virtual CD the live system runs from
    ("sata", "/dev/disk/by-label/PVC_INSTALLER", "booted from"),
    ("sata", "/dev/sda4", "is a partition"),
    ("virtio", "serial:small", "smaller than"),
    ("virtio", "smallest", "smaller than"),  # smallest is vdc at 10 GiB: refused, not skipped
    ("nvme", "/dev/nvme2n1", "no disk matches"),
])
def test_wrong_or_ambiguous_hint_is_refused(name: str, hint: str, reason: str) -> None:
    with pytest.raises(DiskRefused, match=reason):
        choose(name, hint)


def test_refusal_lists_candidates_with_model_size_serial() -> None:
    with pytest.raises(DiskRefused) as err:
        choose("sata", "model:Samsung")
    text = str(err.value)
    for expected in ("/dev/sda", "/dev/sdb", "Samsung SSD 860 EVO 500GB", "465.8 GiB", "S3Z1NB0K123456A",
                     "S3Z1NB0K654321B"):
        assert expected in text


def test_smallest_and_largest_skip_removable_disks() -> None:
    # sdc (a 16 GB USB stick) is the smallest disk on the SATA machine, but removable
    with pytest.raises(DiskRefused, match="2 disks match smallest"):
        choose("sata", "smallest")  # the two identical SSDs tie
    assert choose("sas-raid", "smallest").path == "/dev/sda"  # not the 16 GB internal SD module


def test_boot_device_found_from_proc_mounts() -> None:
    lsblk = {"blockdevices": [
        {"name": "sda", "path": "/dev/sda", "type": "disk", "children": [{"name": "sda1", "path": "/dev/sda1"}]},
        {"name": "sdb", "path": "/dev/sdb", "type": "disk"},
    ]}
    mounts = "/dev/sda1 /run/live/medium iso9660 ro 0 0\noverlay / overlay rw 0 0\n"
    assert boot_devices(lsblk, mounts) == {"/dev/sda"}


def test_loop_devices_only_by_path() -> None:
    lsblk = {"blockdevices": [{"name": "loop0", "path": "/dev/loop0", "type": "loop", "size": 40 * GIB},
                              {"name": "sda", "path": "/dev/sda", "type": "disk", "size": 35 * GIB}]}
    disks = disks_from_lsblk(lsblk)
    assert choose_disk(disks, DiskHint.parse("largest"), boot_devices=set(), min_size=1).path == "/dev/sda"
    assert choose_disk(disks, DiskHint.parse("/dev/loop0"), boot_devices=set(), min_size=1).path == "/dev/loop0"
