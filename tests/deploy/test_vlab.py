"""The virtual lab: `pvcctl deploy` onto a QEMU machine behind an emulated BMC, all of it for real.

`pvcctl lab up --qemu 1` and `pvcctl deploy` run as real processes in a network namespace this test
makes (a bridge, the controller's address on it, the VM's tap): deploy builds the cluster's ISO
from the session's cached stages with its own seed, the emulated BMC mounts it and powers the VM
on, the real live system checks in with its pinned host key, the real installer writes the VM's
disk, and deploy restarts the VM from that disk and logs in as the deploy user with the host key
the installer reported. Before that, `deploy --inspect` boots the same machine into its live system,
whose disk holds an old GPT and ext4 file system: the report names that disk and what it holds, and
the disk image's bytes are the same afterwards. The machine is UEFI (OVMF), as the lab's are by
default. Minutes under TCG: two live boots, one install, one disk boot.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_CACHE
from tests.deploy.conftest import PVCCTL

HEAVY_LOCK = "/tmp/pvcctl-heavy.lock"


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"pvctest{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


async def _heavy_lock() -> int:
    fd = os.open(HEAVY_LOCK, os.O_CREAT | os.O_RDWR)
    await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)  # one QEMU-heavy job at a time on this machine
    return fd


@pytest.mark.slow
async def test_deploy_onto_a_qemu_machine(live_iso: object, tmp_path: Path, netns: str) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    directory = tmp_path / "vlab"
    inside = ["ip", "netns", "exec", netns, PVCCTL]
    lab = await asyncio.create_subprocess_exec(
        *inside, "lab", "up", "--qemu", "1", "--dir", str(directory), "--iso-cache", str(TEST_CACHE / "iso"),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    lock = await _heavy_lock()
    try:
        assert lab.stdout is not None
        up = (await asyncio.wait_for(lab.stdout.readline(), 60)).decode()
        assert "its inventory:" in up, up + (await lab.stdout.read(4000)).decode()
        assert f"deploy it with: ip netns exec {netns} pvcctl deploy" in (await lab.stdout.readline()).decode()
        machine = directory / "machines" / "hv1"
        _old_contents(machine / "disk.raw")
        before = _disk_digest(machine / "disk.raw")
        inspect, inspected = await _pvcctl(inside, env, "deploy", "--inspect", "--json", directory / "inventory.yml")
        after_inspect = _disk_digest(machine / "disk.raw")
        deploy, (out, err) = await _pvcctl(inside, env, "deploy", directory / "inventory.yml")
    finally:
        os.close(lock)
        lab.send_signal(signal.SIGTERM)  # the lab alone: it powers its machines off itself
        try:
            await asyncio.wait_for(lab.wait(), 60)
        except TimeoutError:
            os.killpg(lab.pid, signal.SIGKILL)
            raise
    assert not _qemu_of(machine), "the stopped lab left its VM running"
    inspect_story = inspected[0].decode() + inspected[1].decode()
    assert inspect.returncode == 0, inspect_story + _tails(machine)
    # --inspect booted the live system, read the machine and wrote nothing: the disk's bytes are as they were
    assert after_inspect == before
    report = json.loads(inspected[0].decode().strip().splitlines()[-1])["inspect"][0]
    assert report["chosen"]["path"] == "/dev/vda" and report["chosen"]["filesystems"] == ["ext4"]
    assert "will WIPE /dev/vda" in report["statement"] and "ext4" in report["statement"]
    assert {c["key"]: c["status"] for c in report["checks"]}["virtualization"] in ("ok", "warn")
    story = out.decode() + err.decode()
    assert deploy.returncode == 0, story + _tails(machine)
    assert _disk_digest(machine / "disk.raw") != before  # the deploy did wipe it

    run = sorted((directory / "runs" / "vlab").glob("*/journal.sqlite"))[-1].parent
    assert "live ISO ready" in story
    assert "built: iso;" in inspect_story  # the seed is new, every other stage cached
    with sqlite3.connect(run / "journal.sqlite") as db:
        steps = dict(db.execute("SELECT phase, result FROM steps WHERE node = 'hv1'").fetchall())
    verified = json.loads(steps["verify"])
    assert verified["address"] == "10.254.0.1"  # the inventory's address, on the installed system
    report = json.loads((run / "logs" / "hv1.1" / "report.json").read_text())
    assert report["disk"]["path"] == "/dev/vda"  # the VM's one disk, the one the inventory's hint names
    assert report["boot_modes"] == ["uefi"]  # the lab's machines are UEFI (OVMF), so the install is too
    known_hosts = (run / "pvc-ansible" / "known_hosts").read_text()
    for key in verified["host_keys"]:  # what deploy logged in with is what Ansible will trust
        assert key.split()[1] in known_hosts
    log = (run / "logs" / "hv1.1.log").read_text()
    assert "checked in: serial PVC000001" in log and "the pinned one" in log and "uefi boot" in log
    # three boots: the live ISO for the inspection, the live ISO for the install, then the disk the
    # installer wrote, by the boot entry the installer put into the machine's own NVRAM
    assert sorted(p.name for p in machine.glob("serial-*.log")) == ["serial-1.log", "serial-2.log", "serial-3.log"]
    assert re.search(r'starting Boot[0-9A-F]{4} "debian"', (machine / "serial-3.log").read_text(errors="replace"))
    assert os.path.getsize(machine / "disk.raw") > 0 and _allocated(machine / "disk.raw") > 500 << 20


async def _pvcctl(inside: list[str], env: dict[str, str], *args: str | Path
                  ) -> tuple[asyncio.subprocess.Process, tuple[bytes, bytes]]:
    proc = await asyncio.create_subprocess_exec(*inside, *map(str, args), env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, start_new_session=True)
    try:
        return proc, await asyncio.wait_for(proc.communicate(), 2400)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _old_contents(disk: Path) -> None:
    """What a used server's disk holds: a GPT with one ext4 file system, written before the machine starts."""
    subprocess.run(["sgdisk", "--new=1:2048:+64M", "--typecode=1:8300", str(disk)], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "old-data", "-E", "offset=1048576", str(disk), "64M"], check=True)


def _disk_digest(disk: Path) -> str:
    """SHA-256 of a sparse disk image's bytes, read only where it has data: every 1 MiB chunk that is
    not all zeros, with its index, and the image's size (holes and written zeros count the same)."""
    chunk = 1 << 20
    digest = hashlib.sha256(str(disk.stat().st_size).encode())
    with disk.open("rb") as image:
        fd, offset, end, done = image.fileno(), 0, disk.stat().st_size, -1
        while offset < end:
            try:
                offset = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError:  # nothing but holes after offset
                break
            hole = os.lseek(fd, offset, os.SEEK_HOLE)
            for index in range(max(offset // chunk, done + 1), (hole + chunk - 1) // chunk):
                image.seek(index * chunk)
                data = image.read(chunk)
                if data.strip(b"\0"):
                    digest.update(index.to_bytes(8, "big") + data)
                done = index
            offset = hole
    return digest.hexdigest()


def _qemu_of(machine: Path) -> list[int]:
    """QEMU processes running this machine's disk."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(machine / "disk.raw").encode() in (proc / "cmdline").read_bytes():
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _allocated(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def _tails(machine: Path) -> str:
    parts = []
    for log in sorted(machine.glob("serial-*.log")) + [machine / "qemu.err"]:
        if log.exists():
            parts.append(f"\n--- {log.name} ---\n{log.read_text(errors='replace')[-2000:]}")
    return "".join(parts)
