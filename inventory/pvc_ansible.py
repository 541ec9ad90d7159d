"""Render the inventory pvc-ansible runs from (reference/pvc-seed.md §3), atomically.

    DIR/hosts                              INI: [sites:children], one group for the cluster
    DIR/group_vars/<cluster>/base.yml      the base role's keys: domain, DNS, IPMI, admin users, networks
    DIR/group_vars/<cluster>/pvc.yml       the pvc role's keys: API, databases, pvc_nodes, derived block
    DIR/group_vars/<cluster>/secrets.yml   generated secrets, mode 0600, kept and reused
    DIR/files/<cluster>/                   where pvc-ansible's bootstrap keeps Ceph keys (never wiped)
    DIR/ceph -> files                      the link pvc-ansible's later plays read through
    DIR/known_hosts                        with install results: each node's SSH host keys

Everything is rendered in memory and written to a temporary directory first; only then is each
file moved into place, so a failed render leaves DIR as it was.
"""

from __future__ import annotations

import io
import ipaddress
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from core.errors import UserError
from inventory.model import PVC_NETWORKS, Cluster, NetworkConfig, Node
from inventory.secrets import load_or_generate

HEADER = "# Written by pvcctl from {source}. Edit the inventory and render again rather than this file.\n"


@dataclass(frozen=True)
class InstallResult:
    """What a deploy learned about one installed node."""

    address: str
    host_keys: tuple[str, ...] = field(default=())  # OpenSSH public key lines


def load_results(path: Path, cluster: Cluster) -> dict[str, InstallResult]:
    """Install results from a deploy: {"hv1": {"address": "...", "host_keys": ["ssh-ed25519 ..."]}}."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"{path}: cannot read install results: {err}") from None
    known = {node.hostname for node in cluster.nodes}
    results = {}
    for name, entry in (data.items() if isinstance(data, dict) else []):
        if name not in known:
            raise UserError(f"{path}: {name!r} is not a node of cluster {cluster.name}; remove it")
        try:
            address = str(ipaddress.ip_address(entry["address"]))
            keys = tuple(str(key) for key in entry.get("host_keys", []))
        except (KeyError, TypeError, ValueError, AttributeError):
            raise UserError(f"{path}: {name}: needs an address and a list of host_keys") from None
        results[name] = InstallResult(address, keys)
    return results


def render(cluster: Cluster, out: Path, *, controller_key: str,
           results: Mapping[str, InstallResult] | None = None) -> list[Path]:
    """Write pvc-ansible's inventory for `cluster` into `out`; return the files written."""
    results = results or {}
    secrets_path = out / "group_vars" / cluster.name / "secrets.yml"
    secrets = load_or_generate(secrets_path)
    secrets["pvcctl_ipmi_admin_password"] = _bmc_password(cluster.nodes[0])
    files = _files(cluster, controller_key, results, secrets)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for relative, text in files.items():
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            mode = 0o600 if relative.endswith("secrets.yml") else 0o644
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        _install(staging, out, cluster.name, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out / relative for relative in files]


def _install(staging: Path, out: Path, cluster_name: str, files: dict[str, str]) -> None:
    """Move each staged file over its final name (each move atomic); keep files/<cluster>."""
    out.mkdir(exist_ok=True)
    for relative in files:
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, out / relative)
    (out / "files" / cluster_name).mkdir(parents=True, exist_ok=True)
    link = out / "ceph"
    if not link.is_symlink():
        link.symlink_to("files")


def _files(cluster: Cluster, controller_key: str, results: Mapping[str, InstallResult],
           secrets: dict[str, Any]) -> dict[str, str]:
    group = f"group_vars/{cluster.name}"
    files = {
        "hosts": _hosts(cluster, results),
        f"{group}/base.yml": _yaml(_base(cluster, controller_key), cluster),
        f"{group}/pvc.yml": _yaml(_pvc(cluster), cluster),
        f"{group}/secrets.yml": _yaml(secrets, cluster),
    }
    if results:
        files["known_hosts"] = _known_hosts(cluster, results)
    return files


