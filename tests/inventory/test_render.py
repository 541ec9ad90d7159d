"""The pvc-ansible inventory: golden output, identical re-render, kept secrets, ansible-inventory."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from core.errors import UserError
from core.mirror import host_debian_mirror
from inventory.load import load_inventory
from inventory.pvc_ansible import InstallResult, render
from inventory.state import ClusterState

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
CONTROLLER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeControllerKeyForTestsOnly0000000000000 pvcctl@cluster1"
FIXED_SECRETS = {
    "root_password": "root-pw", "pvc_api_secret_key": "api-key",
    "pvc_api_tokens": [{"description": "pvcctl", "token": "tok-1"}],
    "pvc_ceph_storage_secret_uuid": "00000000-0000-4000-8000-000000000000",
    "pvc_dns_database_password": "dns-pw", "pvc_api_database_password": "api-pw",
    "pvc_replication_database_password": "repl-pw", "pvc_superuser_database_password": "su-pw",
    "pvcctl_ipmi_pvc_password": "ipmi-pw",
}
RESULTS = {f"hv{i}": InstallResult(f"10.100.0.{i}", (f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv{i}HostKey root@hv{i}",),
                                    run_id="run-1", installed_at=1700000000.0 + i) for i in (1, 2, 3)}


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PVC_BMC_PASSWORD", "example-bmc-password")
    shutil.copy(REPO / "examples" / "cluster.yml", tmp_path / "cluster.yml")
    return load_inventory(tmp_path / "cluster.yml")


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def with_fixed_secrets(out: Path) -> None:
    """Secrets a render of an older pvcctl left in `out`: the cluster's state adopts them."""
    path = out / "group_vars" / "cluster1" / "secrets.yml"
    path.parent.mkdir(parents=True)
    YAML(typ="safe").dump(FIXED_SECRETS | {"pvcctl_ipmi_admin_password": "{{ lookup('env', 'X') }}"}, path)


def state_secrets(cluster) -> dict:
    return YAML(typ="safe").load(ClusterState.open(cluster).secrets_file())


