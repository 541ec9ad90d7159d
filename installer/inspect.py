"""`python3 -m installer inspect plan.json`: the install's dry run and the machine's facts, nothing written.

What the install would do (the disk the hint chooses, the layout on it, the interface the network
goes on) and what the machine is (installer/hardware.py), as one JSON report: in the report file
and as the final stdout line. A refused disk or a missing interface is part of the report, not a
failure of the inspection: the controller shows it beside the rest.
"""

from __future__ import annotations

import json
from typing import Any

from installer.disks import DiskRefused, choose_disk
from installer.engine import EXIT_BAD_PLAN, EXIT_DONE, Options, discover
from installer.events import Reporter
from installer.hardware import read_hardware
from installer.layout import minimum_disk_size, volumes
from installer.plan import Plan


def run_inspect(plan: Plan, options: Options, reporter: Reporter) -> int:
    reporter.begin("inspect", "discover", 0, f"reading the disks and hardware of {plan.hostname}")
    try:
        disks, booted, interfaces, efi = discover(options)
        simulated = json.loads(options.simulate_file.read_text()) if options.simulate_file else None
        hardware = read_hardware(simulated, disks)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        reporter.final({"event": "failed", "exit_code": EXIT_BAD_PLAN, "phase": "inspect", "step": "discover",
                        "message": f"cannot read the machine: {err}"})
        return EXIT_BAD_PLAN
    reporter.end()
    report: dict[str, Any] = {"hostname": plan.hostname, "hint": str(plan.disk), "firmware": "uefi" if efi else "bios",
                              "hardware": hardware, "chosen": None, "disk_problem": "", "layout": [],
                              "interface": _interface(plan, interfaces)}
    try:
        disk = choose_disk(disks, plan.disk, boot_devices=booted, min_size=minimum_disk_size())
    except DiskRefused as err:
        report["disk_problem"] = str(err)
    else:
        report["chosen"] = next((d for d in hardware["disks"] if d["path"] == disk.path), {"path": disk.path})
        report["layout"] = [{"name": v.name, "size": v.size, "mountpoint": v.mountpoint} for v in volumes(disk.size)]
    options.report_path.parent.mkdir(parents=True, exist_ok=True)
    options.report_path.write_text(json.dumps(report, indent=2) + "\n")
    reporter.final({"event": "done", "exit_code": EXIT_DONE, "inspect": report})
    return EXIT_DONE


def _interface(plan: Plan, interfaces: dict[str, str]) -> dict[str, Any]:
    """The interface the plan's network goes on, or why there is none."""
    net = plan.network
    if net.interface:
        found = net.interface in interfaces or not interfaces
        return {"name": net.interface, "mac": interfaces.get(net.interface, ""),
                "problem": "" if found else f"no interface {net.interface}; here: {', '.join(sorted(interfaces))}"}
    for name, mac in sorted(interfaces.items()):
        if mac.lower() == (net.mac or "").lower():
            return {"name": name, "mac": mac, "problem": ""}
    return {"name": "", "mac": net.mac or "", "problem": f"no interface has MAC {net.mac}"}