def _ansible_host(node: Node, results: Mapping[str, InstallResult]) -> str:
    if node.hostname in results:
        return results[node.hostname].address
    return node.management_address or node.addresses["upstream"]


def _hosts(cluster: Cluster, results: Mapping[str, InstallResult]) -> str:
    lines = [HEADER.format(source=cluster.source.name).rstrip(), "[sites:children]", cluster.name, "",
             "[sites:vars]", "ansible_python_interpreter=/usr/bin/python3", "", f"[{cluster.name}]"]
    lines += [f"{node.fqdn} ansible_host={_ansible_host(node, results)}" for node in cluster.nodes]
    return "\n".join(lines) + "\n"


def _known_hosts(cluster: Cluster, results: Mapping[str, InstallResult]) -> str:
    lines = []
    for node in cluster.nodes:
        result = results.get(node.hostname)
        if result is None:
            continue
        names = ",".join(dict.fromkeys([node.fqdn, node.hostname, result.address]))
        lines += [f"{names} {' '.join(key.split()[:2])}" for key in result.host_keys]
    return "\n".join(lines) + "\n"


def _base(cluster: Cluster, controller_key: str) -> dict[str, Any]:
    first = cluster.nodes[0]
    bmc_user = first.bmc.username
    return {
        "cluster_group": cluster.name,
        "timezone_location": first.install.timezone,
        "local_domain": cluster.domain,
        "manager_email": cluster.manager_email or f"root@{cluster.domain}",
        "recursive_dns_servers": list(first.install.dns) or [cluster.networks["upstream"].gateway],
        "recursive_dns_search_domains": [cluster.domain],
        "cluster_hardware": "default",
        "cpu_governor": "performance",
        "debian_main_repository": first.install.mirror,
        "debian_security_repository": _security_mirror(first.install.mirror),
        "enable_prometheus_exporters": True,
        "grub": {"serial_console": {"default": {"console": 0}}},
        "ipmi": {
            "users": {
                "admin": {"username": bmc_user, "password": "{{ pvcctl_ipmi_admin_password }}"},
                "pvc": {"username": "pvc", "password": "{{ pvcctl_ipmi_pvc_password }}"},
            },
            "hosts": {node.hostname: _ipmi_host(cluster, node) for node in cluster.nodes},
        },
        "ipmi_user_configuration": {
            "default": {
                "channel": 1,
                "admin": {"id": 2, "role": "0x4", "username": "{{ ipmi['users']['admin']['username'] }}",
                          "password": "{{ ipmi['users']['admin']['password'] }}"},
                "pvc": {"id": 3, "role": "0x4", "username": "{{ ipmi['users']['pvc']['username'] }}",
                        "password": "{{ ipmi['users']['pvc']['password'] }}"},
            }
        },
        "logrotate_keepcount": 7,
        "logrotate_interval": "daily",
        "username_email_root": "root",
        "hosts": [{"name": f"{node.hostname}-lom", "ip": node.bmc.host} for node in cluster.nodes],
        "admin_users": [{"name": "pvcadmin", "uid": 500,
                         "keys": list(dict.fromkeys([controller_key, *first.install.ssh_keys])), "removed": []}],
        "networks": _networks(cluster),
    }


def _bmc_password(node: Node) -> str:
    """How Ansible gets the BMC admin password: from where the inventory reads it, so it is never
    copied to disk; only a password written into the inventory itself is kept in secrets.yml."""
    source = node.bmc.password_source
    if source is None:
        return node.bmc.password.get_secret_value()
    kind, _, where = source.partition(":")
    return f"{{{{ lookup('{kind}', '{where}') | trim }}}}"


def _security_mirror(mirror: str) -> str:
    return mirror[: -len("debian")] + "debian-security" if mirror.rstrip("/").endswith("debian") else mirror


def _ipmi_host(cluster: Cluster, node: Node) -> dict[str, Any]:
    entry: dict[str, Any] = {"hostname": f"{node.hostname}-lom", "address": node.bmc.host, "channel": 1}
    for net in cluster.networks.values():
        try:
            inside = ipaddress.ip_address(node.bmc.host) in net.subnet
        except ValueError:
            inside = False  # a BMC named by DNS: its netmask is not ours to guess
        if inside:
            entry["netmask"] = str(net.subnet.netmask)
            if net.gateway:
                entry["gateway"] = net.gateway
    return entry


