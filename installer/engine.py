"""Run a plan: choose the disk, run the steps in order, emit events, write the report.

The same code runs for real, as a dry run, and simulated; only `Actions` differs.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from installer import steps_disk, steps_system
from installer.actions import Actions, Mode, StepFailed
from installer.context import Install, live_firmware_is_efi, live_interfaces
from installer.disks import DiskRefused, boot_devices, choose_disk, disks_from_lsblk, read_lsblk, read_udev
from installer.events import Level, Reporter
from installer.layout import PARTITIONS, minimum_disk_size, partition_path, volumes
from installer.plan import Plan

EXIT_DONE, EXIT_BAD_PLAN, EXIT_DISK_REFUSED, EXIT_STEP_FAILED = 0, 2, 3, 4
LOCK_FILE = "/run/pvc-install.lock"

# (phase, step, function, percent when the step starts)
STEPS = (
    ("disk", "release", steps_disk.release_previous, 5),
    ("disk", "wipe", steps_disk.wipe, 8),
    ("disk", "partition", steps_disk.partition, 12),
    ("disk", "lvm", steps_disk.create_lvm, 16),
    ("disk", "filesystems", steps_disk.make_filesystems, 20),
    ("disk", "mount", steps_disk.mount_target, 28),
    ("system", "os", steps_system.install_os, 30),
    ("system", "apt", steps_system.configure_apt, 60),
    ("configure", "files", steps_system.write_configuration, 70),
    ("configure", "users", steps_system.create_users, 74),
    ("configure", "host-keys", steps_system.generate_host_keys, 78),
    ("boot", "bootloader", steps_system.install_bootloader, 82),
    ("boot", "initramfs", steps_system.build_initramfs, 92),
    ("finish", "finish", steps_system.finish, 96),
)
STEP_NAMES = tuple(step for _, step, _, _ in STEPS)


@dataclass(frozen=True)
class Options:
    mode: Mode = Mode.REAL
    target: Path = Path("/tmp/pvc-target")
    log_path: Path = Path("/var/log/pvc-install/install.log")
    report_path: Path = Path("/var/log/pvc-install/report.json")
    simulate_file: Path | None = None
    step_delay: float = 0.0
    stop_after: str | None = None  # tests: leave a half-done install behind on purpose
    sim_root: Path | None = None  # simulate mode: the simulated disk, which keeps the install marker
    human: bool = False


def discover(options: Options) -> tuple[list[Any], set[str], dict[str, str], bool]:
    """Disks, boot devices, network interfaces and firmware: recorded in simulate mode, else live."""
    if options.simulate_file is not None:
        data = json.loads(options.simulate_file.read_text())
        lsblk = data.get("lsblk", data)
        return (disks_from_lsblk(lsblk, data.get("udev", {})), set(data.get("boot_devices", [])),
                dict(data.get("interfaces", {"eth0": "52:54:00:00:00:01"})), bool(data.get("efi", True)))
    lsblk = read_lsblk()
    paths = [d.get("path") or f"/dev/{d['name']}" for d in lsblk.get("blockdevices", [])]
    booted = boot_devices(lsblk, Path("/proc/mounts").read_text())
    return disks_from_lsblk(lsblk, read_udev(paths)), booted, live_interfaces(), live_firmware_is_efi()


def run_plan(plan: Plan, options: Options, reporter: Reporter) -> int:
    """Install; the exit code and the last stdout line say how it ended."""
    reporter.begin("disk", "choose", 1, f"choosing the disk for {plan.hostname} by hint {plan.disk}")
    try:
        disks, booted, interfaces, efi = discover(options)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        where = options.simulate_file or "lsblk"
        reporter.emit(f"cannot read the disks from {where}: {err}", Level.ERROR)
        reporter.final({"event": "failed", "exit_code": EXIT_BAD_PLAN, "phase": "disk", "step": "choose",
                        "field": "", "message": f"cannot read the disks from {where}: {err}"})
        return EXIT_BAD_PLAN
    try:
        disk = choose_disk(disks, plan.disk, boot_devices=booted, min_size=minimum_disk_size())
    except DiskRefused as err:
        reporter.emit(f"disk refused: {err}", Level.ERROR)
        reporter.final({"event": "failed", "exit_code": EXIT_DISK_REFUSED, "phase": "disk", "step": "choose",
                        "message": str(err)})
        return EXIT_DISK_REFUSED
    reporter.end()
    reporter.emit(f"chose {disk.describe()}; it will be WIPED")
    actions = Actions(options.mode, reporter, options.step_delay)
    ctx = Install(plan, disk, actions, reporter, options.target, interfaces, efi, sim_root=options.sim_root)
    with _install_lock(options.mode):
        try:
            for phase, step, function, percent in STEPS:
                reporter.begin(phase, step, percent, f"{step}: starting")
                try:
                    function(ctx)
                except StepFailed as err:
                    return _failed(reporter, phase, step, str(err), err.output)
                except OSError as err:
                    return _failed(reporter, phase, step, f"{type(err).__name__}: {err}", "")
                reporter.end()
                actions.pause()
                if step == options.stop_after:
                    reporter.emit(f"stopped after {step} as asked (--stop-after)")
                    reporter.final({"event": "stopped", "exit_code": EXIT_STEP_FAILED, "step": step})
                    return EXIT_STEP_FAILED
        finally:
            actions.kill_background()
    report = build_report(ctx, options)
    options.report_path.parent.mkdir(parents=True, exist_ok=True)
    options.report_path.write_text(json.dumps(report, indent=2) + "\n")
    done = {Mode.REAL: "installed", Mode.DRY_RUN: "dry run complete (nothing was touched) for",
            Mode.SIMULATE: "simulated install complete for"}[options.mode]
    reporter.begin("finish", "done", 100, f"{done} {plan.hostname} on {disk.path}; report in {options.report_path}")
    reporter.final({"event": "done", "exit_code": EXIT_DONE, "report": report})
    return EXIT_DONE


def _failed(reporter: Reporter, phase: str, step: str, message: str, output: str) -> int:
    reporter.emit(f"{step} failed: {message}" + (f"\n{output}" if output else ""), Level.ERROR)
    reporter.final({"event": "failed", "exit_code": EXIT_STEP_FAILED, "phase": phase, "step": step,
                    "message": message, "output": output})
    return EXIT_STEP_FAILED


class _install_lock:
    """One real install at a time on a machine (pvc-installer's lockfile, without the stale-file trap:
    the kernel drops a flock when the process dies)."""

    def __init__(self, mode: Mode):
        self.mode = mode
        self.handle: Any = None

    def __enter__(self) -> None:
        if self.mode is not Mode.REAL:
            return
        self.handle = open(LOCK_FILE, "w")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StepFailed(f"another installer is running (it holds {LOCK_FILE})") from None

    def __exit__(self, *exc: object) -> None:
        if self.handle is not None:
            self.handle.close()


def build_report(ctx: Install, options: Options) -> dict[str, Any]:
    simulated = ctx.actions.mode is not Mode.REAL
    keys = ctx.notes.get("host_keys") or (_throwaway_host_keys(ctx.plan.hostname) if simulated else [])
    return {
        "hostname": ctx.plan.hostname,
        "simulated": simulated,
        "mode": ctx.actions.mode.value,
        "disk": ctx.disk.facts(),
        "partitions": [{"number": p.number, "name": p.name, "path": partition_path(ctx.disk.path, p.number),
                        "size": p.size} for p in PARTITIONS],
        "volumes": [{"name": v.name, "size": v.size, "mountpoint": v.mountpoint} for v in volumes(ctx.disk.size)],
        "filesystem": ctx.plan.filesystem,
        "method": ctx.plan.method,
        "boot_modes": ctx.notes.get("boot_modes", list(ctx.boot_targets())),
        "secure_boot_chain": ctx.notes.get("secure_boot_chain", ""),  # signed (shim) or unsigned, for UEFI
        "macs": ctx.interfaces,
        "addresses": _addresses(options),
        "network": ctx.notes.get("network", {}),
        "ssh_host_keys": keys,
        "ssh_host_keys_fake": simulated,
        "step_seconds": ctx.reporter.step_seconds,
        "log": str(options.log_path),
    }


def _addresses(options: Options) -> dict[str, list[str]]:
    """The live system's addresses per interface (`ip -j addr`); none in simulate mode."""
    if options.simulate_file is not None:
        return {}
    try:
        out = subprocess.run(["ip", "-j", "addr", "show"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {link["ifname"]: [f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])]
            for link in json.loads(out) if link.get("ifname") != "lo"}


def _throwaway_host_keys(hostname: str) -> list[str]:
    """Simulated runs: real ed25519 keys made in a temp dir and thrown away (marked fake in the report)."""
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "ssh_host_ed25519_key"
        try:
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{hostname}", "-f", str(key)],
                           check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError):
            return []
        return [key.with_suffix(".pub").read_text().strip()]
