"""What the machine is: CPU, memory, every disk with what it holds now, every NIC with its link.

Read on the live system (or from the simulate file's recorded facts) by `installer inspect`, so the
controller can say which disk a node will lose and check PVC's hardware requirements before
anything is written. Read-only: nothing here changes the machine. Python standard library only.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from installer.disks import Disk

# lsblk columns for what a disk holds now (the disk chooser's columns plus contents and rotation)
CONTENT_COLUMNS = "NAME,PATH,TYPE,SIZE,ROTA,RM,PTTYPE,FSTYPE,LABEL,MOUNTPOINTS"
VIRTUALIZATION_FLAGS = {"vmx": "Intel VT-x", "svm": "AMD-V"}


def read_hardware(simulated: dict[str, Any] | None, disks: list[Disk]) -> dict[str, Any]:
    """The machine's facts; `disks` are the chooser's disks (links, serials), contents are added here."""
    if simulated is not None:
        facts = dict(simulated.get("hardware") or {})
        lsblk = simulated.get("lsblk", {})
        pvs = [tuple(pair) for pair in simulated.get("lvm", [])]
    else:
        facts = {"cpu": _cpu(), "memory_bytes": _memory(), "nics": _nics()}
        lsblk = _lsblk_contents()
        pvs = _pvs()
    facts.setdefault("cpu", {"model": "", "cores": 0, "virtualization": ""})
    facts.setdefault("memory_bytes", 0)
    facts.setdefault("nics", [])
    facts["disks"] = [disk_facts(d, _device(lsblk, d.path), pvs) for d in disks if not d.loop]
    return facts


def disk_facts(disk: Disk, dev: dict[str, Any], pvs: list[tuple[str, ...]]) -> dict[str, Any]:
    """One disk as the inspection shows it: identity, and what is on it now."""
    children = list(_walk(dev.get("children") or []))
    parts = [{"path": c.get("path") or f"/dev/{c.get('name')}", "size": int(c.get("size") or 0),
              "fstype": c.get("fstype") or "", "label": c.get("label") or ""}
             for c in children if c.get("type") == "part"]
    on_disk = {disk.path, *disk.partitions, *(p["path"] for p in parts)}
    filesystems = sorted({str(d.get("fstype")) for d in [dev, *children]
                          if d.get("fstype") and d.get("fstype") != "LVM2_member"})
    return {
        "path": disk.path,
        "by_id": [link for link in disk.links if link.startswith("/dev/disk/by-id/")],
        "model": " ".join(x for x in (disk.vendor, disk.model) if x),
        "serial": disk.serial,
        "size": disk.size,
        "rotational": _flag(dev.get("rota")),
        "removable": disk.removable,
        "read_only": disk.read_only,
        "partition_table": dev.get("pttype") or "",
        "partitions": parts,
        "filesystems": filesystems,
        "volume_groups": sorted({vg for pv, vg in pvs if vg and pv in on_disk}),
    }


def holds_data(disk: dict[str, Any]) -> bool:
    """A disk with a file system or LVM on it: `install.wipe: empty-only` refuses it."""
    return bool(disk.get("filesystems") or disk.get("volume_groups"))


def describe_contents(disk: dict[str, Any]) -> str:
    """What a disk holds, in a few words: 'gpt, 3 partitions, ext4 vfat, LVM vg0' or 'empty'."""
    bits = []
    if disk.get("partition_table"):
        bits.append(f"{disk['partition_table']} table")
    if disk.get("partitions"):
        bits.append(f"{len(disk['partitions'])} partition(s)")
    if disk.get("filesystems"):
        bits.append("file systems " + " ".join(disk["filesystems"]))
    if disk.get("volume_groups"):
        bits.append("LVM " + " ".join(disk["volume_groups"]))
    return ", ".join(bits) or "empty (no partition table, file system or LVM)"


def _device(lsblk: dict[str, Any], path: str) -> dict[str, Any]:
    for dev in lsblk.get("blockdevices", []):
        if (dev.get("path") or f"/dev/{dev.get('name')}") == path:
            return dict(dev)
    return {}


def _walk(children: list[dict[str, Any]]) -> Any:
    for child in children:
        yield child
        yield from _walk(child.get("children") or [])


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true")


# --- the live machine -------------------------------------------------------------------------

def _cpu() -> dict[str, Any]:
    text = _read("/proc/cpuinfo")
    model = next((line.split(":", 1)[1].strip() for line in text.splitlines()
                  if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    virtualization = next((name for flag, name in VIRTUALIZATION_FLAGS.items() if flag in flags), "")
    return {"model": model, "cores": os.cpu_count() or 0, "virtualization": virtualization}


def _memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _nics() -> list[dict[str, Any]]:
    nics = []
    root = Path("/sys/class/net")
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.name == "lo" or not (entry / "device").exists():
            continue  # bridges, bonds and VLANs are not hardware
        speed = _read(str(entry / "speed")).strip()
        nics.append({"name": entry.name, "mac": _read(str(entry / "address")).strip(),
                     "link": _read(str(entry / "operstate")).strip() or "unknown",
                     "speed_mbps": int(speed) if speed.isdigit() and int(speed) > 0 else None})
    return nics


def _lsblk_contents() -> dict[str, Any]:
    try:
        out = subprocess.run(["lsblk", "--json", "--bytes", "--tree", "--output", CONTENT_COLUMNS],
                             check=True, capture_output=True, text=True).stdout
        data: dict[str, Any] = json.loads(out)
        return data
    except (OSError, subprocess.CalledProcessError, ValueError):
        return {}


def _pvs() -> list[tuple[str, ...]]:
    try:
        out = subprocess.run(["pvs", "--noheadings", "--separator", "|", "-o", "pv_name,vg_name"],
                             capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    return [tuple(x.strip() for x in line.strip().partition("|")[::2]) for line in out.splitlines() if line.strip()]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
