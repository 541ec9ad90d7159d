"""controller/node/proof.py's judgement of what the installed system showed, case by case."""

from __future__ import annotations

from typing import Any

import pytest

from controller.bmc.base import MediaStatus
from controller.node.proof import NotProven, check_media, judge, parse_probe

CHOSEN = {"path": "/dev/sda", "serial": "S3Z1", "wwn": "5000c500a1b2c3d4", "model": "SSD"}


def found(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"marker": {"state": "complete", "run": "r-1"}, "root_source": "/dev/mapper/vgx-root",
                            "root_disks": [{"path": "/dev/sda", "serial": "S3Z1", "wwn": "0x5000c500a1b2c3d4"}]}
    return base | changes


def test_the_chosen_disk_is_found_by_serial_else_wwn_else_path() -> None:
    assert judge(found(), CHOSEN, "r-1", "hv1").matched_by == "serial"
    renamed = [{"path": "/dev/sdb", "serial": "", "wwn": "0x5000C500A1B2C3D4"}]  # another name after reboot
    assert judge(found(root_disks=renamed), CHOSEN, "r-1", "hv1").matched_by == "wwn"
    bare = {"path": "/dev/vda", "serial": "", "wwn": ""}
    assert judge(found(root_disks=[{"path": "/dev/vda", "serial": "", "wwn": ""}]), bare, "r-1", "hv1").matched_by \
        == "path"
    with pytest.raises(NotProven, match="it booted another disk"):  # a serial to match: the path is not enough
        judge(found(root_disks=[{"path": "/dev/sda", "serial": "OTHER", "wwn": ""}]), CHOSEN, "r-1", "hv1")


@pytest.mark.parametrize(("probe", "message"), [
    (found(marker=None, marker_error="no /var/lib/pvcctl/install.json"),
     r"has no install marker \(no /var/lib/pvcctl/install.json\)"),
    (found(marker={"state": "started", "run": "r-1"}), "booted a half-written system.*says 'started' \\(run r-1\\)"),
    (found(marker={"state": "complete", "run": "r-0"}), r"another install: its marker is from run r-0, not this one"),
    (found(root_error="cannot tell the root filesystem's disk: no lsblk"), "cannot tell the root filesystem's disk"),
])
def test_what_does_not_prove_the_install_is_named(probe: dict[str, Any], message: str) -> None:
    with pytest.raises(NotProven, match=message) as caught:
        judge(probe, CHOSEN, "r-1", "hv1")
    assert caught.value.node == "hv1" and caught.value.phase == "verify" and caught.value.hint


def test_probe_output_that_is_not_its_json_is_refused_in_words() -> None:
    assert parse_probe('noise\n{"marker_error": "x"}\n', "hv1") == {"marker_error": "x"}
    with pytest.raises(NotProven, match="printed no result: 'python3: not found'"):
        parse_probe("python3: not found\n", "hv1")


def test_media_still_inserted_is_refused() -> None:
    check_media(MediaStatus("/redfish/v1/Managers/1/VirtualMedia/CD", False, ""), "hv1")
    with pytest.raises(NotProven, match=r"still shows virtual media inserted in .*CD \(http://x/pvc.iso\)"):
        check_media(MediaStatus("/redfish/v1/Managers/1/VirtualMedia/CD", True, "http://x/pvc.iso"), "hv1")
