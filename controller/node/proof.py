"""Proof that a node's install completed, judged from what its installed system and its BMC show.

verify (controller/node/steps.py) runs installer/proof.py on the installed system over SSH (with
the host keys the installer reported), then asks the BMC for its virtual media. The node is done
only if all three hold: the install marker says complete, for this run; the root filesystem is on
the disk the install chose (its serial, else its WWN, else its path when the disk has neither); no
virtual media is inserted. Anything else is `NotProven`: said with what was found and what to do,
and not retried blindly (the job fails the node).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.bmc.base import MediaStatus
from core.errors import OperationError
from installer import proof

PROBE_SOURCE = Path(proof.__file__).read_text(encoding="utf-8")
PROBE_COMMAND = "python3 -"  # the probe's source on stdin: nothing is left on the installed system


class NotProven(OperationError):
    """The installed system answered but does not prove that this run's install completed."""


@dataclass(frozen=True)
class Proof:
    marker_run: str
    root_source: str
    root_disk: str
    root_serial: str
    matched_by: str  # serial | wwn | path


def parse_probe(output: str, node: str) -> dict[str, Any]:
    lines = [line for line in output.splitlines() if line.strip()]
    try:
        found = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        found = None
    if not isinstance(found, dict):
        raise NotProven(f"the installed system's proof check printed no result: {output.strip()[-200:]!r}",
                        node=node, phase="verify", hint="is python3 installed there? see the node's log")
    return found


def judge(found: dict[str, Any], chosen: dict[str, Any], run: str, node: str) -> Proof:
    """`found`: the probe's output; `chosen`: the installer's report's disk facts; `run`: this attempt's."""
    marker = _complete_marker(found, run, node)
    if found.get("root_error"):
        raise _not_proven(node, str(found["root_error"]), "see the node's log")
    disks = [d for d in found.get("root_disks") or () if isinstance(d, dict)]
    source = str(found.get("root_source") or "?")
    for disk in disks:
        how = _same_disk(chosen, disk)
        if how:
            return Proof(str(marker.get("run")), source, str(disk.get("path") or ""),
                         str(disk.get("serial") or disk.get("wwn") or ""), how)
    booted = ", ".join(_describe(d) for d in disks) or "no disk lsblk could name"
    raise _not_proven(node, f"the installed system's root ({source}) is on {booted}, not on the disk the "
                            f"install chose ({_describe(chosen)}): it booted another disk",
                      f"make the chosen disk the first boot device (or remove the other system), then "
                      f"`pvcctl retry {node}`")


def check_media(media: MediaStatus, node: str) -> None:
    if media.inserted:
        raise _not_proven(node, f"the BMC still shows virtual media inserted in {media.slot} "
                                f"({media.image or 'an image'}) after finalize ejected it: the next boot may "
                                "start the installer again",
                          f"eject it (`pvcctl bmc media eject -i INVENTORY -n {node}`), find why the BMC keeps it, "
                          f"then `pvcctl retry {node}`")


def _complete_marker(found: dict[str, Any], run: str, node: str) -> dict[str, Any]:
    again = f"`pvcctl retry {node}` installs it again"
    marker = found.get("marker")
    if not isinstance(marker, dict):
        raise _not_proven(node, f"the installed system has no install marker ({found.get('marker_error')}): it "
                                "is not a system a pvcctl install finished", again)
    state, marked = marker.get("state"), str(marker.get("run") or "?")
    if state != proof.COMPLETE:
        raise _not_proven(node, f"the node booted a half-written system: its install marker {proof.MARKER_PATH} "
                                f"says {state!r} (run {marked}), so the install never finished", again)
    if marked != run:
        raise _not_proven(node, f"the node booted the system of another install: its marker is from run "
                                f"{marked}, not this one ({run})", again)
    return marker


def _same_disk(chosen: dict[str, Any], disk: dict[str, Any]) -> str:
    serial, wwn = str(chosen.get("serial") or "").lower(), _wwn(chosen.get("wwn"))
    if serial and serial == str(disk.get("serial") or "").lower():
        return "serial"
    if wwn and wwn == _wwn(disk.get("wwn")):
        return "wwn"
    if not serial and not wwn and chosen.get("path") and chosen.get("path") == disk.get("path"):
        return "path"  # a disk with neither (some virtual disks): its name is all there is
    return ""


def _wwn(value: Any) -> str:
    return str(value or "").lower().removeprefix("0x")


def _describe(disk: dict[str, Any]) -> str:
    ids = [f"{k} {disk[k]}" for k in ("serial", "wwn") if disk.get(k)]
    return f"{disk.get('path') or '?'}" + (f" ({', '.join(ids)})" if ids else " (no serial or WWN)")


def _not_proven(node: str, message: str, hint: str) -> NotProven:
    return NotProven(message, node=node, phase="verify", hint=hint)

