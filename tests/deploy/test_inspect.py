"""Know before you wipe, on the simulated lab: `deploy --inspect` reads every node and writes nothing;
PVC's requirements stop a node before the wipe while the others finish; the wipe is stated first;
`install.wipe: empty-only` keeps a disk that holds data. pvcctl runs as a real process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lab.sim import SimLab
from lab.sim_node import SimDisk, SimHardware
from tests.deploy.conftest import LabFactory, Pvcctl, installs_started, node_states, run_dir


def disk_digest(lab: SimLab, node: str) -> str:
    """Everything a simulated machine keeps on its "disk" (an install's host keys), hashed. (The QEMU
    test, tests/deploy/test_vlab.py, hashes a real disk image.)"""
    digest = hashlib.sha256()
    home = lab.dir / "machines" / node
    for path in sorted((home / "disk").rglob("*")):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


BIG_OLD_DISK = SimHardware(memory_gib=8, cores=4, nic_speed_mbps=100,
                           disks=(SimDisk("sda", 120_000_000_000, "OLD SPINNER", rotational=True,
                                          fstypes=("ext4",), volume_group="vg0"),
                                  SimDisk("sdb", 16_000_000_000, "USB STICK", removable=True)))


async def test_inspect_shows_each_node_and_writes_nothing(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(3, hardware={"hv2": BIG_OLD_DISK},
                         inventory={"requirements": {"profile": "pvc", "coordinators": [1, 3], "ipmi": "off"}})
    before = {n: disk_digest(lab, n) for n in ("hv1", "hv2", "hv3")}
    result = await pvcctl.run("deploy", "--inspect", "--json", str(lab.inventory))
    assert result.code == 1, result.out + result.err  # hv2 and the others fail PVC's minimums (a lab's machines)
    final = json.loads(result.out.strip().splitlines()[-1])
    nodes = {n["node"]: n for n in final["inspect"]}
    assert set(nodes) == {"hv1", "hv2", "hv3"} and all(n["state"] == "done" for n in nodes.values())
    hv2 = nodes["hv2"]
    assert hv2["chosen"]["path"] == "/dev/sda" and hv2["chosen"]["rotational"] is True
    assert hv2["chosen"]["volume_groups"] == ["vg0"] and hv2["chosen"]["filesystems"] == ["ext4"]
    assert hv2["chosen"]["by_id"] and hv2["chosen"]["serial"].endswith("-D0")
    assert "will WIPE /dev/sda (PVCLAB OLD SPINNER" in hv2["statement"] and "LVM vg0" in hv2["statement"]
    status = {c["key"]: c["status"] for c in hv2["checks"]}
    assert status["memory_min_gb"] == "fail" and status["cores_min"] == "fail" and status["nic_min_mbps"] == "fail"
    assert status["disk_ssd"] == "warn" and status["disk_min_gb"] == "ok" and status["ipmi"] == "skip"
    assert status["bmc_health"] == "ok" and status["virtualization"] == "ok"
    assert {d["path"] for d in hv2["hardware"]["disks"]} == {"/dev/sda", "/dev/sdb"}
    assert {n["speed_mbps"] for n in hv2["hardware"]["nics"]} == {100}
    hv1 = {c["key"]: c["status"] for c in nodes["hv1"]["checks"]}
    assert hv1["memory_min_gb"] == "ok" and hv1["cores_min"] == "ok" and hv1["disk_ssd"] == "ok"
    # nothing written, nothing recorded, every node off with its media ejected
    assert {n: disk_digest(lab, n) for n in before} == before
    assert all(installs_started(lab, n) == [] for n in before)
    assert not (lab.dir / "runs" / "simlab" / "installed.json").exists() or \
        json.loads((lab.dir / "runs" / "simlab" / "installed.json").read_text()).get("nodes", {}) == {}
    assert not (run_dir(lab) / "pvc-ansible").exists()
    for name in before:
        machine = lab.nodes[name].machine
        assert machine.power_state == "Off" and machine.cd_image is None  # type: ignore[attr-defined]
        kept = json.loads((run_dir(lab) / "nodes" / name / "inspect.json").read_text())
        assert kept["node"] == name and kept["checks"]
    # a deploy after the inspection is not refused as a reinstall: nothing was installed
    deploy = await pvcctl.run("deploy", str(lab.inventory))
    assert deploy.code == 1, deploy.out + deploy.err


async def test_inspect_table_on_the_terminal(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1)
    result = await pvcctl.run("deploy", "--inspect", str(lab.inventory))
    assert result.code == 0, result.out + result.err
    assert "hv1: will WIPE /dev/sda (PVCLAB SIMULATED SSD, serial" in result.out
    assert "empty (no partition table" in result.out and "memory" in result.out and "ok" in result.out
    assert "nothing was written to any disk" in result.out
    assert installs_started(lab, "hv1") == []


async def test_a_node_below_a_requirement_stops_before_the_wipe_others_finish(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(3, hardware={"hv3": SimHardware(memory_gib=8)},
                         inventory={"requirements": {"profile": "lab", "memory_min_gb": 16}})
    result = await pvcctl.run("deploy", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "done", "hv2": "done", "hv3": "failed"}
    assert installs_started(lab, "hv3") == []  # the installer never started: nothing written
    line = next(x for x in result.out.splitlines() if "hv3: failed" in x)
    assert "hv3: failed (attempt 1): memory: found 8.0 GiB, at least 16 GB required; add memory" in line
    assert "attempt 1" in line  # an unmet requirement is not retried
    assert "hv1: will WIPE /dev/sda (PVCLAB SIMULATED SSD" in result.out  # stated before the install


async def test_empty_only_refuses_a_disk_with_data(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    used = SimHardware(disks=(SimDisk(fstypes=("ext4", "xfs")),))
    lab = await make_lab(1, hardware={"hv1": used}, inventory={"install": {"method": "image", "disk": "largest",
                                                                           "dns": ["127.0.0.53"],
                                                                           "wipe": "empty-only"}})
    result = await pvcctl.run("deploy", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert "holds gpt table, 2 partition(s), file systems ext4 xfs and install.wipe is empty-only" in result.out
    assert installs_started(lab, "hv1") == []


async def test_no_terminal_no_yes_refuses_before_touching_anything(make_lab: LabFactory, pvcctl: Pvcctl,
                                                                 tmp_path: Path) -> None:
    lab = await make_lab(1)
    production = lab.inventory.with_name("production.yml")
    production.write_text(lab.inventory.read_text().replace("lab: true", "lab: false"))
    refused = await pvcctl.run("deploy", str(production))
    assert refused.code == 2, refused.out + refused.err
    assert "there is no terminal to ask: add --yes" in refused.err and len(refused.err.strip().splitlines()) == 1
    assert lab.bmc("hv1").requests == 0
