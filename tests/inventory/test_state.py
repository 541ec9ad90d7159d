"""The cluster's state across runs: one set of secrets, every installed node rendered, the right next step."""

from __future__ import annotations

import json
import shutil
import stat
import threading
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from core.errors import UserError
from inventory.load import load_inventory
from inventory.model import Cluster
from inventory.pvc_ansible import InstallResult, next_step, render
from inventory.state import ClusterState

REPO = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeControllerKeyForTestsOnly0000000000000 pvcctl@cluster1"
HV4 = """  - hostname: hv4
    bmc: {address: "https://10.100.1.4"}
"""


def result(i: int, run: str, at: float) -> InstallResult:
    return InstallResult(f"10.100.0.{i}", (f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv{i}Key root@hv{i}",),
                         f"/dev/disk/by-id/disk-{i}", at, run)


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def inventory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PVC_BMC_PASSWORD", "example-bmc-password")
    shutil.copy(REPO / "examples" / "cluster.yml", tmp_path / "cluster.yml")
    return tmp_path / "cluster.yml"


def grow(inventory: Path) -> Cluster:
    """The same inventory with a fourth node (not a coordinator) added at the end."""
    inventory.write_text(inventory.read_text() + HV4)
    return load_inventory(inventory)


def test_three_nodes_then_a_fourth_then_a_rerender(inventory: Path, tmp_path: Path) -> None:
    three = load_inventory(inventory)
    first = render(three, tmp_path / "run1", finished={f"hv{i}": result(i, "run-1", 100.0 + i) for i in (1, 2, 3)},
                   controller_key=KEY)
    assert first.nodes == ("hv1", "hv2", "hv3") and first.bootstrap and first.warnings == ()
    assert "-e do_bootstrap=yes pvc.yml" in next_step(three, first)
    secrets = (tmp_path / "run1/group_vars/cluster1/secrets.yml").read_text()

    four = grow(inventory)  # a later deploy of --only hv4: only hv4 is finished in that run
    second = render(four, tmp_path / "run2", finished={"hv4": result(4, "run-2", 200.0)}, controller_key=KEY)
    assert second.nodes == ("hv1", "hv2", "hv3", "hv4") and second.added == ("hv4",) and not second.bootstrap
    hint = next_step(four, second)
    assert "ansible-playbook -i hosts -l cluster1 pvc.yml" in hint and "do_bootstrap=yes" not in hint
    assert "adds hv4" in hint
    out = tree(tmp_path / "run2")
    assert out["group_vars/cluster1/secrets.yml"].startswith(secrets.rsplit("pvcctl_bmc_passwords:", 1)[0])
    assert YAML(typ="safe").load(out["group_vars/cluster1/secrets.yml"])["root_password"] == \
        YAML(typ="safe").load(secrets)["root_password"]
    hosts = [line.split()[0] for line in out["hosts"].splitlines() if " ansible_host=" in line]
    assert hosts == [f"hv{i}.c1.example.tld" for i in (1, 2, 3, 4)]
    assert "hv3.c1.example.tld ansible_host=10.100.0.3" in out["hosts"]
    assert [line.split()[0] for line in out["known_hosts"].splitlines()] == \
        [f"hv{i}.c1.example.tld,hv{i},10.100.0.{i}" for i in (1, 2, 3, 4)]
    base = YAML(typ="safe").load(out["group_vars/cluster1/base.yml"])
    assert list(base["ipmi"]["hosts"]) == ["hv1", "hv2", "hv3", "hv4"]
    pvc = YAML(typ="safe").load(out["group_vars/cluster1/pvc.yml"])
    assert [n["hostname"] for n in pvc["pvc_nodes"]] == ["hv1", "hv2", "hv3", "hv4"]

    third = render(four, tmp_path / "run2", controller_key=KEY)  # nothing new: the same bytes
    assert tree(tmp_path / "run2") == out
    assert third.added == ("hv4",) and not third.bootstrap


def test_the_state_keeps_every_installs_details(inventory: Path) -> None:
    cluster = load_inventory(inventory)
    state = ClusterState.open(cluster)
    state.record_install("hv2", InstallResult("10.100.0.2", ("ssh-ed25519 AAAA root@hv2",), "/dev/sda", None, "r1"))
    again = ClusterState.open(cluster).installed()["hv2"]  # another opening reads the same file
    assert again.disk == "/dev/sda" and again.run_id == "r1" and again.installed_at and again.installed_at > 0
    assert again.host_keys == ("ssh-ed25519 AAAA root@hv2",)
    assert stat.S_IMODE((state.directory / "installed.json").stat().st_mode) == 0o600
    state.forget("hv2")
    assert state.installed() == {}


def test_secrets_are_made_once_and_kept(inventory: Path) -> None:
    state = ClusterState.open(load_inventory(inventory))
    made = state.secrets()
    assert state.secrets() == made and ClusterState.open(state.cluster).secrets() == made
    assert stat.S_IMODE(state.secrets_file().stat().st_mode) == 0o600
    assert len(made["root_password"]) == 24 and made["pvc_api_tokens"][0]["token"]


def test_concurrent_writers_in_one_process_lose_nothing(inventory: Path) -> None:
    cluster = load_inventory(inventory)
    secrets: list[dict] = []

    def work(i: int) -> None:
        state = ClusterState.open(cluster)  # each its own opening, as the deploy's node tasks would
        state.record_install(f"n{i}", result(i % 250 + 1, "run-1", float(i)))
        secrets.append(state.secrets())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ClusterState.open(cluster).installed()) == sorted(f"n{i}" for i in range(24))
    assert all(s == secrets[0] for s in secrets)  # one set made, the others read it
    assert not [p for p in ClusterState.open(cluster).directory.iterdir() if p.name.startswith(".installed")]


