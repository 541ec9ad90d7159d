"""Each validation rule, with the exact line a person reads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inventory.load import check_inventory, load_inventory

from .conftest import BASE


def problems(path: Path) -> list[str]:
    _, found = check_inventory(path)
    return [str(p).removeprefix(f"{path}:") for p in found]


def test_base_inventory_is_valid_and_resolved(write) -> None:
    cluster = load_inventory(write(BASE))
    assert [n.hostname for n in cluster.nodes] == ["hv1", "hv2", "hv3"]
    hv2 = cluster.node("hv2")
    assert hv2.node_id == 2 and hv2.fqdn == "hv2.c1.example.tld"
    assert hv2.addresses == {"upstream": "10.100.0.2", "cluster": "10.0.0.2", "storage": "10.0.1.2"}
    assert hv2.management_address == "10.100.0.2" and hv2.install_network.gateway == "10.100.0.254"
    assert hv2.bmc.username == "root" and hv2.bmc.password.get_secret_value() == "s3cret-bmc"
    assert hv2.bmc.verify_tls is True and hv2.install.method == "image" and str(hv2.install.disk) == "largest"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # YAML syntax
        ("  name: c1\n", "  name: [c1\n",
         "4:9: YAML syntax: while parsing a flow sequence expected ',' or ']', but got ':'"),
        # unknown keys, with a did-you-mean
        ("  domain: c1", "  domian: c1", "4:3: cluster.domian: unknown key; did you mean 'domain'?"),
        ("    coordinator: true\n    bmc: {address: \"https://10.100.1.1\"}",
         "    coordinater: true\n    bmc: {address: \"https://10.100.1.1\"}",
         "32:5: nodes[0].coordinater: unknown key; did you mean 'coordinator'?"),
        # types and ranges
        ("    device: eno2\n", "    device: eno2\n    mtu: 100000\n",
         "26:10: networks.cluster.mtu: 100000 is out of range; it must be less than or equal to 9216"),
        ("    interface: eno1\nnetworks", "    interface: eno1\n    vlan: 0\nnetworks",
         "16:11: defaults.install_network.vlan: 0 is out of range; it must be greater than or equal to 1"),
        ("  install:\n", "  install:\n    filesystem: btrfs\n",
         "12:17: defaults.install.filesystem: 'btrfs' is not allowed; use one of 'ext4' or 'xfs'"),
        ("    coordinator: true\n    bmc: {address: \"https://10.100.1.2\"}",
         "    coordinator: maybe\n    bmc: {address: \"https://10.100.1.2\"}",
         "35:18: nodes[1].coordinator: 'maybe' must be a true or false"),
        # a well-formed disk hint
        ("  install:\n", "  install:\n    disk: 'serial:'\n",
         "12:11: defaults.install.disk: 'serial:' is not a disk hint; write a device path (/dev/sda, "
         "/dev/disk/by-id/..., /dev/disk/by-path/...), serial:SERIAL, wwn:WWN, model:SUBSTRING[:SIZE], "
         "smallest or largest"),
        ("  install:\n", "  install:\n    disk: wwn:0x12\n",
         "12:11: defaults.install.disk: wwn '0x12' must be 16 or 32 hex digits (0x optional)"),
        # missing
        ("  domain: c1.example.tld\n", "", "3:3: cluster.domain: is required; add it"),
    ],
)
def test_shape_rules(write, old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert expected in problems(write(BASE.replace(old, new, 1)))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # hostnames unique
        ("hostname: hv3", "hostname: hv2",
         "37:15: nodes[2].hostname: hostname hv2 is also used by nodes[1]; each must be unique"),
        # the digits in a hostname are its node id
        ("  - hostname: hv3\n", "  - hostname: hv3\n    node_id: 4\n",
         "38:14: nodes[2].node_id: is 4 but the digits of 'hv3' say 3; pvc-ansible uses the digits: make them equal"),
        ("  - hostname: hv3\n", "  - hostname: hv4\n    node_id: 2\n",
         "38:14: nodes[2].node_id: is 2 but the digits of 'hv4' say 4; pvc-ansible uses the digits: make them equal"),
        ("hostname: hv3", "hostname: hvc",
         "37:15: nodes[2].hostname: 'hvc' has no digits; pvc-ansible takes the node id from them: "
         "name nodes like hv1, hv2, ..."),
        # node 1 is a coordinator; 3 or 5 coordinators
        ("    coordinator: true\n    bmc: {address: \"https://10.100.1.1\"}",
         "    coordinator: false\n    bmc: {address: \"https://10.100.1.1\"}",
         "32:18: nodes[0].coordinator: node 1 must be a coordinator (PVC bootstraps from it); set coordinator: true"),
        ("    coordinator: true\n    bmc: {address: \"https://10.100.1.3\"}",
         "    coordinator: false\n    bmc: {address: \"https://10.100.1.3\"}",
         "31:3: nodes: 2 coordinators; PVC needs 3 (or 5 for large clusters, 1 for a test)"),
        # addresses inside their network, never a gateway or floating IP, unique
        ("  - hostname: hv3\n", "  - hostname: hv3\n    addresses: {storage: 10.9.9.9}\n",
         "38:26: nodes[2].addresses.storage: 10.9.9.9 is not a host address inside the storage network 10.0.1.0/24"),
        ("  - hostname: hv3\n", "  - hostname: hv3\n    addresses: {upstream: 10.100.0.250}\n",
         "38:27: nodes[2].addresses.upstream: 10.100.0.250 is the upstream network's floating IP; "
         "give the node another address"),
        ("  - hostname: hv3\n", "  - hostname: hv3\n    addresses: {cluster: 10.0.0.1}\n",
         "38:26: nodes[2].addresses.cluster: cluster address 10.0.0.1 is also hv1's; each must be unique"),
        ("    floating_ip: 10.100.0.250", "    floating_ip: 10.200.0.250",
         "20:18: networks.upstream.floating_ip: 10.200.0.250 is not a host address inside 10.100.0.0/23"),
        # BMC addresses unique and https URLs
        ('address: "https://10.100.1.3"', 'address: "https://10.100.1.2"',
         "39:20: nodes[2].bmc.address: BMC address 10.100.1.2:443 is also hv2's; each must be unique"),
        ('address: "https://10.100.1.3"', 'address: "http://10.100.1.3"',
         "39:20: nodes[2].bmc.address: 'http://10.100.1.3' must be an https:// URL of the BMC (https://host[:port]); "
         "Redfish needs TLS"),
        # secret references that resolve
        ("{env: TEST_BMC_PASSWORD}", "{env: TEST_NOT_SET_ANYWHERE}",
         "10:21: defaults.bmc.password.env: environment variable TEST_NOT_SET_ANYWHERE is not set; "
         "export it before running"),
        # the install network must be named
        ("  install_network:\n    interface: eno1\n", "",
         "29:5: nodes[0]: say which interface the installer uses: install_network.interface or .mac "
         "(here or in defaults.install_network)"),
        # gateways belong to upstream only
        ("    floating_ip: 10.0.0.254\n", "    floating_ip: 10.0.0.254\n    gateway: 10.0.0.1\n",
         "25:14: networks.cluster.gateway: only the upstream network has a gateway in PVC; remove it"),
        # the controller must be reachable
        ("url: http://10.100.0.5:8740", "url: http://0.0.0.0:8740",
         "6:8: controller.url: must be an address the BMCs and nodes can reach, not 0.0.0.0"),
    ],
)
def test_cluster_rules(write, old: str, new: str, expected: str) -> None:
    assert old in BASE
    assert expected in problems(write(BASE.replace(old, new, 1)))


def test_every_error_is_reported_at_once(write) -> None:
    text = BASE.replace("hostname: hv3", "hostname: hv2").replace('"https://10.100.1.3"', '"http://x"')
    found = problems(write(text))
    assert len(found) == 2 and all("nodes[2]" in line for line in found)


def test_secret_file_reference_and_its_warnings(write, tmp_path: Path) -> None:
    secret = tmp_path / "bmc.pw"
    secret.write_text("from-a-file\n")
    secret.chmod(0o644)
    path = write(BASE.replace("{env: TEST_BMC_PASSWORD}", "{file: bmc.pw}"))
    cluster, found = check_inventory(path)
    assert cluster is not None and cluster.nodes[0].bmc.password.get_secret_value() == "from-a-file"
    assert [str(p).removeprefix(f"{path}:") for p in found] == [
        f"10:22: warning: defaults.bmc.password.file: {secret} is readable by others; chmod 600 {secret}"]
    secret.chmod(0o600)
    assert check_inventory(path)[1] == []
    secret.unlink()
    assert problems(path) == [f"10:22: defaults.bmc.password.file: cannot read {secret}: No such file or directory; "
                              "create it or fix the path"]


def test_single_coordinator_and_insecure_tls_are_warnings(write) -> None:
    text = BASE.replace("    coordinator: true\n    bmc: {address: \"https://10.100.1.2\"}",
                        "    bmc: {address: \"https://10.100.1.2\", verify_tls: false}")
    text = text.replace("    coordinator: true\n    bmc: {address: \"https://10.100.1.3\"}",
                        "    bmc: {address: \"https://10.100.1.3\"}")
    cluster, found = check_inventory(write(text))
    assert cluster is not None and not cluster.node("hv2").bmc.verify_tls
    assert {p.message for p in found if p.warning} == {
        "a single coordinator has no quorum: fit for a test cluster only",
        "TLS verification is off for this BMC: anyone on the path can pose as it",
    }


def test_secrets_never_appear_in_reprs(write) -> None:
    cluster = load_inventory(write(BASE))
    assert "s3cret-bmc" not in repr(cluster)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from pvcctl.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_cli_exit_status_and_one_line_per_problem(write) -> None:
    bad = write(BASE.replace("  domain: c1", "  domian: c1"))
    done = run_cli("validate", str(bad), env={"TEST_BMC_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [f"{bad}:3:3: cluster.domain: is required; add it",
                                        f"{bad}:4:3: cluster.domian: unknown key; did you mean 'domain'?"]
    assert "Traceback" not in done.stdout + done.stderr
    good = run_cli("validate", "--file-only", str(write(BASE, "good.yml")),
                   env={"TEST_BMC_PASSWORD": "x", "PATH": "/usr/bin:/bin"})
    assert good.returncode == 0, good.stderr
    assert "ok: cluster c1, 3 nodes (3 coordinators)" in good.stdout


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    done = run_cli("validate", str(tmp_path / "nope.yml"))
    assert done.returncode == 2
    assert done.stderr == f"{tmp_path / 'nope.yml'}:1:1: no such file; give the path of your inventory.yml\n"


def test_schema_is_json_schema_for_the_file() -> None:
    import json

    done = run_cli("inventory", "schema")
    schema = json.loads(done.stdout)
    assert schema["title"] == "pvcctl inventory"
    assert set(schema["required"]) == {"cluster", "controller", "networks", "nodes"}
    assert schema["additionalProperties"] is False


def test_the_shipped_examples_are_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("PVC_BMC_PASSWORD", "x")
    monkeypatch.setenv("PVCCTL_HOOK_TOKEN", "x")  # reference.yml's webhook signs with it
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "controller_ed25519").write_text("not read by validate")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "root.hash").write_text("$y$j9T$salt$hash\n")
    (tmp_path / "secrets" / "root.hash").chmod(0o600)
    for name in ("cluster.yml", "reference.yml"):
        shutil.copy(repo / "examples" / name, tmp_path / name)
        cluster, found = check_inventory(tmp_path / name)
        assert cluster is not None and [str(p) for p in found] == [], name
    reference = load_inventory(tmp_path / "reference.yml")
    hv1 = reference.node("hv1")
    assert hv1.install.filesystem == "xfs" and hv1.install.packages == ("htop",)
    assert hv1.bmc.username == "admin"
    assert hv1.bmc.fingerprint == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert str(hv1.install_network.address) == "10.100.0.11/24" and hv1.install_network.mac == "52:54:00:12:34:01"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # pvc-ansible sets each BMC's address, netmask and gateway: all must be known
        ('"https://10.100.1.3"', '"https://10.9.1.3"',
         "39:20: nodes[2].bmc.address: no netmask and gateway for BMC 10.9.1.3: pvc-ansible sets the BMC's address, "
         "netmask and gateway; add networks.bmc {subnet, gateway} (or bmc.netmask and bmc.gateway)"),
        ('"https://10.100.1.3"', '"https://bmc3.example.tld"',
         "39:20: nodes[2].bmc.address: 'bmc3.example.tld' is a name; pvc-ansible sets the BMC's own address from it "
         "(ipmitool lan set ipaddr): write the BMC's IPv4 address in the URL"),
        ('{address: "https://10.100.1.3"}', '{address: "https://10.9.1.3", netmask: 255.255.0.0, gateway: 10.8.0.1}',
         "39:20: nodes[2].bmc.address: the BMC's gateway 10.8.0.1 is not inside 10.9.1.3/255.255.0.0 "
         "(from bmc.netmask and bmc.gateway); fix the gateway or the netmask"),
        ('{address: "https://10.100.1.3"}', '{address: "https://10.9.1.3", netmask: /16, gateway: 10.9.0.1}',
         "39:49: nodes[2].bmc.netmask: write the netmask dotted, as in 255.255.255.0 (ipmitool takes it so), "
         "not '/16'"),
        ("nodes:\n", "  bmc: {subnet: 10.9.0.0/16, gateway: 10.10.0.1}\nnodes:\n",
         "30:39: networks.bmc.gateway: 10.10.0.1 is not a host address inside 10.9.0.0/16"),
        # values a cluster has one of
        ('{address: "https://10.100.1.3"}', '{address: "https://10.100.1.3"}\n    install: {timezone: Europe/Paris}',
         "40:25: nodes[2].install.timezone: hv3 differs from hv1 in install.timezone: a cluster has one "
         "(pvc-ansible's timezone_location is one per cluster); set it once in defaults.install"),
        ('{address: "https://10.100.1.3"}', '{address: "https://10.100.1.3"}\n    install: {mirror: http://m/debian}',
         "40:23: nodes[2].install.mirror: hv3 differs from hv1 in install.mirror: a cluster has one (one live ISO is "
         "built from one mirror, and pvc-ansible's debian_main_repository is one per cluster); set it once in "
         "defaults.install"),
    ],
)
def test_bmc_network_and_cluster_wide_rules(write, old: str, new: str, expected: str) -> None:
    assert old in BASE
    found = problems(write(BASE.replace(old, new, 1)))
    assert any(p.startswith(expected) for p in found), found


def test_the_bmc_network_gives_netmask_and_gateway(write) -> None:
    text = BASE.replace('"https://10.100.1.3"', '"https://10.9.1.3"').replace(
        "nodes:\n", "  bmc: {subnet: 10.9.0.0/16, gateway: 10.9.255.254}\nnodes:\n")
    cluster = load_inventory(write(text))
    assert (cluster.nodes[2].bmc.netmask, cluster.nodes[2].bmc.gateway) == ("255.255.0.0", "10.9.255.254")
    assert (cluster.nodes[0].bmc.netmask, cluster.nodes[0].bmc.gateway) == ("255.255.254.0", "10.100.0.254")
    same = BASE.replace('{address: "https://10.100.1.3"}',
                        '{address: "https://10.100.1.3"}\n    install: {dns: [10.100.0.254]}')
    assert load_inventory(write(same)).nodes[2].install.dns == ("10.100.0.254",)  # repeating the cluster's value
