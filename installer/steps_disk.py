"""Install steps on the disk: release a previous attempt, wipe, partition, LVM, filesystems, mount.

Each step is safe to run again over a half-done install (a rerun starts by releasing whatever an
earlier run left mounted or active on this disk). Only the chosen disk is ever touched: a volume
group with physical volumes on another disk stops the install instead of being removed.
"""

from __future__ import annotations

import time
from pathlib import Path

from installer import proof
from installer.actions import StepFailed
from installer.configure import lv_device
from installer.context import Install
from installer.layout import VG_NAME, sgdisk_arguments, volumes


def _on_disk(ctx: Install, device: str) -> bool:
    return device == ctx.disk.path or device in ctx.disk.partitions or \
        (device.startswith(ctx.disk.path) and device[len(ctx.disk.path):].lstrip("p").isdigit())


def physical_volumes(ctx: Install) -> list[tuple[str, str]]:
    """(PV, VG) pairs on this machine, from `pvs` (read-only)."""
    out = ctx.actions.run(["pvs", "--noheadings", "--separator", "|", "-o", "pv_name,vg_name"],
                          query=True, check=False)
    pairs = []
    for line in out.splitlines():
        pv, _, vg = line.strip().partition("|")
        if pv:
            pairs.append((pv.strip(), vg.strip()))
    return pairs


def disk_volume_groups(ctx: Install) -> list[str]:
    """VGs living on the chosen disk; refuses one that spans another disk, or another disk's vgx."""
    pairs = physical_volumes(ctx)
    ours = sorted({vg for pv, vg in pairs if vg and _on_disk(ctx, pv)})
    for pv, vg in pairs:
        if vg in ours and not _on_disk(ctx, pv):
            raise StepFailed(f"volume group {vg} on {ctx.disk.path} also uses {pv}; refusing to remove it")
        if vg == VG_NAME and not _on_disk(ctx, pv):
            raise StepFailed(f"another disk ({pv}) already holds a volume group {VG_NAME}; "
                             "remove or rename it first (it is not on the chosen disk, so it is left alone)")
    return ours


def release_previous(ctx: Install) -> None:
    """Unmount the target tree and anything from this disk, turn off its swap, deactivate its VGs."""
    run = ctx.actions.run
    mounts = Path("/proc/mounts").read_text().splitlines() if ctx.actions.mode != "simulate" else []
    vgs = disk_volume_groups(ctx)
    mapper = tuple(f"/dev/mapper/{vg}-" for vg in vgs)
    for line in reversed(mounts):
        source, point = line.split()[:2]
        point = point.replace("\\040", " ")
        if point == str(ctx.target) or point.startswith(f"{ctx.target}/") or _on_disk(ctx, source) \
                or source.startswith(mapper):
            run(["umount", "--lazy", point], check=False)
    swaps = Path("/proc/swaps").read_text().splitlines()[1:] if ctx.actions.real else []
    for line in swaps:
        device = line.split()[0]
        if _on_disk(ctx, device) or device.startswith(mapper) or device.startswith("/dev/dm-"):
            run(["swapoff", device], check=False)
    for vg in vgs:
        run(["vgchange", "--activate", "n", vg])
    ctx.notes["old_volume_groups"] = vgs


def wipe(ctx: Install) -> None:
    ctx.reporter.emit(f"wiping {ctx.disk.describe()}: old LVM, partition table and signatures")
    run = ctx.actions.run
    for vg in disk_volume_groups(ctx):
        run(["vgremove", "--force", "--force", "--yes", vg])
    for pv, _vg in physical_volumes(ctx):
        if _on_disk(ctx, pv):
            run(["pvremove", "--force", "--force", "--yes", pv])
    for part in ctx.disk.partitions:
        run(["wipefs", "--all", "--force", part], check=False)  # gone already after a rerun: fine
    run(["wipefs", "--all", "--force", ctx.disk.path])


def partition(ctx: Install) -> None:
    run = ctx.actions.run
    run(["sgdisk", "--zap-all", ctx.disk.path])
    run(["sgdisk", "--clear", *sgdisk_arguments(), ctx.disk.path])
    run(["partx", "--update", ctx.disk.path], check=False)
    run(["udevadm", "settle"], check=False)
    if ctx.actions.real:
        wanted = [ctx.part(name) for name in ("bios", "efi", "boot", "pvc-lvm")]
        deadline = time.monotonic() + 15
        while not all(Path(p).exists() for p in wanted):
            if time.monotonic() > deadline:
                raise StepFailed(f"partitions {', '.join(wanted)} did not appear after partitioning")
            time.sleep(0.2)


def create_lvm(ctx: Install) -> None:
    run = ctx.actions.run
    pv = ctx.part("pvc-lvm")
    run(["pvcreate", "--force", "--force", "--yes", pv])
    run(["vgcreate", "--force", "--yes", VG_NAME, pv])
    for volume in volumes(ctx.disk.size):
        run(["lvcreate", "--yes", "--wipesignatures", "y", "--zero", "y", "--size", f"{volume.size}b",
             "--name", volume.name, VG_NAME])
    run(["vgchange", "--activate", "y", VG_NAME])
    run(["udevadm", "settle"], check=False)


def make_filesystems(ctx: Install) -> None:
    run = ctx.actions.run
    fs = ctx.plan.filesystem
    for volume in volumes(ctx.disk.size):
        device = lv_device(volume.name)
        if volume.mountpoint is None:
            run(["mkswap", "--force", "--label", volume.name, device])
        elif fs == "xfs":
            run(["mkfs.xfs", "-f", "-q", "-L", volume.name, device])
        else:
            run(["mkfs.ext4", "-F", "-q", "-L", volume.name, device])
    run(["mkfs.ext2", "-F", "-q", "-L", "boot", ctx.part("boot")])
    run(["mkfs.vfat", "-F", "32", "-n", "EFI", ctx.part("efi")])


def mount_target(ctx: Install) -> None:
    """Mount root first, then each mount point; an unmounted mount point is made immutable (as
    pvc-installer does) so nothing is written into it by mistake."""
    run = ctx.actions.run
    run(["mkdir", "-p", str(ctx.target)])
    run(["mount", lv_device("root"), str(ctx.target)])
    mounts = [(ctx.part("boot"), "/boot"), (ctx.part("efi"), "/boot/efi")]
    mounts += [(lv_device(v.name), v.mountpoint) for v in volumes(ctx.disk.size)
               if v.mountpoint not in (None, "/")]
    for device, point in mounts:
        assert point is not None
        path = str(ctx.in_target(point))
        run(["mkdir", "-p", path])
        run(["chattr", "+i", path], check=False)  # vfat and some others cannot: harmless
        run(["mount", device, path])
    mark_started(ctx)


def mark_started(ctx: Install) -> None:
    """The first thing on the new root filesystem: a marker saying an install began here. Only the
    finish step replaces it, so a system that boots with it still "started" is known half-written."""
    marker = proof.started_marker(ctx.plan.run, ctx.plan.hostname, ctx.disk.facts())
    ctx.notes["marker"] = marker
    ctx.write_marker(marker)
