"""The wipe touches the chosen disk's LVM only: a volume group reaching another disk, or another
disk's vgx, stops the install. `pvs` answers are recorded text (this host has no volume groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from installer.actions import Actions, Mode, StepFailed
from installer.context import Install
from installer.disks import Disk
from installer.events import Reporter
from installer.plan import DiskHint, Network, Plan
from installer.steps_disk import disk_volume_groups, wipe


class RecordedPvs(Actions):
    """Answers `pvs` from recorded output; every other command is announced, as in a dry run."""

    def __init__(self, reporter: Reporter, pvs: str):
        super().__init__(Mode.DRY_RUN, reporter)
        self.pvs = pvs

    def run(self, argv: list[str], **kwargs: Any) -> str:
        if argv[0] == "pvs":
            return self.pvs
        return super().run(argv, **kwargs)


def install(tmp_path: Path, pvs: str) -> Install:
    reporter = Reporter(tmp_path / "log", out=open(tmp_path / "events", "w"))  # noqa: SIM115
    plan = Plan(hostname="hv1.c.test", disk=DiskHint("path", "/dev/sdb"), network=Network(interface="eno1"),
                image="/x", ssh_keys=("ssh-ed25519 AAAA a@b",))
    disk = Disk(path="/dev/sdb", size=500 * 10**9, partitions=("/dev/sdb1", "/dev/sdb4"))
    return Install(plan, disk, RecordedPvs(reporter, pvs), reporter, tmp_path / "t", {}, False)


def test_old_install_on_the_chosen_disk_is_removed(tmp_path: Path) -> None:
    ctx = install(tmp_path, "  /dev/sdb4|vgx\n  /dev/sda3|system\n")
    assert disk_volume_groups(ctx) == ["vgx"]
    wipe(ctx)
    ctx.reporter.close()
    events = (tmp_path / "events").read_text()
    assert "vgremove --force --force --yes vgx" in events and "pvremove --force --force --yes /dev/sdb4" in events
    assert "system" not in events and "/dev/sda" not in events


@pytest.mark.parametrize(("pvs", "message"), [
    ("  /dev/sdb4|data\n  /dev/sdc1|data\n", "volume group data on /dev/sdb also uses /dev/sdc1"),
    ("  /dev/sda4|vgx\n", r"another disk \(/dev/sda4\) already holds a volume group vgx"),
])
def test_lvm_reaching_beyond_the_disk_stops_the_install(tmp_path: Path, pvs: str, message: str) -> None:
    with pytest.raises(StepFailed, match=message):
        disk_volume_groups(install(tmp_path, pvs))
