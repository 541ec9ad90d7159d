"""The rendered group_vars as Ansible itself sees them: every key pvc-ansible's roles read on a normal
run, with its shape, templated for every host with Ansible's own variable manager and templar (which
fails on any undefined variable). pvc-ansible's files are not in this repository: what its roles read
is stated here as facts, each with the file of pvc-ansible it comes from (checked against them)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible.vars.manager import VariableManager

from core.errors import UserError
from inventory.load import load_inventory
from inventory.pvc_ansible import InstallResult, check_render_secrets, render

REPO = Path(__file__).resolve().parents[2]
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeControllerKeyForTestsOnly0000000000000 pvcctl@cluster1"
THIS_NODE = "inventory_hostname.split('.')[0]"

# What pvc-ansible's roles read on a normal (first or later) run, as expressions on one host's variables.
# roles/base/templates/etc/network/interfaces.d/ipmi.j2: all four keys of the host's ipmi.hosts entry
IPMI_LAN = [f"ipmi['hosts'][{THIS_NODE}]['{key}']" for key in ("address", "netmask", "gateway")] + \
    [f"ipmi['hosts'][{THIS_NODE}]['channel'] | default('1')", f"ipmi['hosts'][{THIS_NODE}]['hostname']"]
# roles/base/tasks/main.yml (base-ipmi): ipmitool user set name/password/priv, per user
IPMI_USERS = [f"ipmi_user_configuration[cluster_hardware]['{user}']['{key}']"
              for user in ("admin", "pvc") for key in ("id", "username", "password", "role")] + \
    ["ipmi_user_configuration[cluster_hardware]['channel']"]
# roles/base/defaults/main.yml (grub_cmdline, grub_serial) and the base role's templates and tasks
BASE = ["grub.serial_console[cluster_hardware].console", "timezone_location", "local_domain", "manager_email",
        "recursive_dns_servers | join(' ')", "recursive_dns_search_domains | join(' ')", "cpu_governor",
        "debian_main_repository", "debian_security_repository", "enable_prometheus_exporters",
        "logrotate_keepcount", "logrotate_interval", "username_email_root", "root_password", "cluster_group",
        "hosts | map(attribute='name') | join(',')", "hosts | map(attribute='ip') | join(',')",
        "admin_users | map(attribute='name') | join(',')", "admin_users | map(attribute='uid') | join(',')",
        "admin_users | map(attribute='keys') | flatten | join(',')",
        "admin_users | map(attribute='removed') | flatten | join(',')"]
# roles/base/templates/etc/network/interfaces-perif.j2, once per networks entry; the pvc role's network keys
NETWORK = ["device", "type", "mtu"]
PVC_NETWORK = ["device", "type", "mtu", "domain", "subnet", "netmask", "floating_ip"]
# roles/pvc/templates (pvc.conf.j2, frr.conf.j2, patroni.yml.j2, zoo.cfg.j2, ...): pvc_nodes entries
PVC_NODE = ["hostname", "is_coordinator", "node_id", "router_id", "upstream_ip", "cluster_ip", "storage_ip",
            "ipmi_host", "ipmi_user", "ipmi_password"]
PVC = ["pvc_api_listen_address", "pvc_api_listen_port", "pvc_api_secret_key", "pvc_api_enable_authentication",
       "pvc_api_tokens | map(attribute='token') | join(',')",
       "pvc_api_tokens | map(attribute='description') | join(',')", "pvc_api_enable_ssl",
       "pvc_api_ssl_cert_path", "pvc_api_ssl_key_path", "pvc_ceph_storage_secret_uuid", "pvc_asn",
       "pvc_routers | join(',')", "pvc_bridge_device", "pvc_bridge_mtu", "pvc_sriov_enable",
       *(f"pvc_{db}_database_{key}" for db in ("dns", "api") for key in ("name", "user", "password")),
       *(f"pvc_{db}_database_{key}" for db in ("replication", "superuser") for key in ("user", "password")),
       *(f"pvc_{net}_{key}" for net in ("upstream", "cluster", "storage")
         for key in ("device", "mtu", "domain", "netmask", "subnet", "floatingip")), "pvc_upstream_gatewayip"]
# roles/pvc/tasks/{autobackup,automirror,cputuning}/*.yml and templates/{autobackup,automirror}/*.j2,
# pvc/pvc.conf.j2: each whole dictionary, read as soon as its `enabled` is set
AUTOBACKUP = ["enabled", "root_path", "root_suffix", "tags | join(',')", "schedule.normal_time",
              "schedule.forced_full_time", "schedule.full_interval", "schedule.full_retention",
              "reporting.enabled", "reporting.emails | join(',')", "reporting.report_on.forced_full",
              "reporting.report_on.normal", "auto_mount.enabled", "auto_mount.packages | join(',')",
              "auto_mount.mount_cmds | join(',')", "auto_mount.unmount_cmds | join(',')"]
AUTOMIRROR = ["enabled", "destinations | list | join(',')", "default_destination", "tags | join(',')",
              "schedule.time", "schedule.retention", "reporting.enabled", "reporting.emails | join(',')",
              "reporting.report_on.success", "reporting.report_on.error"]
CPU_TUNING = ["enabled", "nodes.system_cpus", "nodes.osd_cpus"]


def expressions(variables: dict[str, Any]) -> list[str]:
    found = [*IPMI_LAN, *IPMI_USERS, *BASE, *PVC]
    found += [f"networks['{name}']['{key}']" for name in variables["networks"] for key in NETWORK]
    found += [f"networks['{name}']['{key}']" for name in ("upstream", "cluster", "storage") for key in PVC_NETWORK]
    found += ["networks['upstream']['gateway_ip']"]
    found += [f"pvc_nodes[{i}]['{key}']" for i in range(len(variables["pvc_nodes"])) for key in PVC_NODE]
    found += [f"pvc_autobackup.{key}" for key in AUTOBACKUP] + [f"pvc_automirror.{key}" for key in AUTOMIRROR]
    found += [f"cpu_tuning.{key}" for key in CPU_TUNING]
    return found


def hosts_variables(out: Path) -> dict[str, Templar]:
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(out / "hosts")])
    manager = VariableManager(loader=loader, inventory=inventory)
    return {host.name: Templar(loader=loader, variables=manager.get_vars(host=host)) for host in inventory.get_hosts()}


def value(templar: Templar, expression: str) -> Any:
    return templar.template(trust_as_template("{{ " + expression + " }}"))


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PVC_BMC_PASSWORD", "example-bmc-password")
    monkeypatch.setenv("ANSIBLE_LOCAL_TEMP", str(tmp_path / "ansible"))
    text = (REPO / "examples" / "cluster.yml").read_text()
    # hv3's BMC logs in as another user with a password from a file: per node, as the BMC has it
    (tmp_path / "hv3.pw").write_text("hv3-bmc-password\nsecond line\n")
    (tmp_path / "hv3.pw").chmod(0o600)
    text = text.replace('bmc: {address: "https://10.100.1.3"}',
                        'bmc: {address: "https://10.100.1.3", username: admin3, password: {file: hv3.pw}}')
    (tmp_path / "cluster.yml").write_text(text)
    cluster = load_inventory(tmp_path / "cluster.yml")
    finished = {f"hv{i}": InstallResult(f"10.100.0.{i}", (), run_id="r1") for i in (1, 2, 3)}
    render(cluster, tmp_path / "out", finished=finished, controller_key=KEY)
    return tmp_path / "out"


def test_every_key_pvc_ansible_reads_is_there_for_every_host(rendered: Path) -> None:
    hosts = hosts_variables(rendered)
    assert sorted(hosts) == [f"hv{i}.c1.example.tld" for i in (1, 2, 3)]
    for name, templar in hosts.items():
        for expression in expressions(templar.available_variables):
            try:
                value(templar, expression)
            except AnsibleError as err:
                raise AssertionError(f"{name}: {expression}: {err}") from None


def test_the_ipmi_block_per_host(rendered: Path) -> None:
    hosts = hosts_variables(rendered)
    hv2, hv3 = hosts["hv2.c1.example.tld"], hosts["hv3.c1.example.tld"]
    lan = "ipmitool lan set {{ ipmi['hosts'][%s]['channel']|default('1') }} netmask {{ ipmi['hosts'][%s]['netmask'] }}"
    assert hv2.template(trust_as_template(lan % (THIS_NODE, THIS_NODE))) == "ipmitool lan set 1 netmask 255.255.255.0"
    assert value(hv2, f"ipmi['hosts'][{THIS_NODE}]['gateway']") == "10.100.1.254"
    assert value(hv2, f"ipmi['hosts'][{THIS_NODE}]['address']") == "10.100.1.2"
    admin = "ipmi_user_configuration[cluster_hardware]['admin']"
    assert value(hv2, f"{admin}['username']") == "root"
    assert value(hv2, f"{admin}['password']") == "example-bmc-password"
    assert value(hv3, f"{admin}['username']") == "admin3"
    assert value(hv3, f"{admin}['password']") == "hv3-bmc-password"  # the file's first line, as pvcctl reads it
    pvc = "ipmi_user_configuration[cluster_hardware]['pvc']['password']"
    assert value(hv2, pvc) == value(hv3, pvc) and len(value(hv2, pvc)) == 16


def test_an_unset_bmc_password_fails_the_ansible_run_naming_it(rendered: Path, monkeypatch) -> None:
    password = "ipmi_user_configuration[cluster_hardware]['admin']['password']"
    monkeypatch.delenv("PVC_BMC_PASSWORD")
    with pytest.raises(AnsibleError, match=r"environment variable PVC_BMC_PASSWORD .* is not set or empty"):
        value(hosts_variables(rendered)["hv1.c1.example.tld"], password)
    monkeypatch.setenv("PVC_BMC_PASSWORD", "")
    with pytest.raises(AnsibleError, match="PVC_BMC_PASSWORD"):
        value(hosts_variables(rendered)["hv1.c1.example.tld"], password)
    pw = rendered.parent / "hv3.pw"
    pw.write_text("\n")
    with pytest.raises(AnsibleError, match=r"hv3\.pw \(the BMC admin password of hv3\) is empty"):
        value(hosts_variables(rendered)["hv3.c1.example.tld"], password)
    pw.unlink()
    with pytest.raises(AnsibleError, match=r"hv3\.pw"):
        value(hosts_variables(rendered)["hv3.c1.example.tld"], password)


def test_check_render_secrets_names_the_secret_that_cannot_be_read(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PVC_BMC_PASSWORD", "x")
    shutil.copy(REPO / "examples" / "cluster.yml", tmp_path / "cluster.yml")
    cluster = load_inventory(tmp_path / "cluster.yml")
    check_render_secrets(cluster)
    monkeypatch.setenv("PVC_BMC_PASSWORD", " ")
    with pytest.raises(UserError, match=r"^environment variable PVC_BMC_PASSWORD \(the BMC admin password of hv1\) "
                       "is not set or empty; export it before running$"):
        check_render_secrets(cluster)
    monkeypatch.delenv("PVC_BMC_PASSWORD")
    with pytest.raises(UserError, match="PVC_BMC_PASSWORD"):
        check_render_secrets(cluster)
