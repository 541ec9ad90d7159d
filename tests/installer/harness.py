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


def test_plan(image_path: str, public_key: str, root_hash: str) -> dict[str, Any]:
    return {
        "hostname": "hv1.cluster.test", "disk": "serial:pvc-target", "filesystem": "ext4", "method": "image",
        "image": image_path, "boot_mode": "both", "ssh_keys": [public_key], "root_password_hash": root_hash,
        "network": {"mac": vm.NIC_MAC, "address": "10.0.2.15/24", "gateway": "10.0.2.2", "dns": ["10.0.2.3"]},
    }


def install_in_vm(kit: vm.LiveKit, target_image: Path, plan: dict[str, Any], workdir: Path,
                  timeout: float = 900) -> InstallResult:
    import time

    staging = workdir / "payload"
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "src").mkdir(parents=True)
    shutil.copytree(REPO / "installer", staging / "src" / "installer",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(target_image, staging / "target.squashfs")
    (staging / "plan.json").write_text(json.dumps(plan))
    (staging / "run.sh").write_text(RUN_SH)
    start = time.monotonic()
    for attempt in (1, 2):
        disk = workdir / "disk.img"
        disk.unlink(missing_ok=True)
        subprocess.run(["truncate", "-s", DISK_SIZE, str(disk)], check=True)
        payload = vm.payload_disk(staging, workdir / "payload.img")
        try:
            vm.run_live_install(kit, payload, disk, workdir / f"serial-install-{attempt}.log", timeout)
            break
        except vm.VmTimeout:
            if attempt == 2:
                raise
    seconds = time.monotonic() - start
    names = ["events1.jsonl", "events2.jsonl", "rc1", "rc2", "report.json", "console.log", "install.log"]
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
