"""The pvc-ansible inventory: golden output, identical re-render, kept secrets, ansible-inventory."""

from __future__ import annotations

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
RESULTS = {"hv1": InstallResult("10.100.0.1", ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv1HostKey root@hv1",)),
           "hv2": InstallResult("10.100.0.2", ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHv2HostKey root@hv2",))}


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PVC_BMC_PASSWORD", "example-bmc-password")
    shutil.copy(REPO / "examples" / "cluster.yml", tmp_path / "cluster.yml")
    return load_inventory(tmp_path / "cluster.yml")


def tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def with_fixed_secrets(out: Path) -> None:
    path = out / "group_vars" / "cluster1" / "secrets.yml"
    path.parent.mkdir(parents=True)
    YAML(typ="safe").dump(FIXED_SECRETS, path)


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
    assert all(stat.S_IMODE(p.stat().st_mode) & 0o077 == 0o044 for p in out.rglob("*.yml") if p != secrets)
    everything = "".join(tree(out).values())
    assert "example-bmc-password" not in everything
    assert "lookup('env', 'PVC_BMC_PASSWORD')" in secrets.read_text()


def test_fresh_secrets_differ_between_clusters(example, tmp_path: Path) -> None:
    render(example, tmp_path / "a", controller_key=CONTROLLER_KEY)
    render(example, tmp_path / "b", controller_key=CONTROLLER_KEY)
    a, b = (YAML(typ="safe").load(tmp_path / d / "group_vars/cluster1/secrets.yml") for d in "ab")
    assert a["root_password"] != b["root_password"] and a["pvc_api_secret_key"] != b["pvc_api_secret_key"]


def test_a_failed_render_leaves_the_directory_as_it_was(example, tmp_path: Path) -> None:
    out = tmp_path / "out"
    render(example, out, controller_key=CONTROLLER_KEY)
    (out / "group_vars" / "cluster1" / "secrets.yml").write_text("root_password: [unclosed\n")
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
    env = {**os.environ, "PVC_BMC_PASSWORD": "x"}
    cmd = [sys.executable, "-c", "from pvcctl.cli import main; main()", "inventory", "render",
           str(tmp_path / "cluster.yml"), "-o", str(tmp_path / "out"), "--results", str(results)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "ansible-playbook -i hosts -l cluster1 -e do_bootstrap=yes pvc.yml" in done.stdout
    assert (tmp_path / "out" / "known_hosts").read_text() == "hv3.c1.example.tld,hv3,10.100.0.3 ssh-ed25519 AAAAkey3\n"
    results.write_text(json.dumps({"hv9": {"address": "10.100.0.9"}}))
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr == f"pvcctl: {results}: 'hv9' is not a node of cluster cluster1; remove it\n"
