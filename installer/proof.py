"""Proof that an install completed: the marker the installer keeps on the target, and the probe the
controller runs on the installed system to read it back.

The installer writes `MARKER_PATH` in the target as soon as the target is mounted, with state
"started", and replaces it (atomically) with state "complete" and the report's summary as the last
write before it unmounts. A system that boots with the marker at "started" is half-written.

Run as a script (`python3 - < proof.py`, as the controller's verify does over SSH) this module
prints one JSON object: the marker as found, and the disk(s) the running root filesystem is on.
So it imports nothing but the standard library, and nothing of ours.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

MARKER_PATH = "/var/lib/pvcctl/install.json"
MARKER_VERSION = 1
STARTED, COMPLETE = "started", "complete"
# a simulated installed system (lab/sim_node.py) keeps its root filesystem in a directory
SIM_ROOT_ENV = "PVC_SIM_ROOT"


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def started_marker(run: str, hostname: str, disk: dict[str, Any]) -> dict[str, Any]:
    """The marker while the install runs: which run, for which node, onto which disk."""
    return {"version": MARKER_VERSION, "state": STARTED, "run": run, "hostname": hostname,
            "disk": {k: disk.get(k, "") for k in ("path", "serial", "wwn", "model")}, "started_at": now()}


def complete_marker(started: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    return {**started, "state": COMPLETE, "completed_at": now(), "summary": summary}


def marker_text(marker: dict[str, Any]) -> str:
    return json.dumps(marker, indent=2, sort_keys=True) + "\n"


# -- the probe, run on the installed system ------------------------------------------------------------


def read_marker(root: Path) -> dict[str, Any]:
    """{"marker": {...}} or {"marker_error": why}: world-readable, so the deploy user needs no sudo."""
    path = root / MARKER_PATH.lstrip("/")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"marker_error": f"no {MARKER_PATH}"}
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return {"marker_error": f"cannot read {MARKER_PATH}: {err}"}
    if not isinstance(data, dict):
        return {"marker_error": f"{MARKER_PATH} is not a JSON object"}
    return {"marker": data}


def root_disks() -> dict[str, Any]:
    """The device mounted at / and the whole disks under it (LV → partition → disk), by
    `findmnt` and `lsblk --inverse`: {"root_source": ..., "root_disks": [{path, serial, wwn}]}."""
    try:
        source = _out(["findmnt", "--noheadings", "--output", "SOURCE", "/"]).strip()
        tree = json.loads(_out(["lsblk", "--json", "--inverse", "--output", "PATH,TYPE,SERIAL,WWN", source]))
    except (OSError, subprocess.CalledProcessError, ValueError) as err:
        return {"root_error": f"cannot tell the root filesystem's disk: {err}"}
    disks: list[dict[str, str]] = []
    pending = list(tree.get("blockdevices") or [])
    while pending:
        device = pending.pop()
        pending.extend(device.get("children") or [])
        if device.get("type") == "disk" and not any(d["path"] == device.get("path") for d in disks):
            disks.append({k: str(device.get(k) or "") for k in ("path", "serial", "wwn")})
    return {"root_source": source, "root_disks": disks}


def _out(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=30).stdout


def probe() -> dict[str, Any]:
    root = Path(os.environ.get(SIM_ROOT_ENV) or "/")
    return {**read_marker(root), **root_disks()}


if __name__ == "__main__":
    print(json.dumps(probe()))
