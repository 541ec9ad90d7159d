"""The variables pvc-ansible's roles read, built from the cluster: group_vars/<cluster>/{base,pvc,secrets}.yml.

What holds per node lives in per-node dictionaries keyed by the short hostname (pvc-ansible's own
`ipmi.hosts` and `pvc_nodes`, pvcctl's `pvcctl_bmc_users` and `pvcctl_bmc_passwords`) and is picked
by an expression on `inventory_hostname`, so every node's values are in the cluster's group_vars
(which pvc-ansible's .gitignore keeps out of its repository) and no host_vars are needed. What a
cluster has one of (timezone, DNS, mirror, admin keys) the inventory rules keep equal on every node
(`inventory.rules.CLUSTER_WIDE`), so the first node's value is the cluster's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inventory.model import PVC_NETWORKS, Cluster, NetworkConfig, Node
from inventory.pvc_defaults import AUTOBACKUP, AUTOMIRROR, CPU_TUNING, merged

THIS_NODE = "inventory_hostname.split('.')[0]"


def base_vars(cluster: Cluster, nodes: Sequence[Node], controller_key: str) -> dict[str, Any]:
    """group_vars/<cluster>/base.yml: the base role's keys."""
    first = cluster.nodes[0]  # cluster-wide install values are equal on every node (inventory.rules)
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
                # each node's BMC keeps the admin login pvcctl used (the inventory's, per node)
                "admin": {"username": f"{{{{ pvcctl_bmc_users[{THIS_NODE}] }}}}",
                          "password": f"{{{{ pvcctl_bmc_passwords[{THIS_NODE}] }}}}"},
                "pvc": {"username": "pvc", "password": "{{ pvcctl_ipmi_pvc_password }}"},
            },
            "hosts": {node.hostname: _ipmi_host(node) for node in nodes},
        },
        "pvcctl_bmc_users": {node.hostname: node.bmc.username for node in nodes},
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
        "hosts": [{"name": f"{node.hostname}-lom", "ip": node.bmc.host} for node in nodes],
        "admin_users": [{"name": "pvcadmin", "uid": 500,
                         # no controller key yet: a render before the first deploy
                         "keys": [k for k in dict.fromkeys([controller_key, *first.install.ssh_keys]) if k],
                         "removed": []}],
        "networks": _networks(cluster),
    }


def bmc_passwords(nodes: Sequence[Node]) -> dict[str, str]:
    """secrets.yml's `pvcctl_bmc_passwords`: how Ansible gets each node's BMC admin password."""
    return {node.hostname: bmc_password(node) for node in nodes}


def bmc_password(node: Node) -> str:
    """From where the inventory reads it, so it is never copied to disk (only a password written into
    the inventory itself is). Unset, empty or unreadable at Ansible time, the run fails naming it:
    an empty value would otherwise become the BMC's new admin password."""
    source = node.bmc.password_source
    if source is None:
        return node.bmc.password.get_secret_value()
    kind, _, where = source.partition(":")
    what = f"the BMC admin password of {node.hostname}"
    if kind == "env":
        hint = f"environment variable {where} ({what}) is not set or empty: export it before ansible-playbook"
        return f"{{{{ lookup('env', {_text(where)}) or undef({_text(hint)}) }}}}"
    hint = f"{where} ({what}) is empty: write the password on its first line"
    return (f"{{{{ (lookup('file', {_text(where)}, errors='strict').splitlines() | first | default('') | trim)"
            f" or undef({_text(hint)}) }}}}")


def _text(value: str) -> str:
    """A Jinja string literal of `value`."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _security_mirror(mirror: str) -> str:
    return mirror[: -len("debian")] + "debian-security" if mirror.rstrip("/").endswith("debian") else mirror


def _ipmi_host(node: Node) -> dict[str, Any]:
    """pvc-ansible's ipmi.hosts entry: its base role writes interfaces.d/ipmi from all five keys."""
    return {"hostname": f"{node.hostname}-lom", "address": node.bmc.host, "netmask": node.bmc.netmask,
            "gateway": node.bmc.gateway, "channel": 1}


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


def pvc_vars(cluster: Cluster, nodes: Sequence[Node]) -> dict[str, Any]:
    """group_vars/<cluster>/pvc.yml: the pvc role's keys."""
    upstream = cluster.networks["upstream"]
    data: dict[str, Any] = {
        "pvc_api_listen_address": "{{ pvc_upstream_floatingip }}",
        "pvc_api_listen_port": "7370",
        "pvc_api_enable_authentication": True,
        "pvc_api_enable_ssl": False,
        "pvc_api_ssl_cert_path": "",  # the pvc role's tasks test these even with SSL off
        "pvc_api_ssl_key_path": "",
        "pvc_dns_database_name": "pvcdns",
        "pvc_dns_database_user": "pvcdns",
        "pvc_api_database_name": "pvcapi",
        "pvc_api_database_user": "pvcapi",
        "pvc_replication_database_user": "replicator",
        "pvc_superuser_database_user": "postgres",
        "pvc_asn": "65500",
        "pvc_routers": [upstream.gateway] if upstream.gateway else [],
        "pvc_nodes": [_pvc_node(node) for node in nodes],
        "pvc_bridge_device": upstream.raw_device or upstream.device,
        "pvc_bridge_mtu": upstream.mtu,
        "pvc_sriov_enable": False,
        "cpu_tuning": merged(CPU_TUNING, {}),
        "pvc_autobackup": merged(AUTOBACKUP, {}),
        "pvc_automirror": merged(AUTOMIRROR, {}),
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
