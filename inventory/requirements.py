"""PVC's hardware requirements as data: each with its source, a profile per kind of cluster, and the
inventory's overrides (`requirements:` under defaults and under each node; examples/reference.yml).

A numeric minimum of 0 turns that check off; a level is `fail` (the node stops before anything is
written), `warn` (shown, the node goes on) or `off`. Pure data, no I/O.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any


class Level(enum.StrEnum):
    FAIL = "fail"
    WARN = "warn"
    OFF = "off"


HARDWARE_DOC = "PVC docs, docs/architecture/hardware-requirements.md"
CLUSTER_DOC = "PVC docs, docs/architecture/cluster-architecture.md (coordinators)"


@dataclass(frozen=True)
class RequirementSpec:
    key: str
    what: str
    source: str
    fix: str  # what to do when it fails


SPECS: dict[str, RequirementSpec] = {spec.key: spec for spec in (
    RequirementSpec("disk_min_gb", "system disk size", f"{HARDWARE_DOC}: system disk at least 32 GB",
                    "name a larger disk in install.disk, or lower requirements.disk_min_gb"),
    RequirementSpec("disk_ssd", "system disk is an SSD", f"{HARDWARE_DOC}: SSD recommended for the system disk",
                    "name an SSD in install.disk, or set requirements.disk_ssd: warn"),
    RequirementSpec("memory_min_gb", "memory", f"{HARDWARE_DOC}: at least 32 GB RAM",
                    "add memory, or lower requirements.memory_min_gb"),
    RequirementSpec("cores_min", "CPU cores", f"{HARDWARE_DOC}: at least 8 CPU cores",
                    "use a larger machine, or lower requirements.cores_min"),
    RequirementSpec("nic_min_mbps", "fastest NIC with link", f"{HARDWARE_DOC}: at least 1 Gbps (10 Gbps recommended)",
                    "connect a faster NIC, or lower requirements.nic_min_mbps"),
    RequirementSpec("virtualization", "hardware virtualisation (VT-x/AMD-V)",
                    f"{HARDWARE_DOC}: PVC runs KVM virtual machines, which need VT-x or AMD-V",
                    "enable virtualisation in the firmware setup, or set requirements.virtualization: warn"),
    RequirementSpec("coordinators", "coordinator count", f"{CLUSTER_DOC}: 3, or 5 for large clusters",
                    "mark 3 (or 5) nodes coordinator: true, or list the allowed counts in requirements.coordinators"),
    RequirementSpec("ipmi", "IPMI reachable for fencing",
                    f"{HARDWARE_DOC}: IPMI over LAN is required for fencing; without it fencing is disabled",
                    "enable IPMI over LAN on the BMC (UDP 623), or set requirements.ipmi: warn"),
    RequirementSpec("bmc_health", "the BMC's system health", "Redfish ComputerSystem Status.Health",
                    "look at the BMC's event log and fix the fault, or set requirements.bmc_health: warn"),
)}


@dataclass(frozen=True)
class Requirements:
    """What a node must have; `pvc` is PVC's own list (SPECS)."""

    profile: str = "pvc"
    disk_min_gb: float = 32
    disk_ssd: Level = Level.WARN  # "recommended"
    memory_min_gb: float = 32
    cores_min: int = 8
    nic_min_mbps: int = 1000
    virtualization: Level = Level.FAIL
    coordinators: tuple[int, ...] = (3, 5)
    ipmi: Level = Level.FAIL
    bmc_health: Level = Level.WARN


PROFILES: dict[str, Requirements] = {
    "pvc": Requirements(),
    # a lab's machines (simulated, or small QEMU guests behind an emulated BMC with no IPMI) are no servers:
    # only what the install itself needs is a failure, the rest is shown
    "lab": Requirements(profile="lab", disk_min_gb=0, disk_ssd=Level.OFF, memory_min_gb=0, cores_min=0,
                        nic_min_mbps=0, virtualization=Level.WARN, coordinators=(1, 3, 5), ipmi=Level.OFF,
                        bmc_health=Level.WARN),
}


def resolve_requirements(*layers: dict[str, Any]) -> Requirements:
    """The profile of the last layer that names one, with every layer's keys over it (later wins)."""
    profile = next((layer["profile"] for layer in reversed(layers) if layer.get("profile")), "pvc")
    values: dict[str, Any] = {}
    for layer in layers:
        values.update({k: v for k, v in layer.items() if k != "profile" and v is not None})
    if "coordinators" in values:
        values["coordinators"] = tuple(values["coordinators"])
    for key in ("disk_ssd", "virtualization", "ipmi", "bmc_health"):
        if key in values:
            values[key] = Level(values[key])
    return dataclasses.replace(PROFILES[profile], **values)