def _networks(cluster: Cluster) -> dict[str, Any]:
    result: dict[str, Any] = {}
    parents: dict[str, int] = {}
    for net in cluster.networks.values():
        if net.raw_device:
            parents[net.raw_device] = max(parents.get(net.raw_device, 0), net.mtu)
    for device, mtu in parents.items():
        result[device] = {"device": device, "type": "bond" if device.startswith("bond") else "nic", "mtu": mtu}
    for name in PVC_NETWORKS:
        result[name] = _pvc_network(cluster, cluster.networks[name])
    return result


def _pvc_network(cluster: Cluster, net: NetworkConfig) -> dict[str, Any]:
    kind = "vlan" if net.raw_device else ("bond" if net.device.startswith("bond") else "nic")
    entry: dict[str, Any] = {"device": net.device, "type": kind}
    if net.raw_device:
        entry["raw_device"] = net.raw_device
    entry |= {
        "mtu": net.mtu,
        "domain": net.domain or (cluster.domain if net.name == "upstream" else f"pvc-{net.name}.local"),
        "subnet": str(net.subnet.network_address),
        "netmask": net.subnet.prefixlen,
        "floating_ip": net.floating_ip,
    }
    if net.gateway:
        entry["gateway_ip"] = net.gateway
    return entry


def _pvc(cluster: Cluster) -> dict[str, Any]:
    upstream = cluster.networks["upstream"]
    data: dict[str, Any] = {
        "pvc_api_listen_address": "{{ pvc_upstream_floatingip }}",
        "pvc_api_listen_port": "7370",
        "pvc_api_enable_authentication": True,
        "pvc_api_enable_ssl": False,
        "pvc_dns_database_name": "pvcdns",
        "pvc_dns_database_user": "pvcdns",
        "pvc_api_database_name": "pvcapi",
        "pvc_api_database_user": "pvcapi",
        "pvc_replication_database_user": "replicator",
        "pvc_superuser_database_user": "postgres",
        "pvc_asn": "65500",
        "pvc_routers": [upstream.gateway] if upstream.gateway else [],
        "pvc_nodes": [_pvc_node(node) for node in cluster.nodes],
        "pvc_bridge_device": upstream.raw_device or upstream.device,
        "pvc_bridge_mtu": upstream.mtu,
        "pvc_sriov_enable": False,
        "cpu_tuning": {"enabled": False, "nodes": {"system_cpus": 2, "osd_cpus": 2}},
        "pvc_autobackup": {"enabled": False},
        "pvc_automirror": {"enabled": False},
    }
    for name in PVC_NETWORKS:  # pvc-ansible's derived block, kept as its default file has it
        for key, source in (("device", "device"), ("mtu", "mtu"), ("domain", "domain"), ("netmask", "netmask"),
                            ("subnet", "subnet"), ("floatingip", "floating_ip")):
            data[f"pvc_{name}_{key}"] = f"{{{{ networks['{name}']['{source}'] }}}}"
    data["pvc_upstream_gatewayip"] = "{{ networks['upstream']['gateway_ip'] }}"
    return data


def _pvc_node(node: Node) -> dict[str, Any]:
    return {
        "hostname": node.hostname,
        "is_coordinator": node.coordinator,
        "node_id": node.node_id,
        "router_id": node.addresses["upstream"],
        "upstream_ip": node.addresses["upstream"],
        "cluster_ip": node.addresses["cluster"],
        "storage_ip": node.addresses["storage"],
        "ipmi_host": f"{node.hostname}-lom",
        "ipmi_user": "{{ ipmi['users']['pvc']['username'] }}",
        "ipmi_password": "{{ ipmi['users']['pvc']['password'] }}",
    }


def _yaml(data: dict[str, Any], cluster: Cluster) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    stream = io.StringIO()
    stream.write("---\n" + HEADER.format(source=cluster.source.name))
    yaml.dump(data, stream)
    return stream.getvalue()
