"""`python3 -m installer run` as the controller drives it: simulate and dry-run modes, the event
schema, exit codes, the report file; and that it needs nothing but the standard library."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "installer"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcnRlc3RzMDAw test@pvcctl"
# `-I -S`: isolated (no PYTHONPATH, no cwd on sys.path) and no site-packages: the stdlib alone.
ISOLATED = ["-I", "-S", "-c", "import sys, runpy; sys.path.insert(0, sys.argv.pop(1)); "
            "runpy.run_module('installer', run_name='__main__')", str(REPO)]
EVENT_KEYS = {"time", "phase", "step", "percent", "message", "level"}


def plan(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "hostname": "hv1.cluster.test", "disk": "serial:S3Z1NB0K654321B", "image": "/run/live/medium/pvc/t.squashfs",
        "ssh_keys": [KEY], "network": {"interface": "eno1", "address": "10.0.0.11/24", "gateway": "10.0.0.1",
                                       "dns": ["10.0.0.1"]}}
    base.update(changes)
    return base


def run_installer(tmp_path: Path, plan_data: Any, *args: str, python: str = sys.executable,
                  timeout: float = 30) -> tuple[int, list[dict[str, Any]], str]:
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan_data if isinstance(plan_data, str) else json.dumps(plan_data))
    argv = [python, *ISOLATED, "run", str(plan_file), "--log", str(tmp_path / "install.log"),
            "--report", str(tmp_path / "report.json"), "--target", str(tmp_path / "target"), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, events, proc.stderr


def check_schema(events: list[dict[str, Any]]) -> None:
    assert events, "no events"
    for event in events[:-1]:
        assert set(event) == EVENT_KEYS, event
        assert event["level"] in ("info", "error") and 0 <= event["percent"] <= 100
    assert "event" in events[-1] and "time" in events[-1]
    percents = [e["percent"] for e in events[:-1]]
    assert percents == sorted(percents)


def test_simulate_runs_every_step_and_reports(tmp_path: Path) -> None:
    start = time.monotonic()
    code, events, err = run_installer(tmp_path, plan(), "--simulate", str(FIXTURES / "sata.json"))
    seconds = time.monotonic() - start
    assert code == 0, err
    check_schema(events)
    final = events[-1]
    assert final["event"] == "done" and final["exit_code"] == 0
    report = final["report"]
    assert report == json.loads((tmp_path / "report.json").read_text())
    assert report["disk"]["path"] == "/dev/sdb" and report["disk"]["serial"] == "S3Z1NB0K654321B"
    assert report["simulated"] is True and report["ssh_host_keys_fake"] is True
    assert report["macs"] == {"eno1": "b8:ca:3a:6b:10:20", "eno2": "b8:ca:3a:6b:10:21"}
    steps = {e.get("step") for e in events}
    assert {"wipe", "partition", "lvm", "os", "bootloader", "finish"} <= steps
    assert set(report["step_seconds"]) >= {"wipe", "os", "bootloader"}
    assert [v["size"] for v in report["volumes"]] == [32 * 2**30, 8 * 2**30, 32 * 2**30, 16 * 2**30]
    assert not (tmp_path / "target").exists()
    assert seconds < 10  # a simulated cluster runs many of these; generous bound against hangs only


def test_step_delay_slows_a_simulated_run(tmp_path: Path) -> None:
    start = time.monotonic()
    code, _, _ = run_installer(tmp_path, plan(), "--simulate", str(FIXTURES / "nvme.json"), "--step-delay", "0.1",
                               *[])
    assert code == 3  # the sata serial is not on the NVMe machine: refused before any step
    code, events, _ = run_installer(tmp_path, plan(disk="smallest"), "--simulate", str(FIXTURES / "nvme.json"),
                                    "--step-delay", "0.1")
    assert code == 0 and events[-1]["report"]["disk"]["path"] == "/dev/nvme1n1"
    assert time.monotonic() - start >= 0.1 * 14


@pytest.mark.parametrize(("hint", "words"), [
    ("model:Samsung SSD 860", ["2 disks match", "S3Z1NB0K123456A", "S3Z1NB0K654321B"]),
    ("/dev/sr0", ["booted from"]),
    ("wwn:0x5002538e40ffffff", ["no disk matches", "/dev/sda", "/dev/sdb"]),
])
def test_refused_disk_exits_3_before_touching_anything(tmp_path: Path, hint: str, words: list[str]) -> None:
    code, events, _ = run_installer(tmp_path, plan(disk=hint), "--simulate", str(FIXTURES / "sata.json"))
    assert code == 3
    check_schema(events)
    assert events[-1]["event"] == "failed" and events[-1]["exit_code"] == 3 and events[-1]["step"] == "choose"
    for word in words:
        assert word in events[-1]["message"]
    assert not any(e.get("step") in ("wipe", "partition") for e in events)


@pytest.mark.parametrize(("data", "field"), [
    (plan(hostname="hv1"), "hostname"),
    (plan(disk="serial:"), "disk"),
    (plan(filesystem="btrfs"), "filesystem"),
    (plan(ssh_keys=[], root_password_hash=None), "ssh_keys"),
    (plan(root_password_hash="hunter2"), "root_password_hash"),
    (plan(network={"interface": "eno1", "vlan": 5000}), "network.vlan"),
    (plan(colour="blue"), "colour"),
    ("{not json", ""),
])
def test_bad_plan_exits_2_naming_the_field(tmp_path: Path, data: Any, field: str) -> None:
    code, events, _ = run_installer(tmp_path, data, "--simulate", str(FIXTURES / "sata.json"))
    assert code == 2
    assert events[-1]["event"] == "failed" and events[-1]["field"] == field


@pytest.mark.root
def test_unreadable_disks_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "disks.json"
    broken.write_text('{"blockdevices": [{"name": "sda", "type": "disk", "size": "big"}]}')
    code, events, err = run_installer(tmp_path, plan(), "--simulate", str(broken))
    assert code == 2 and "Traceback" not in err
    assert events[-1]["event"] == "failed" and "cannot read the disks" in events[-1]["message"]


@pytest.mark.root
def test_dry_run_on_a_loop_disk_announces_and_touches_nothing(tmp_path: Path) -> None:
    """A real dry run on this machine: a 30 GiB loop disk with a marker; every destructive action is
    printed as "would ...", and afterwards the disk is byte-for-byte what it was."""
    image = tmp_path / "disk.img"
    subprocess.run(["truncate", "-s", "30G", str(image)], check=True)
    with image.open("r+b") as disk:
        disk.write(b"PVC-MARKER" * 100)
    loop = subprocess.run(["losetup", "--find", "--show", "--partscan", str(image)], capture_output=True,
                          text=True)
    if loop.returncode != 0:
        pytest.skip(f"no loop device here: {loop.stderr.strip()}")
    device = loop.stdout.strip()
    try:
        code, events, err = run_installer(tmp_path, plan(disk=device), "--dry-run")
    finally:
        subprocess.run(["losetup", "--detach", device], check=True)
    assert code == 0, err
    would = [e["message"] for e in events if e.get("message", "").startswith("would ")]
    for expected in (f"would run: wipefs --all --force {device}", f"would run: sgdisk --zap-all {device}",
                     f"would run: pvcreate --force --force --yes {device}p4", "would run: mkfs.ext4 -F -q -L root",
                     f"would run: mkfs.vfat -F 32 -n EFI {device}p2", "would write: ",
                     "would run: chroot " + str(tmp_path / "target") + " grub-install"):
        assert any(line.startswith(expected) for line in would), expected
    assert image.open("rb").read(1000) == b"PVC-MARKER" * 100
    assert not Path(f"{device}p1").exists() and not (tmp_path / "target").exists()


def test_simulate_logs_every_destructive_command(tmp_path: Path) -> None:
    lsblk = {"lsblk": json.loads((FIXTURES / "virtio.json").read_text())["lsblk"], "boot_devices": ["/dev/sr0"],
             "interfaces": {"enp0s2": "52:54:00:12:34:56"}, "efi": False}
    disks = tmp_path / "disks.json"
    disks.write_text(json.dumps(lsblk))
    code, _events, _ = run_installer(tmp_path, plan(disk="/dev/vdb", boot_mode="both"), "--simulate", str(disks))
    assert code == 0
    log = (tmp_path / "install.log").read_text()
    for command in ("sgdisk --zap-all /dev/vdb", "pvcreate --force --force --yes /dev/vdb4",
                    "vgcreate --force --yes vgx /dev/vdb4", "mkfs.ext4 -F -q -L root /dev/vgx/root",
                    "grub-install --target=i386-pc /dev/vdb", "--uefi-secure-boot --removable --no-nvram"):
        assert command in log
    assert "/dev/vda" not in log.replace("virtio", "")  # only the chosen disk is ever named


def test_installer_imports_only_the_standard_library(tmp_path: Path) -> None:
    """Every installer module imports under `python3 -I -S` (no site-packages at all)."""
    code = ("import sys, pkgutil, importlib; sys.path.insert(0, sys.argv[1]); import installer; "
            "[importlib.import_module('installer.' + m.name) for m in pkgutil.iter_modules(installer.__path__)]; "
            "bad = [n for n, m in sys.modules.items() if getattr(m, '__file__', None) and "
            "('site-packages' in m.__file__ or 'dist-packages' in m.__file__)]; print(bad); sys.exit(bool(bad))")
    proc = subprocess.run(["/usr/bin/python3", "-I", "-S", "-c", code, str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "[]"


@pytest.mark.parametrize("args", [["--dry-run", "run", "PLAN"], ["run", "PLAN", "--dry-run"]])
def test_dry_run_flag_holds_on_either_side_of_run(args: list[str]) -> None:
    """argparse resets a sub-command's flags to their defaults: a dry run must never turn real."""
    from installer.__main__ import options_from, parser

    options = options_from(parser().parse_args(args), human=False)
    assert options.mode.value == "dry-run"
