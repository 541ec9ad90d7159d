"""PVC's hardware requirements as data: profiles, per-cluster and per-node overrides, each key documented."""

from __future__ import annotations

from pathlib import Path

from inventory.load import check_inventory, load_inventory
from inventory.requirements import PROFILES, SPECS, Level, resolve_requirements
from inventory.schema import RequirementSettings
from tests.inventory.conftest import BASE

REFERENCE = Path(__file__).resolve().parents[2] / "examples" / "reference.yml"


def test_pvc_profile_is_pvcs_documented_minimums_each_with_its_source() -> None:
    pvc = PROFILES["pvc"]
    assert (pvc.disk_min_gb, pvc.memory_min_gb, pvc.cores_min, pvc.nic_min_mbps) == (32, 32, 8, 1000)
    assert pvc.coordinators == (3, 5) and pvc.virtualization is Level.FAIL and pvc.ipmi is Level.FAIL
    assert all(spec.source and spec.fix for spec in SPECS.values())
    fields = set(RequirementSettings.model_fields) - {"profile"}
    assert fields == set(SPECS)  # every key a requirement, every requirement a key
    text = REFERENCE.read_text()
    assert all(f"    {key}:" in text for key in fields)  # and every key documented in the reference


def test_node_overrides_cluster_overrides_profile() -> None:
    req = resolve_requirements({"profile": "lab", "memory_min_gb": 16}, {"cores_min": 2, "ipmi": "warn"})
    assert req.profile == "lab" and req.memory_min_gb == 16 and req.cores_min == 2 and req.ipmi is Level.WARN
    assert req.disk_ssd is Level.OFF  # the lab profile's, untouched


def test_requirements_in_the_inventory(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_BMC_PASSWORD", "s3cret-bmc")
    text = BASE.replace("  install_network:\n    interface: eno1\n",
                        "  install_network:\n    interface: eno1\n  requirements: {memory_min_gb: 64}\n")
    text += "    requirements: {memory_min_gb: 128, disk_ssd: fail}\n"
    (tmp_path / "inventory.yml").write_text(text)
    cluster = load_inventory(tmp_path / "inventory.yml")
    assert cluster.nodes[0].requirements.memory_min_gb == 64
    assert cluster.nodes[2].requirements.memory_min_gb == 128 and cluster.nodes[2].requirements.disk_ssd is Level.FAIL
    (tmp_path / "bad.yml").write_text(text.replace("disk_ssd: fail", "disk_ssd: maybe"))
    _, problems = check_inventory(tmp_path / "bad.yml")
    assert [p.path for p in problems] == ["nodes[2].requirements.disk_ssd"]


def test_validate_reports_shape_and_cross_field_problems_at_once_in_line_order(tmp_path: Path,
                                                                             monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("TEST_BMC_PASSWORD", "s3cret-bmc")
    text = BASE.replace("  - hostname: hv3\n", "  - hostname: hv2\n")  # a duplicate hostname (a rule)
    text = text.replace("  install:\n    mirror:", "  install:\n    colour: blue\n    mirror:")  # an unknown key
    text = text.replace("    device: eno3\n", "    device: eno3\n    mtu: 99999\n")  # out of range
    (tmp_path / "inventory.yml").write_text(text)
    _, problems = check_inventory(tmp_path / "inventory.yml")
    paths = [p.path for p in problems]
    assert "defaults.install.colour" in paths and "networks.storage.mtu" in paths
    assert any("hv2" in p.message and p.path.startswith("nodes[2]") for p in problems), problems
    assert [p.line for p in problems] == sorted(p.line for p in problems)
