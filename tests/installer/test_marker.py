"""The install marker (installer/proof.py): "started" once the target is mounted, "complete" only as the
last write; and the probe the controller runs on the installed system to read it back."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from installer import proof
from tests.installer.test_run_cli import FIXTURES, plan, run_installer

MARKER = proof.MARKER_PATH.lstrip("/")


def test_a_finished_simulated_install_leaves_the_marker_complete(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    code, events, err = run_installer(tmp_path, plan(run="20240101-1"), "--simulate", str(FIXTURES / "sata.json"),
                                      "--simulate-root", str(disk))
    assert code == 0, err
    path = disk / MARKER
    marker = json.loads(path.read_text())
    assert marker["state"] == "complete" and marker["run"] == "20240101-1"
    assert marker["hostname"] == "hv1.cluster.test"
    assert marker["disk"]["serial"] == "S3Z1NB0K654321B" and marker["disk"]["path"] == "/dev/sdb"
    assert marker["summary"]["disk"]["serial"] == "S3Z1NB0K654321B"
    assert marker["started_at"] <= marker["completed_at"]
    assert {"wipe", "os", "bootloader"} <= set(marker["summary"]["steps"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the deploy user reads it without sudo
    assert not list(path.parent.glob(".*pvc-tmp"))  # replaced whole, nothing half-written beside it
    # the marker is announced like any other write in the log of a simulated run
    assert f"write: {tmp_path / 'target' / MARKER}" in (tmp_path / "install.log").read_text()
    assert events[-1]["event"] == "done"


def test_an_install_that_stops_half_way_leaves_the_marker_started(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    code, events, _ = run_installer(tmp_path, plan(run="r-1"), "--simulate", str(FIXTURES / "sata.json"),
                                    "--simulate-root", str(disk), "--stop-after", "bootloader")
    assert code != 0 and events[-1]["event"] == "stopped"
    marker = json.loads((disk / MARKER).read_text())
    assert marker["state"] == "started" and marker["run"] == "r-1" and "summary" not in marker


def test_before_the_target_is_mounted_there_is_no_marker(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    code, _, _ = run_installer(tmp_path, plan(), "--simulate", str(FIXTURES / "sata.json"),
                               "--simulate-root", str(disk), "--stop-after", "filesystems")
    assert code != 0 and not (disk / MARKER).exists()


def test_without_a_simulated_disk_a_simulated_install_writes_nothing(tmp_path: Path) -> None:
    code, _, err = run_installer(tmp_path, plan(), "--simulate", str(FIXTURES / "sata.json"))
    assert code == 0, err
    assert not (tmp_path / "target").exists() and not list(tmp_path.rglob("install.json"))


def _fake_tools(bin_dir: Path, source: str, lsblk: dict[str, object]) -> dict[str, str]:
    bin_dir.mkdir()
    (bin_dir / "findmnt").write_text(f"#!/bin/sh\necho {source}\n")
    (bin_dir / "lsblk").write_text(f"#!/bin/sh\n[ \"$5\" = {source} ] || exit 32\ncat <<'EOF'\n"
                                   f"{json.dumps(lsblk)}\nEOF\n")
    for tool in ("findmnt", "lsblk"):
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_the_probe_reads_the_marker_and_the_disk_under_the_root_lv(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/pvcctl").mkdir(parents=True)
    (root / MARKER).write_text(json.dumps({"state": "complete", "run": "r-1"}))
    part = {"path": "/dev/sda4", "type": "part", "serial": None, "wwn": "0x5000c500a1b2c3d4",
            "children": [{"path": "/dev/sda", "type": "disk", "serial": "S3Z1", "wwn": "0x5000c500a1b2c3d4"}]}
    tree = {"blockdevices": [{"path": "/dev/mapper/vgx-root", "type": "lvm", "serial": None, "children": [part]}]}
    env = {**_fake_tools(tmp_path / "bin", "/dev/mapper/vgx-root", tree), proof.SIM_ROOT_ENV: str(root)}
    # as verify runs it: the module's source on stdin, the stdlib alone
    out = subprocess.run([sys.executable, "-I", "-S", "-"], input=Path(proof.__file__).read_text(), env=env,
                         capture_output=True, text=True, check=True).stdout
    found = json.loads(out)
    assert found["marker"] == {"state": "complete", "run": "r-1"}
    assert found["root_source"] == "/dev/mapper/vgx-root"
    assert found["root_disks"] == [{"path": "/dev/sda", "serial": "S3Z1", "wwn": "0x5000c500a1b2c3d4"}]


def test_the_probe_says_what_it_could_not_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert proof.read_marker(root) == {"marker_error": f"no {proof.MARKER_PATH}"}
    (root / "var/lib/pvcctl").mkdir(parents=True)
    (root / MARKER).write_text("{half")
    assert proof.read_marker(root)["marker_error"].startswith(f"cannot read {proof.MARKER_PATH}")
    (root / MARKER).write_text("[]")
    assert proof.read_marker(root) == {"marker_error": f"{proof.MARKER_PATH} is not a JSON object"}