def test_golden_output_for_the_example(example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with_fixed_secrets(out)
    render(example, out, controller_key=CONTROLLER_KEY, results=RESULTS)
    got = {name: text.replace(host_debian_mirror() or "<none>", "<MIRROR>") for name, text in tree(out).items()}
    if os.environ.get("PVCCTL_UPDATE_GOLDEN"):
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for name, text in got.items():
            (GOLDEN / name).parent.mkdir(parents=True, exist_ok=True)
            (GOLDEN / name).write_text(text)
    assert got == tree(GOLDEN)
    assert (out / "ceph").is_symlink() and os.readlink(out / "ceph") == "files"
    assert (out / "files" / "cluster1").is_dir()
    assert state_secrets(example) == FIXED_SECRETS  # adopted, without the old render's other keys


def test_render_twice_gives_identical_bytes_and_keeps_secrets(example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(example, out, controller_key=CONTROLLER_KEY)
    first = tree(out)
    secrets = YAML(typ="safe").load(out / "group_vars" / "cluster1" / "secrets.yml")
    assert len(secrets["root_password"]) == 24 and secrets["pvc_api_tokens"][0]["token"]
    (out / "files" / "cluster1" / "ceph.keyring").write_text("kept by pvc-ansible")
    render(example, out, controller_key=CONTROLLER_KEY)
    assert tree(out) == first | {"files/cluster1/ceph.keyring": "kept by pvc-ansible"}


def test_secrets_file_is_private_and_bmc_password_is_not_copied(example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(example, out, controller_key=CONTROLLER_KEY)
    secrets = out / "group_vars" / "cluster1" / "secrets.yml"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert stat.S_IMODE(ClusterState.open(example).secrets_file().stat().st_mode) == 0o600
    assert stat.S_IMODE(ClusterState.open(example).directory.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0o044 for p in out.rglob("*.yml") if p != secrets)
    everything = "".join(tree(out).values())
    assert "example-bmc-password" not in everything
    assert "lookup('env', 'PVC_BMC_PASSWORD') or undef(" in secrets.read_text()


def test_secrets_are_the_clusters_not_the_output_directorys(example, tmp_path: Path) -> None:
    render(example, tmp_path / "a", controller_key=CONTROLLER_KEY)
    render(example, tmp_path / "b", controller_key=CONTROLLER_KEY)
    a, b = (YAML(typ="safe").load(tmp_path / d / "group_vars/cluster1/secrets.yml") for d in "ab")
    assert a == b and a["root_password"] == state_secrets(example)["root_password"]
    other = dataclasses.replace(example, controller=dataclasses.replace(example.controller,
                                                                        state_dir=tmp_path / "elsewhere"))
    render(other, tmp_path / "c", controller_key=CONTROLLER_KEY)
    c = YAML(typ="safe").load(tmp_path / "c/group_vars/cluster1/secrets.yml")
    assert c["root_password"] != a["root_password"] and c["pvc_api_secret_key"] != a["pvc_api_secret_key"]


def test_a_failed_render_leaves_the_directory_as_it_was(example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(example, out, controller_key=CONTROLLER_KEY)
    ClusterState.open(example).secrets_file().write_text("root_password: [unclosed\n")
    before = tree(out)
    with pytest.raises(UserError, match="cannot read the kept secrets"):
        render(example, out, controller_key=CONTROLLER_KEY, results=RESULTS)
    assert tree(out) == before
    assert not any(p.name.startswith(".out.") for p in tmp_path.iterdir())


def test_ansible_inventory_sees_the_group_hosts_and_variables(example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(example, out, controller_key=CONTROLLER_KEY, results=RESULTS)
    ansible_inventory = Path(sys.executable).parent / "ansible-inventory"
    done = subprocess.run([str(ansible_inventory), "-i", str(out / "hosts"), "--list"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ans")})
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["sites"]["children"] == ["cluster1"]
    assert listing["cluster1"]["hosts"] == ["hv1.c1.example.tld", "hv2.c1.example.tld", "hv3.c1.example.tld"]
    hv2 = listing["_meta"]["hostvars"]["hv2.c1.example.tld"]
    assert hv2["ansible_host"] == "10.100.0.2" and hv2["cluster_group"] == "cluster1"
    assert [n["hostname"] for n in hv2["pvc_nodes"]] == ["hv1", "hv2", "hv3"]
    assert hv2["pvc_nodes"][2]["storage_ip"] == "10.0.1.3" and hv2["pvc_nodes"][0]["is_coordinator"] is True
    assert hv2["networks"]["cluster"]["raw_device"] == "eno2" and hv2["networks"]["eno2"]["mtu"] == 9000
    assert "root_password" in hv2 and "pvc_api_tokens" in hv2


def test_cli_render_and_results(example, tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"hv3": {"address": "10.100.0.3", "host_keys": ["ssh-ed25519 AAAAkey3 root"]}}))
    # a render writes only to -o and the cluster's state directory
    before = {p for p in tmp_path.rglob("*")}
    env = {**os.environ, "PVC_BMC_PASSWORD": "x"}
    cmd = [sys.executable, "-c", "from pvcctl.cli import main; main()", "inventory", "render",
           str(tmp_path / "cluster.yml"), "-o", str(tmp_path / "out"), "--results", str(results)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ansible-playbook -i hosts -l cluster1 -e do_bootstrap=yes pvc.yml" in done.stdout
    assert (tmp_path / "out" / "known_hosts").read_text() == "hv3.c1.example.tld,hv3,10.100.0.3 ssh-ed25519 AAAAkey3\n"
    assert "wrote 5 files" in done.stdout and "(1 nodes: hv3)" in done.stdout
    new = {p for p in tmp_path.rglob("*")} - before
    assert all(p.is_relative_to(tmp_path / "out") or p.is_relative_to(tmp_path / "runs" / "cluster1") or
               p == tmp_path / "runs" for p in new), new
    results.write_text(json.dumps({"hv9": {"address": "10.100.0.9"}}))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"pvcctl: {results}: 'hv9' is not a node of cluster cluster1; remove it\n"
