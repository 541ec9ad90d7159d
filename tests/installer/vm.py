"""QEMU (TCG) helpers for the installer tests: run the real installer inside a VM, and boot the
installed disk under OVMF or SeaBIOS until its SSH answers.

This sandbox has loop devices but no device-mapper, so LVM cannot be activated on the host; the
install therefore runs in a VM: a small live system (kernel + root from `standin.py`) gets the
installer, the plan and the target image on a payload disk, installs onto a raw disk image by its
serial (real udev facts), and powers off. Every VM run has a watchdog and is retried once.
"""

from __future__ import annotations

import fcntl
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests import ovmf

NIC_MAC = "52:54:00:12:34:56"
NIC = f"virtio-net-pci,netdev=n0,mac={NIC_MAC},addr=0x5"  # same slot everywhere: same interface name
HEAVY_LOCK = "/tmp/pvcctl-heavy.lock"

LIVE_INIT = """#!/bin/sh
# PID 1 of the test's live VM: enough of a system for the installer (udev, LVM), then power off.
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts; mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp
mount -o remount,rw /
/lib/systemd/systemd-udevd --daemon
udevadm trigger --action=add; udevadm settle
modprobe loop; modprobe squashfs; modprobe dm_mod
mkdir -p /payload; mount LABEL=pvc-payload /payload
echo PVC-TEST-START > /dev/ttyS0
sh /payload/run.sh > /payload/console.log 2>&1
echo PVC-TEST-END > /dev/ttyS0
sync; umount /payload; sync
echo o > /proc/sysrq-trigger
sleep 30
"""


class VmTimeout(Exception):
    pass


@dataclass(frozen=True)
class LiveKit:
    kernel: Path
    initrd: Path
    root: Path  # raw ext4 image, used with snapshot=on so it stays pristine


def live_kit(standin_squashfs: Path, cache: Path) -> LiveKit:
    """Kernel, initrd and a raw root image of the stand-in live system, built once per image."""
    out = cache / f"live-{standin_squashfs.stem}"
    kit = LiveKit(out / "vmlinuz", out / "initrd.img", out / "root.img")
    if kit.root.exists():
        return kit
    tree = out / "tree"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    subprocess.run(["unsquashfs", "-no-progress", "-quiet", "-dest", str(tree), str(standin_squashfs)],
                   check=True, stdout=subprocess.DEVNULL)
    shutil.copyfile(sorted(tree.glob("boot/vmlinuz-*"))[-1], kit.kernel)
    shutil.copyfile(sorted(tree.glob("boot/initrd.img-*"))[-1], kit.initrd)
    (tree / "pvc-test-init").write_text(LIVE_INIT)
    (tree / "pvc-test-init").chmod(0o755)
    partial = kit.root.with_suffix(".partial")
    subprocess.run(["truncate", "-s", "3G", str(partial)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "pvc-live", "-d", str(tree), str(partial)], check=True)
    partial.rename(kit.root)
    shutil.rmtree(tree)
    return kit


def payload_disk(staging: Path, out: Path) -> Path:
    subprocess.run(["truncate", "-s", "2G", str(out)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "pvc-payload", "-d", str(staging), str(out)], check=True)
    return out


