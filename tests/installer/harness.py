"""Run the real installer onto a raw disk image inside the live test VM, twice: first stopped half
way (after `mount`, leaving mounts and an active vgx behind), then to the end over that."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.installer import vm

REPO = Path(__file__).resolve().parents[2]
DISK_SIZE = "30G"  # just over the small layout's minimum (about 29 GiB); sparse

RUN_SH = """set -x
cd /payload/src
ip -br link
python3 -m installer run /payload/plan.json --stop-after mount --log /payload/install.log \\
  --report /payload/report.json > /payload/events1.jsonl
echo $? > /payload/rc1
python3 -m installer run /payload/plan.json --log /payload/install.log --report /payload/report.json \\
  > /payload/events2.jsonl
echo $? > /payload/rc2
"""


# One run, timed inside the VM (bench/install.py); `net` brings the NIC up by DHCP for debootstrap.
RUN_ONCE_SH = """set -x
cd /payload/src
{net}
start=$(date +%s.%N)
python3 -m installer run /payload/plan.json --log /payload/install.log --report /payload/report.json \\
  > /payload/events2.jsonl
echo $? > /payload/rc2
python3 -c "import sys; print(float(sys.argv[1]) - float(sys.argv[2]))" $(date +%s.%N) $start > /payload/seconds
"""


@dataclass(frozen=True)
class InstallResult:
    disk: Path
    workdir: Path
    rc_half: int
    rc_full: int
    events_half: list[dict[str, Any]]
    events_full: list[dict[str, Any]]
    report: dict[str, Any]
    console: str
    seconds: float


def test_plan(image_path: str, public_key: str, root_hash: str, mirror: str = "") -> dict[str, Any]:
    return {
        "hostname": "hv1.cluster.test", "disk": "serial:pvc-target", "filesystem": "ext4", "method": "image",
        "mirror": mirror,
        "image": image_path, "boot_mode": "both", "ssh_keys": [public_key], "root_password_hash": root_hash,
        "network": {"mac": vm.NIC_MAC, "address": "10.0.2.15/24", "gateway": "10.0.2.2", "dns": ["10.0.2.3"]},
    }


def install_in_vm(kit: vm.LiveKit, target_image: Path, plan: dict[str, Any], workdir: Path,
                  timeout: float = 900, script: str = RUN_SH) -> InstallResult:
    staging = workdir / "payload"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "src").mkdir(parents=True)
    shutil.copytree(REPO / "installer", staging / "src" / "installer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(target_image, staging / "target.squashfs")
    (staging / "plan.json").write_text(json.dumps(plan))
    (staging / "run.sh").write_text(script)
    seconds = 0.0
    for attempt in (1, 2):
        disk = workdir / "disk.img"
        disk.unlink(missing_ok=True)
        subprocess.run(["truncate", "-s", DISK_SIZE, str(disk)], check=True)
        payload = vm.payload_disk(staging, workdir / "payload.img")
        try:
            seconds = vm.run_live_install(kit, payload, disk, workdir / f"serial-install-{attempt}.log", timeout)
            break
        except vm.VmTimeout:
            if attempt == 2:
                raise
    names = ["events1.jsonl", "events2.jsonl", "rc1", "rc2", "report.json", "console.log", "install.log", "seconds"]
    vm.read_payload(payload, names, workdir)

    def lines(name: str) -> list[dict[str, Any]]:
        path = workdir / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def code(name: str) -> int:
        path = workdir / name
        return int(path.read_text().strip()) if path.exists() else -1

    report_path = workdir / "report.json"
    return InstallResult(disk, workdir, code("rc1"), code("rc2"), lines("events1.jsonl"), lines("events2.jsonl"),
                         json.loads(report_path.read_text()) if report_path.exists() else {},
                         (workdir / "console.log").read_text() if (workdir / "console.log").exists() else "",
                         seconds)


class MountedDisk:
    """The installed disk image mounted read-only on the host without device-mapper: partitions
    and LVs found by offset (partx, and LVM metadata read by `lvs`), each on its own loop device."""

    def __init__(self, image: Path, where: Path):
        self.image, self.where = image, where
        self.loops: list[str] = []
        self.mounts: list[Path] = []
        self.partitions: dict[str, tuple[int, int]] = {}  # name → (offset, size) in bytes
        self.volumes: dict[str, tuple[int, int]] = {}

    def _loop(self, offset: int, size: int) -> str:
        out = subprocess.run(["losetup", "--find", "--show", "--read-only", "--offset", str(offset),
                              "--sizelimit", str(size), str(self.image)], check=True, capture_output=True, text=True)
        self.loops.append(out.stdout.strip())
        return self.loops[-1]

    def __enter__(self) -> MountedDisk:
        out = subprocess.run(["partx", "--show", "--bytes", "--noheadings", "--output", "NR,START,SECTORS,NAME",
                              str(self.image)], check=True, capture_output=True, text=True).stdout
        for line in out.splitlines():
            _nr, start, sectors, name = line.split()
            self.partitions[name] = (int(start) * 512, int(sectors) * 512)
        pv = self._loop(*self.partitions["pvc-lvm"])
        pe_start = int(_lvm(["pvs", "--devices", pv, "-o", "pe_start", pv]).split()[0])
        columns = "lv_name,vg_extent_size,seg_size_pe,seg_pe_ranges"
        for line in _lvm(["lvs", "--devices", pv, "-o", columns]).splitlines():
            name, extent, count, ranges = line.split()
            first = int(ranges.split(":")[1].split("-")[0])
            self.volumes[name] = (self.partitions["pvc-lvm"][0] + pe_start + first * int(extent),
                                  int(count) * int(extent))
        return self

    def blkid(self, where: tuple[int, int]) -> dict[str, str]:
        out = subprocess.run(["blkid", "-p", "-o", "export", self._loop(*where)], capture_output=True,
                             text=True, check=True).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def mount(self, where: tuple[int, int], name: str) -> Path:
        point = self.where / name
        point.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-o", "ro", self._loop(*where), str(point)], check=True)
        self.mounts.append(point)
        return point

    def __exit__(self, *exc: object) -> None:
        for point in reversed(self.mounts):
            subprocess.run(["umount", str(point)], check=False)
        for loop in self.loops:
            subprocess.run(["losetup", "--detach", loop], check=False)


def _lvm(argv: list[str]) -> str:
    proc = subprocess.run([*argv, "--noheadings", "--units", "b", "--nosuffix"], capture_output=True, text=True,
                          env={"LVM_SUPPRESS_FD_WARNINGS": "1", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
    return proc.stdout