def test_a_node_removed_from_the_inventory_is_left_out_and_reported(inventory: Path, tmp_path: Path) -> None:
    four = grow(inventory)
    render(four, tmp_path / "out", finished={f"hv{i}": result(i, "run-1", 1.0) for i in (1, 2, 3, 4)},
           controller_key=KEY)
    inventory.write_text(inventory.read_text().replace(HV4, ""))
    three = load_inventory(inventory)
    report = render(three, tmp_path / "out", controller_key=KEY)
    assert report.nodes == ("hv1", "hv2", "hv3") and report.removed == ("hv4",)
    assert len(report.warnings) == 1 and "hv4 was installed (run run-1) but is no longer in cluster.yml" in \
        report.warnings[0]
    assert "hv4" not in (tmp_path / "out" / "hosts").read_text()
    assert "hv4" not in (tmp_path / "out" / "known_hosts").read_text()
    ClusterState.open(three).forget("hv4")
    assert render(three, tmp_path / "out", controller_key=KEY).warnings == ()


def test_a_reinstall_of_every_node_is_a_new_cluster_and_of_one_is_not(inventory: Path, tmp_path: Path) -> None:
    cluster = load_inventory(inventory)
    render(cluster, tmp_path / "o", finished={f"hv{i}": result(i, "run-1", 1.0) for i in (1, 2, 3)},
           controller_key=KEY)
    one = render(cluster, tmp_path / "o", finished={"hv2": result(2, "run-2", 2.0)}, controller_key=KEY)
    assert one.added == ("hv2",) and not one.bootstrap
    every = render(cluster, tmp_path / "o", finished={f"hv{i}": result(i, "run-3", 3.0) for i in (1, 2, 3)},
                   controller_key=KEY)
    assert every.bootstrap


def test_nothing_installed_renders_a_preview_of_every_node(inventory: Path, tmp_path: Path) -> None:
    report = render(load_inventory(inventory), tmp_path / "o", controller_key=KEY)
    assert report.nodes == ("hv1", "hv2", "hv3") and report.bootstrap
    assert report.warnings == ("no node of cluster cluster1 is installed yet: rendering every node of the "
                               "inventory (a preview)",)
    assert (tmp_path / "o" / "known_hosts").read_text() == ""


def test_an_unreadable_state_file_is_a_clear_error(inventory: Path, tmp_path: Path) -> None:
    state = ClusterState.open(load_inventory(inventory))
    (state.directory / "installed.json").write_text(json.dumps({"nodes": {"hv1": {"host_keys": []}}}))
    with pytest.raises(UserError, match=r"installed\.json: not an install results file of pvcctl"):
        state.installed()
    (state.directory / "installed.json").write_text("{")
    with pytest.raises(UserError, match="cannot read the cluster's install results"):
        render(state.cluster, tmp_path / "o", controller_key=KEY)
    assert not (tmp_path / "o").exists()