def read_payload(image: Path, names: list[str], dest: Path) -> None:
    """Copy files back out of the payload disk (loop mount, read-only)."""
    mount = dest / "payload-mnt"
    mount.mkdir(exist_ok=True)
    subprocess.run(["mount", "-o", "loop,ro", str(image), str(mount)], check=True)
    try:
        for name in names:
            if (mount / name).exists():
                shutil.copyfile(mount / name, dest / name)
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def run_live_install(kit: LiveKit, payload: Path, disk: Path, serial_log: Path, timeout: float) -> float:
    """Seconds the VM ran (boot, install, power-off), not counting the wait for the heavy lock."""
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-m", "2048", "-smp", "2",
            "-display", "none", "-no-reboot", "-serial", f"file:{serial_log}",
            "-kernel", str(kit.kernel), "-initrd", str(kit.initrd),
            "-append", "root=LABEL=pvc-live rw console=ttyS0,115200 init=/pvc-test-init panic=-1",
            "-drive", f"file={kit.root},if=none,id=live,format=raw,snapshot=on",
            "-device", "virtio-blk-pci,drive=live,addr=0x2",
            "-drive", f"file={payload},if=none,id=payload,format=raw",
            "-device", "virtio-blk-pci,drive=payload,addr=0x3",
            "-drive", f"file={disk},if=none,id=target,format=raw",
            "-device", "virtio-blk-pci,drive=target,serial=pvc-target,addr=0x4",
            "-netdev", "user,id=n0", "-device", NIC]
    return _run_with_watchdog(argv, timeout, serial_log, done_marker="PVC-TEST-END")


def _run_with_watchdog(argv: list[str], timeout: float, serial_log: Path, done_marker: str) -> float:
    """Run a VM to its end; the clock starts once the shared heavy-work lock is ours."""
    with open(HEAVY_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise VmTimeout(f"VM did not finish in {timeout:.0f} s; serial log tail:\n{_tail(serial_log)}") from None
    if done_marker not in _tail(serial_log, 100_000):
        errors = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"VM stopped (status {proc.returncode}) without {done_marker}: {errors}\n"
                           f"serial log tail:\n{_tail(serial_log)}")
    return time.monotonic() - started


def _tail(path: Path, size: int = 3000) -> str:
    return path.read_text(errors="replace")[-size:] if path.exists() else "(no serial log)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def boot_installed(disk: Path, firmware: str, workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """Boot the installed disk (copy-on-write: the image stays as installed) with SSH on port."""
    secure_boot = firmware == "uefi-sb"
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-machine", ovmf.machine(secure_boot), "-m", "1024", "-smp", "2",
            "-display", "none", "-serial", f"file:{workdir / f'serial-{firmware}.log'}",
            "-drive", f"file={disk},if=virtio,format=raw,snapshot=on",
            "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", NIC]
    if firmware != "bios":  # fresh NVRAM: boots by the removable-media path
        argv += ovmf.uefi_args(workdir / "OVMF_VARS.fd", secure_boot=secure_boot)
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for_ssh_banner(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.settimeout(10)
                if sock.recv(64).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(2)
    return False


def ssh_as(port: int, user: str, key: Path, known_hosts: Path, command: str, timeout: float = 60) -> str:
    """Run a command over SSH with the host key pinned (StrictHostKeyChecking=yes, no TOFU)."""
    argv = ["ssh", "-p", str(port), "-i", str(key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10", f"{user}@127.0.0.1", command]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ssh {command!r} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def boot_and_check(disk: Path, firmware: str, workdir: Path, host_keys: list[str], key: Path, user: str,
                   command: str, timeout: float = 240) -> str:
    """Boot the installed disk, wait for its SSH, run `command` as `user` with the host key pinned to
    the ones the install report gave. One retry when the boot hangs (a known rare TCG hang)."""
    for attempt in (1, 2):
        port = free_port()
        known_hosts = workdir / f"known_hosts-{firmware}"
        known_hosts.write_text("".join(f"[127.0.0.1]:{port} {' '.join(k.split()[:2])}\n" for k in host_keys))
        with open(HEAVY_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            proc = boot_installed(disk, firmware, workdir, port)
            try:
                if wait_for_ssh_banner(port, time.monotonic() + timeout):
                    for _ in range(10):  # sshd may answer before the deploy user's login works
                        try:
                            return ssh_as(port, user, key, known_hosts, command)
                        except RuntimeError as err:
                            last = err
                            time.sleep(3)
                    raise last
                if attempt == 2:
                    serial = workdir / f"serial-{firmware}.log"
                    raise VmTimeout(f"{firmware}: no SSH in {timeout} s; serial tail:\n{_tail(serial)}")
            finally:
                proc.kill()
                proc.wait()
    raise AssertionError("unreachable")
