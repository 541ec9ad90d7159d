"""Proof that an install completed (controller/node/proof.py), end to end on the simulated lab: verify
logs in to the installed system with the host key the installer reported, reads the install marker and
the root filesystem's disk there (installer/proof.py), and asks the BMC whether media is still in."""

from __future__ import annotations

import json

from tests.deploy.conftest import LabFactory, Pvcctl, journal_rows, node_states, run_dir


def verify_result(lab: object, node: str) -> dict[str, object]:
    rows = journal_rows(lab, "SELECT result FROM steps WHERE node=? AND phase='verify'", node)  # type: ignore[arg-type]
    assert rows, "no verify result in the journal"
    result: dict[str, object] = json.loads(rows[-1][0])
    return result


def node_error(lab: object, node: str) -> str:
    (error,) = journal_rows(lab, "SELECT error FROM nodes WHERE node=?", node)[0]  # type: ignore[arg-type]
    return str(error)


async def test_a_finished_install_is_proved_by_marker_root_disk_and_ejected_media(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1, deploy={"retries": 0})
    result = await pvcctl.run("deploy", "--yes", str(lab.inventory))
    assert result.code == 0, result.out + result.err
    run = run_dir(lab)
    verified = verify_result(lab, "hv1")
    serial = f"{lab.nodes['hv1'].machine.serial}-D0"  # the first simulated disk: the one the hint chose
    assert verified["marker_run"] == f"{run.name}-1"
    assert verified["root_source"] == "/dev/mapper/vgx-root" and verified["root_disk"] == "/dev/sda"
    assert verified["root_serial"] == serial and verified["matched_by"] == "serial"
    assert verified["media_ejected"] is True
    log = (run / "logs" / "hv1.1.log").read_text()
    assert f"install marker complete (run {run.name}-1); root /dev/mapper/vgx-root is on /dev/sda " \
           f"(serial {serial}), the chosen disk" in log
    assert "the BMC shows no virtual media inserted" in log
    marker = json.loads((lab.nodes["hv1"].disk / "var/lib/pvcctl/install.json").read_text())
    assert marker["state"] == "complete" and marker["disk"]["serial"] == serial


async def test_a_half_written_install_is_caught_by_verify(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, deploy={"retries": 2})
    lab.nodes["hv1"].loses_last_writes = True  # it reboots into a disk whose marker still says "started"
    result = await pvcctl.run("deploy", "--yes", "--partial", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "failed", "hv2": "done"}
    error = node_error(lab, "hv1")
    assert "the node booted a half-written system: its install marker /var/lib/pvcctl/install.json says " \
           "'started'" in error and "so the install never finished" in error
    assert "`pvcctl retry hv1` installs it again" in error
    assert dict(journal_rows(lab, "SELECT node, attempt FROM nodes"))["hv1"] == 1  # not retried blindly
    assert "hv1" not in (run_dir(lab) / "pvc-ansible" / "hosts").read_text()  # never counted as installed
    assert verify_result(lab, "hv2")["matched_by"] == "serial"


async def test_media_still_inserted_after_finalize_fails_the_node(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1, deploy={"retries": 2})
    lab.bmc("hv1").faults.media_back_after_restart = True  # the restart to disk mounts the ISO again
    result = await pvcctl.run("deploy", "--yes", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "failed"}
    error = node_error(lab, "hv1")
    assert "the BMC still shows virtual media inserted" in error and "after finalize ejected it" in error
    assert "pvcctl bmc media eject -i INVENTORY -n hv1" in error and "`pvcctl retry hv1`" in error
    log = (run_dir(lab) / "logs" / "hv1.1.log").read_text()
    assert "install marker complete" in log  # the disk itself was proved; only the media was not


async def test_a_node_that_boots_another_disk_is_failed_with_both_disks_named(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    from lab.sim_node import SimDisk, SimHardware

    two = SimHardware(disks=(SimDisk("sda"), SimDisk("sdb", size=960_197_124_096, model="OTHER SSD")))
    lab = await make_lab(1, deploy={"retries": 0}, hardware={"hv1": two})
    lab.nodes["hv1"].boots_disk = 0  # the firmware boots sda, not sdb that the lab's hint (largest) chose
    result = await pvcctl.run("deploy", "--yes", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    serial = lab.nodes["hv1"].machine.serial
    error = node_error(lab, "hv1")
    assert f"root (/dev/mapper/vgx-root) is on /dev/sda (serial {serial}-D0), not on the disk the install chose " \
           f"(/dev/sdb (serial {serial}-D1" in error and "it booted another disk" in error
    assert "make the chosen disk the first boot device" in error
