"""Which disk to install on: facts from `lsblk --json` and udev, and the hint matching rules.

Exactly one disk must match a hint, or the installer refuses and lists the candidates. The device
the live system booted from, and read-only devices, are never candidates; a disk smaller than the
layout needs is refused even when it is the one named.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer.plan import DiskHint

LSBLK_COLUMNS = "NAME,KNAME,PATH,TYPE,SIZE,MODEL,VENDOR,SERIAL,WWN,TRAN,RM,RO,HOTPLUG,MOUNTPOINTS,PKNAME"
SIZE_TOLERANCE = 0.03  # pvc-installer's detect.py matches sizes within ±3%


class DiskRefused(Exception):
    """No disk, or more than one, matches; or the one that matches must not be used."""


@dataclass(frozen=True)
class Disk:
    path: str
    size: int
    model: str = ""
    vendor: str = ""
    serial: str = ""
    wwn: str = ""
    transport: str = ""
    loop: bool = False  # a loop device: chosen only by its path (tests install onto disk images)
    removable: bool = False
    read_only: bool = False
    links: tuple[str, ...] = ()
    partitions: tuple[str, ...] = ()
    mountpoints: tuple[str, ...] = ()  # of the disk and all its partitions
    udev_serials: tuple[str, ...] = field(default=(), repr=False)

    def describe(self) -> str:
        model = " ".join(x for x in (self.vendor, self.model) if x) or "unknown model"
        return f"{self.path} ({model}, {human_size(self.size)}, serial {self.serial or 'unknown'})"

    def facts(self) -> dict[str, Any]:
        return {"path": self.path, "model": self.model, "vendor": self.vendor, "serial": self.serial,
                "wwn": self.wwn, "size": self.size, "transport": self.transport, "links": list(self.links)}


def human_size(size: int) -> str:
    for unit, scale in (("TiB", 1024**4), ("GiB", 1024**3), ("MiB", 1024**2)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def parse_udev_properties(text: str) -> dict[str, str]:
    """`udevadm info --query=property` output (KEY=VALUE lines; `E: ` prefixes accepted)."""
    props = {}
    for line in text.splitlines():
        line = line.strip().removeprefix("E: ")
        key, sep, value = line.partition("=")
        if sep:
            props[key] = value
    return props


def _text(value: Any) -> str:
    return str(value).strip() if value is not None else ""


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true")


def _normal_wwn(text: str) -> str:
    text = text.strip().lower()
    for prefix in ("0x", "naa.", "eui.", "wwn-0x"):
        text = text.removeprefix(prefix)
    return text


def disks_from_lsblk(lsblk: dict[str, Any], udev: dict[str, str] | None = None) -> list[Disk]:
    """Disks from `lsblk --json --bytes -O`-style output; udev maps a device path to its properties
    text (DEVLINKS gives the /dev/disk/by-id and by-path names)."""
    disks = []
    for dev in lsblk.get("blockdevices", []):
        if _text(dev.get("type")) not in ("disk", "loop", "rom"):
            continue
        path = _text(dev.get("path")) or f"/dev/{_text(dev.get('name'))}"
        props = parse_udev_properties((udev or {}).get(path, ""))
        children = list(_walk(dev.get("children") or []))
        mounts = [m for d in [dev, *children] for m in (d.get("mountpoints") or [d.get("mountpoint")]) if m]
        disks.append(Disk(
            path=path,
            size=int(dev.get("size") or 0),
            model=_text(dev.get("model")) or props.get("ID_MODEL", "").replace("_", " "),
            vendor=_text(dev.get("vendor")),
            serial=_text(dev.get("serial")) or props.get("ID_SERIAL_SHORT", ""),
            wwn=_normal_wwn(_text(dev.get("wwn")) or props.get("ID_WWN_WITH_EXTENSION", props.get("ID_WWN", ""))),
            transport=_text(dev.get("tran")),
            loop=_text(dev.get("type")) == "loop",
            removable=_flag(dev.get("rm")) or _flag(dev.get("hotplug")),
            read_only=_flag(dev.get("ro")) or _text(dev.get("type")) == "rom",  # optical: never a target
            links=tuple(sorted(props.get("DEVLINKS", "").split())),
            partitions=tuple(_text(c.get("path")) or f"/dev/{_text(c.get('name'))}" for c in children
                             if _text(c.get("type")) == "part"),
            mountpoints=tuple(mounts),
            udev_serials=tuple(v for k, v in props.items() if k in ("ID_SERIAL", "ID_SERIAL_SHORT",
                                                                    "ID_SCSI_SERIAL") and v),
        ))
    return disks


def _walk(children: list[dict[str, Any]]) -> Any:
    for child in children:
        yield child
        yield from _walk(child.get("children") or [])


def matches(disk: Disk, hint: DiskHint) -> bool:
    if disk.loop and hint.kind != "path":
        return False
    if hint.kind == "path":
        return hint.value == disk.path or hint.value in disk.links
    if hint.kind == "serial":
        wanted = hint.value.lower()
        return any(wanted == s.lower() for s in (disk.serial, *disk.udev_serials) if s)
    if hint.kind == "wwn":
        return bool(disk.wwn) and _normal_wwn(hint.value) == disk.wwn
    if hint.kind == "model":
        name = f"{disk.vendor} {disk.model}".lower()
        if hint.value.lower() not in name:
            return False
        return hint.size is None or abs(disk.size - hint.size) <= hint.size * SIZE_TOLERANCE
    raise ValueError(f"no matching rule for {hint.kind}")


def choose_disk(disks: list[Disk], hint: DiskHint, *, boot_devices: set[str], min_size: int) -> Disk:
    """The one disk the hint names; DiskRefused says why not, listing the candidates."""
    candidates = [d for d in disks if d.path not in boot_devices and not d.read_only and d.size > 0]
    shown = [d for d in candidates if not d.loop]
    if hint.kind in ("smallest", "largest"):
        pool = [d for d in candidates if not d.removable and not d.loop]
        if not pool:
            raise DiskRefused(f"no non-removable disk to choose from{_listing(shown)}")
        best = (min if hint.kind == "smallest" else max)(d.size for d in pool)
        found = [d for d in pool if d.size == best]
    else:
        found = [d for d in candidates if matches(d, hint)]
        if not found and hint.kind == "path" and any(hint.value in (d.path, *d.links) for d in disks):
            raise DiskRefused(f"{hint.value} is the device the live system booted from, or read-only; "
                              f"refusing it{_listing(shown)}")
        if not found and hint.kind == "path" and any(hint.value in d.partitions for d in disks):
            raise DiskRefused(f"{hint.value} is a partition; name the whole disk{_listing(shown)}")
    if not found:
        raise DiskRefused(f"no disk matches {hint}{_listing(shown)}")
    if len(found) > 1:
        raise DiskRefused(f"{len(found)} disks match {hint}, it must name exactly one{_listing(found)}")
    disk = found[0]
    if disk.size < min_size:
        raise DiskRefused(f"{disk.describe()} is smaller than the {human_size(min_size)} the layout needs")
    return disk


def _listing(disks: list[Disk]) -> str:
    if not disks:
        return "; there are no candidate disks"
    return "; candidates: " + "; ".join(d.describe() for d in disks)


# --- reading the machine (live system) --------------------------------------------------------

def read_lsblk() -> dict[str, Any]:
    out = subprocess.run(["lsblk", "--json", "--bytes", "--tree", "--output", LSBLK_COLUMNS],
                         check=True, capture_output=True, text=True).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def read_udev(paths: list[str]) -> dict[str, str]:
    """udev properties per device; /dev/disk/by-* links read directly if udevadm is missing."""
    result = {}
    for path in paths:
        try:
            out = subprocess.run(["udevadm", "info", "--query=property", f"--name={path}"],
                                 capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            out = ""
        if "DEVLINKS=" not in out:
            out += "\nDEVLINKS=" + " ".join(_links_to(path))
        result[path] = out
    return result


def _links_to(path: str) -> list[str]:
    links = []
    for folder in ("/dev/disk/by-id", "/dev/disk/by-path"):
        if os.path.isdir(folder):
            links += [str(p) for p in Path(folder).iterdir() if os.path.realpath(p) == os.path.realpath(path)]
    return links


def boot_devices(lsblk: dict[str, Any], mounts_text: str) -> set[str]:
    """The disks under the live system's boot medium and root (from /proc/mounts)."""
    sources = set()
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1] in ("/", "/run/live/medium", "/lib/live/mount/medium") \
                and fields[0].startswith("/dev/"):
            sources.add(os.path.realpath(fields[0]) if os.path.exists(fields[0]) else fields[0])
    result = set()
    for dev in lsblk.get("blockdevices", []):
        path = _text(dev.get("path")) or f"/dev/{_text(dev.get('name'))}"
        under = {path, *(_text(c.get("path")) for c in _walk(dev.get("children") or []))}
        if under & sources:
            result.add(path)
    return result
