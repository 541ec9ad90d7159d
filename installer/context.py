"""What every install step gets: the plan, the chosen disk, where the target is mounted, and the
only way to touch the machine (`Actions`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from installer import proof
from installer.actions import Actions, Background, Mode, replace_file
from installer.disks import Disk
from installer.events import Reporter
from installer.layout import PARTITIONS, partition_path
from installer.plan import Plan


@dataclass
class Install:
    plan: Plan
    disk: Disk
    actions: Actions
    reporter: Reporter
    target: Path
    interfaces: dict[str, str]  # name → MAC of the live system's network interfaces
    firmware_efi: bool  # the live system booted by UEFI
    notes: dict[str, object] = field(default_factory=dict)  # facts steps hand to the report
    # simulate mode: where the simulated disk keeps the installed system's files (the install marker)
    sim_root: Path | None = None
    background: dict[str, Background] = field(default_factory=dict)  # commands a later step waits for

    def part(self, name: str) -> str:
        number = next(p.number for p in PARTITIONS if p.name == name)
        return partition_path(self.disk.path, number)

    def boot_targets(self) -> tuple[str, ...]:
        """GRUB targets: the plan's boot mode, or for `auto` the mode the live system booted in."""
        mode = self.plan.boot_mode
        if mode == "auto":
            mode = "uefi" if self.firmware_efi else "bios"
        return {"uefi": ("uefi",), "bios": ("bios",), "both": ("uefi", "bios")}[mode]

    def in_target(self, path: str) -> Path:
        return self.target / path.lstrip("/")

    def write_marker(self, marker: dict[str, Any]) -> None:
        """The install marker (installer/proof.py), world-readable so the deploy user can read it.
        A simulated install keeps it too, on its simulated disk: the lab's installed system shows it."""
        text = proof.marker_text(marker)
        self.actions.write(self.in_target(proof.MARKER_PATH), text, 0o644)
        if self.actions.mode is Mode.SIMULATE and self.sim_root is not None:
            replace_file(self.sim_root / proof.MARKER_PATH.lstrip("/"), text, 0o644)

    def network_interface(self) -> str:
        """The interface the plan names, or the one with the plan's MAC on this machine."""
        net = self.plan.network
        if net.interface:
            return net.interface
        for name, mac in sorted(self.interfaces.items()):
            if mac.lower() == (net.mac or "").lower():
                return name
        from installer.actions import StepFailed
        raise StepFailed(f"no network interface has MAC {net.mac}; interfaces here: "
                         + ", ".join(f"{n} {m}" for n, m in sorted(self.interfaces.items())))


def live_interfaces() -> dict[str, str]:
    result = {}
    root = Path("/sys/class/net")
    for entry in sorted(root.iterdir()) if root.is_dir() else []:
        if entry.name == "lo" or not (entry / "address").exists():
            continue
        result[entry.name] = (entry / "address").read_text().strip()
    return result


def live_firmware_is_efi() -> bool:
    return os.path.isdir("/sys/firmware/efi")
