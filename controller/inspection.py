"""What an inspection found, judged: PVC's requirements (inventory/requirements.py) against the live
system's facts (installer/inspect.py's report) and the BMC's (preflight), the disk the install will
wipe stated in words, and the table a person reads. Pure functions: no I/O."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from controller.bmc.base import Identity
from installer.disks import human_size
from installer.hardware import describe_contents, holds_data
from inventory.model import Node
from inventory.requirements import SPECS, Level, Requirements

MEMORY_SLACK = 0.95  # the live system's MemTotal is a few percent below the DIMMs (firmware, kernel)


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"  # turned off, or nothing to judge it by (the BMC does not say)


@dataclass(frozen=True)
class Check:
    key: str
    what: str
    status: Status
    found: str
    wanted: str
    source: str = ""
    fix: str = ""

    def line(self, node: str = "") -> str:
        """One line naming the requirement (and the node, if given), what was found and what to do."""
        return f"{node + ': ' if node else ''}{self.what}: found {self.found}, {self.wanted} required; {self.fix}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status.value}


def _check(key: str, passed: bool | None, level: Level, found: str, wanted: str) -> Check:
    spec = SPECS[key]
    if level is Level.OFF or passed is None:
        status = Status.SKIP
    elif passed:
        status = Status.OK
    else:
        status = Status.FAIL if level is Level.FAIL else Status.WARN
    return Check(key, spec.what, status, found, wanted, spec.source, spec.fix)


def _minimum(key: str, found: float | None, minimum: float, shown: str, unit: str, slack: float = 1.0) -> Check:
    passed = None if found is None else found >= minimum * slack
    return _check(key, passed, Level.OFF if minimum <= 0 else Level.FAIL, shown, f"at least {minimum:g} {unit}")


def evaluate(node: Node, coordinators: int, report: dict[str, Any], identity: Identity | None,
             ipmi: bool | None) -> list[Check]:
    """Every requirement of the node, and the install's own: the hint names one disk, the network's interface."""
    req: Requirements = node.requirements
    hw = report.get("hardware") or {}
    chosen = report.get("chosen") or {}
    checks = [Check("disk", "the disk the hint names", Status.FAIL if report.get("disk_problem") else Status.OK,
                    report.get("disk_problem") or chosen.get("path", "?"),
                    f"exactly one disk matching {node.install.disk}",
                    "the install", "fix install.disk (see the candidates listed)")]
    problem = (report.get("interface") or {}).get("problem", "")
    checks.append(Check("network", "the install network's interface", Status.FAIL if problem else Status.OK,
                        problem or (report.get("interface") or {}).get("name", "?"), "the interface the plan names",
                        "the install", "fix install_network.interface or .mac"))
    size = chosen.get("size")
    checks.append(_minimum("disk_min_gb", size / 1e9 if size else None, req.disk_min_gb,
                           human_size(size) if size else "no disk", "GB"))
    rotational = chosen.get("rotational")
    checks.append(_check("disk_ssd", None if not chosen else not rotational, req.disk_ssd,
                         "a spinning disk" if rotational else "an SSD" if chosen else "no disk", "an SSD"))
    memory = identity.memory_gib if identity and identity.memory_gib else (hw.get("memory_bytes") or 0) / 1024**3
    checks.append(_minimum("memory_min_gb", memory or None, req.memory_min_gb, f"{memory:.1f} GiB", "GB",
                           MEMORY_SLACK))
    cores = (hw.get("cpu") or {}).get("cores") or 0
    checks.append(_minimum("cores_min", cores or None, req.cores_min, f"{cores} ({(hw.get('cpu') or {}).get('model')})",
                           "cores"))
    checks.append(_nic_check(hw.get("nics") or [], req.nic_min_mbps))
    virt = (hw.get("cpu") or {}).get("virtualization") or ""
    checks.append(_check("virtualization", bool(virt), req.virtualization, virt or "none", "VT-x or AMD-V"))
    checks.append(_check("coordinators", coordinators in req.coordinators, Level.FAIL, str(coordinators),
                         " or ".join(map(str, req.coordinators))))
    checks.append(_check("ipmi", ipmi, req.ipmi, "not probed" if ipmi is None else "answers" if ipmi else
                         "no answer on UDP 623", "an answer on UDP 623"))
    health = identity.health if identity else ""
    checks.append(_check("bmc_health", (health == "OK") if health else None, req.bmc_health,
                         health or "not reported", "OK"))
    return checks


def _nic_check(nics: list[dict[str, Any]], minimum: int) -> Check:
    up = [n for n in nics if n.get("link") == "up"]
    speeds = [n["speed_mbps"] for n in up if n.get("speed_mbps")]
    if minimum <= 0:
        return _check("nic_min_mbps", None, Level.OFF, f"{len(up)} with link", f"{minimum} Mbit/s")
    if not up:
        return _check("nic_min_mbps", False, Level.FAIL, "no NIC with link", f"at least {minimum} Mbit/s")
    if not speeds:  # virtual NICs report no speed: nothing to judge by
        return _check("nic_min_mbps", None, Level.FAIL, "speed not reported", f"at least {minimum} Mbit/s")
    best = max(speeds)
    return _check("nic_min_mbps", best >= minimum, Level.FAIL, f"{best} Mbit/s", f"at least {minimum} Mbit/s")


def failures(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status is Status.FAIL]


def wipe_statement(node: str, report: dict[str, Any]) -> str:
    """The disk the install will wipe, and what it holds now, in one line."""
    disk = report.get("chosen") or {}
    if not disk:
        return f"{node}: no disk chosen ({report.get('disk_problem', '')})"
    model = disk.get("model") or "unknown model"
    return (f"{node}: will WIPE {disk['path']} ({model}, serial {disk.get('serial') or 'unknown'}, "
            f"{human_size(int(disk.get('size') or 0))}); it holds now: {describe_contents(disk)}")


def wipe_refusal(node: Node, report: dict[str, Any]) -> str:
    """Why `install.wipe: empty-only` refuses the chosen disk, or ''."""
    disk = report.get("chosen") or {}
    if node.install.wipe != "empty-only" or not disk or not holds_data(disk):
        return ""
    return (f"{node.hostname}: {disk['path']} holds {describe_contents(disk)} and install.wipe is empty-only: "
            "not wiped; wipe it by hand, name another disk, or set install.wipe: any")
