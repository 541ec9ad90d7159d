"""The rules that span fields, and the resolution of the file's shape into a `Cluster`.

Each rule reports a `RuleProblem` at the path of the value that is wrong; the loader turns the
path into a line and column. PVC's own constraints (reference/pvc-seed.md §3.5) are here: the
digits of a hostname are its node id, node 1 is a coordinator, 1 (test only), 3 or 5 coordinators.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from core.mirror import host_debian_mirror
from installer.plan import DiskHint
from inventory import model as m
from inventory.requirements import resolve_requirements
from inventory.schema import (
    BmcSettings,
    InstallNetwork,
    InstallSettings,
    InventoryFile,
    NodeEntry,
    PvcNetwork,
    SecretRef,
)
from inventory.yamlpos import PathPart

Path_ = tuple[PathPart, ...]

INSTALL_DEFAULTS = {
    "release": "bookworm", "method": "image", "disk": "largest", "filesystem": "ext4",
    "deploy_user": "deploy", "timezone": "Etc/UTC", "boot_mode": "auto",
}


@dataclass(frozen=True)
class RuleProblem:
    path: Path_
    message: str
    warning: bool = False
    at_key: bool = False


class Checker:
    """Collects problems while resolving; `secret` and friends return None on a problem."""

    def __init__(self, base_dir: Path):
        self.base_dir = base_dir
        self.problems: list[RuleProblem] = []

    def error(self, path: Path_, message: str) -> None:
        self.problems.append(RuleProblem(path, message))

    def warn(self, path: Path_, message: str) -> None:
        self.problems.append(RuleProblem(path, message, warning=True))

    def path(self, value: Path) -> Path:
        value = value.expanduser()
        return value if value.is_absolute() else self.base_dir / value

    def secret(self, ref: SecretRef, at: Path_) -> SecretStr | None:
        if ref.value is not None:
            self.warn(at, "a secret written in the inventory; prefer {env: NAME} or {file: PATH}")
            return ref.value
        if ref.env is not None:
            value = os.environ.get(ref.env)
            if not value:
                self.error(at + ("env",), f"environment variable {ref.env} is not set; export it before running")
                return None
            return SecretStr(value)
        assert ref.file is not None
        file = self.path(ref.file)
        try:
            mode = file.stat().st_mode
            first = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            reason = err.strerror if isinstance(err, OSError) else "not UTF-8 text"
            self.error(at + ("file",), f"cannot read {file}: {reason}; create it or fix the path")
            return None
        if not first or not first[0].strip():
            self.error(at + ("file",), f"{file} is empty; write the secret on its first line")
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            self.warn(at + ("file",), f"{file} is readable by others; chmod 600 {file}")
        return SecretStr(first[0].strip())


def resolve(shape: InventoryFile, source: Path) -> tuple[m.Cluster | None, list[RuleProblem]]:
    check = Checker(source.resolve().parent)
    networks = {name: _network(check, name, getattr(shape.networks, name)) for name in m.PVC_NETWORKS}
    bmc_net = shape.networks.bmc
    if bmc_net is not None and not _usable(ipaddress.ip_network(bmc_net.subnet), bmc_net.gateway):
        check.error(("networks", "bmc", "gateway"), f"{bmc_net.gateway} is not a host address inside {bmc_net.subnet}")
    ids = _node_ids(check, shape.nodes)
    _unique_names(check, shape.nodes, ids)
    _coordinators(check, shape.nodes, ids)
    _cluster_wide(check, shape)
    controller = _controller(check, shape)
    mirror = shape.defaults.install.mirror or host_debian_mirror()
    if mirror is None:
        check.error(("defaults", "install"), "no mirror given and none in this machine's apt sources; set mirror")
    nodes: dict[int, m.Node] = {}
    for i, entry in enumerate(shape.nodes):
        node = _node(check, shape, entry, i, ids[i], networks, mirror or "")
        if node is not None:
            nodes[i] = node
    _unique(check, nodes)
    if any(not p.warning for p in check.problems) or controller is None:
        return None, check.problems
    tuning = shape.defaults.deploy
    deadlines = {**m.DEFAULT_DEADLINES, **{str(k): v for k, v in tuning.deadlines.items()}}
    deploy = m.DeployConfig(tuning.retries, tuning.concurrency, deadlines)
    cluster = m.Cluster(shape.cluster.name, shape.cluster.domain, controller, networks, tuple(nodes.values()), deploy,
                        source, shape.cluster.manager_email)
    return cluster, check.problems


def _network(check: Checker, name: str, net: PvcNetwork) -> m.NetworkConfig:
    at: Path_ = ("networks", name)
    subnet = ipaddress.ip_network(net.subnet)
    if name != "upstream" and net.gateway:
        check.error(at + ("gateway",), "only the upstream network has a gateway in PVC; remove it")
    if name == "upstream" and not net.gateway:
        check.error(at, "the upstream network needs a gateway (PVC's default route); add gateway")
    for field in ("gateway", "floating_ip"):
        value = getattr(net, field)
        if value and not _usable(subnet, value):
            check.error(at + (field,), f"{value} is not a host address inside {subnet}")
    if net.gateway and net.gateway == net.floating_ip:
        check.error(at + ("floating_ip",), "the floating IP must differ from the gateway")
    if net.vlan and not net.raw_device:
        check.error(at + ("raw_device",), "a VLAN device needs its parent interface in raw_device")
    return m.NetworkConfig(name, subnet, net.floating_ip, net.mtu, net.device, net.gateway, net.raw_device,
                           net.vlan, net.domain)


def _usable(subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if ip not in subnet:
        return False
    if subnet.version == 4 and subnet.prefixlen < 31:
        return ip not in (subnet.network_address, subnet.broadcast_address)
    return True


def _node_ids(check: Checker, nodes: list[NodeEntry]) -> list[int]:
    ids: list[int] = []
    for i, node in enumerate(nodes):
        digits = "".join(re.findall(r"\d", node.hostname))
        from_name = int(digits) if digits else None
        if from_name is None and node.node_id is None:
            check.error(("nodes", i, "hostname"), f"{node.hostname!r} has no digits; pvc-ansible takes the node id "
                        "from them: name nodes like hv1, hv2, ...")
        elif node.node_id is not None and from_name is not None and node.node_id != from_name:
            check.error(("nodes", i, "node_id"), f"is {node.node_id} but the digits of {node.hostname!r} say "
                        f"{from_name}; pvc-ansible uses the digits: make them equal")
        ids.append(node.node_id or from_name or 0)
    return ids


def _coordinators(check: Checker, nodes: list[NodeEntry], ids: list[int]) -> None:
    count = sum(node.coordinator for node in nodes)
    if 1 in ids and not nodes[ids.index(1)].coordinator:
        check.error(("nodes", ids.index(1), "coordinator"), "node 1 must be a coordinator (PVC bootstraps from it); "
                    "set coordinator: true")
    elif 1 not in ids and all(ids):
        check.error(("nodes",), "no node has id 1; PVC bootstraps from node 1 (e.g. hostname hv1)")
    if count == 1:
        check.warn(("nodes",), "a single coordinator has no quorum: fit for a test cluster only")
    elif count not in (3, 5):
        check.error(("nodes",), f"{count} coordinators; PVC needs 3 (or 5 for large clusters, 1 for a test)")


def _controller(check: Checker, shape: InventoryFile) -> m.ControllerConfig | None:
    ctl = shape.controller
    host, _, port = ctl.listen.rpartition(":")
    url = urlsplit(ctl.url)
    ok = True
    if not 1 <= int(port) <= 65535:
        check.error(("controller", "listen"), f"port {port} is not 1-65535")
        ok = False
    if url.hostname in ("0.0.0.0", "::") or not url.hostname:
        check.error(("controller", "url"), "must be an address the BMCs and nodes can reach, not 0.0.0.0")
        ok = False
    key = check.path(ctl.ssh_key) if ctl.ssh_key else None
    if key is not None and not key.is_file():
        check.error(("controller", "ssh_key"), f"{key} does not exist; create it with ssh-keygen -t ed25519 "
                    "or remove the key to let pvcctl make one")
    if not ok:
        return None
    hooks = tuple(m.WebhookConfig(hook.url, check.secret(hook.token, ("controller", "webhooks", i, "token"))
                                  if hook.token else None) for i, hook in enumerate(ctl.webhooks))
    return m.ControllerConfig(host.strip("[]") or "0.0.0.0", int(port), ctl.url.rstrip("/"),
                              check.path(ctl.state_dir), key, ctl.iso, ctl.lab, hooks)


def _merged(default: BmcSettings | InstallSettings | InstallNetwork, override: object | None) -> dict:
    values = default.model_dump(exclude_none=True)
    if override is not None:
        values.update({k: v for k, v in override.model_dump(exclude_none=True).items()})  # type: ignore[attr-defined]
    return values


def _node(check: Checker, shape: InventoryFile, entry: NodeEntry, i: int, node_id: int,
          networks: dict[str, m.NetworkConfig], mirror: str) -> m.Node | None:
    at: Path_ = ("nodes", i)
    addresses = _addresses(check, entry, at, node_id, networks)
    bmc = _bmc(check, shape.defaults.bmc, entry, at)
    if bmc is not None:
        bmc = _bmc_lan(check, shape, entry, at + ("bmc",), bmc, networks)
    install = _install(check, shape, entry, at, mirror)
    net = _install_network(check, shape, entry, at, addresses, networks["upstream"])
    if bmc is None or install is None or net is None:
        return None
    fqdn = f"{entry.hostname}.{shape.cluster.domain}"
    requirements = resolve_requirements(shape.defaults.requirements.model_dump(exclude_none=True),
                                        entry.requirements.model_dump(exclude_none=True))
    return m.Node(entry.hostname, node_id, entry.coordinator, fqdn, bmc, install, net, addresses, requirements)


def _addresses(check: Checker, entry: NodeEntry, at: Path_, node_id: int,
               networks: dict[str, m.NetworkConfig]) -> dict[str, str]:
    result = {}
    for name, net in networks.items():
        given = getattr(entry.addresses, name)
        where = at + ("addresses", name) if given else at + ("hostname",)
        try:
            address = given or str(net.subnet.network_address + node_id)
        except (ValueError, ipaddress.AddressValueError):
            check.error(where, f"node id {node_id} gives no address in {net.subnet}; give addresses.{name}")
            continue
        if not _usable(net.subnet, address):
            check.error(where, f"{address} is not a host address inside the {name} network {net.subnet}")
        elif address in (net.gateway, net.floating_ip):
            what = "gateway" if address == net.gateway else "floating IP"
            check.error(where, f"{address} is the {name} network's {what}; give the node another address")
        result[name] = address
    return result


def _bmc(check: Checker, defaults: BmcSettings, entry: NodeEntry, at: Path_) -> m.BmcConfig | None:
    at = at + ("bmc",)
    url = urlsplit(entry.bmc.address)
    if url.scheme != "https" or not url.hostname or url.path not in ("", "/") or url.query:
        check.error(at + ("address",), f"{entry.bmc.address!r} must be an https:// URL of the BMC (https://host[:port]);"
                    " Redfish needs TLS")
        return None
    values = _merged(defaults, entry.bmc)
    password_at = at + ("password",) if entry.bmc.password else ("defaults", "bmc", "password")
    if "username" not in values:
        check.error(at, "no BMC username here or in defaults.bmc; add username")
    if "password" not in values:
        check.error(at, "no BMC password here or in defaults.bmc; add password: {env: NAME}")
        return None
    ref = SecretRef.model_validate(values["password"])
    password = check.secret(ref, password_at)
    source = f"env:{ref.env}" if ref.env else (f"file:{check.path(ref.file)}" if ref.file else None)
    verify = values.get("verify_tls", True)
    if not verify:
        check.warn(at, "TLS verification is off for this BMC: anyone on the path can pose as it")
    ca_bundle = check.path(values["ca_bundle"]) if "ca_bundle" in values else None
    if ca_bundle is not None and not ca_bundle.is_file():
        check.error(at + ("ca_bundle",), f"{ca_bundle} does not exist; give the PEM file of the BMC's CA")
    fingerprint = values.get("fingerprint", "").replace(":", "").lower() or None
    if password is None or "username" not in values:
        return None
    return m.BmcConfig(entry.bmc.address.rstrip("/"), values["username"], password, verify, ca_bundle, fingerprint,
                       source, secure_boot=m.SecureBootSwitch(values.get("secure_boot", "keep")))


def _bmc_lan(check: Checker, shape: InventoryFile, entry: NodeEntry, at: Path_, bmc: m.BmcConfig,
             networks: dict[str, m.NetworkConfig]) -> m.BmcConfig | None:
    """The BMC's netmask and gateway, which pvc-ansible's base role sets on the BMC with its address:
    bmc.netmask/.gateway (the node's, else defaults.bmc's), else networks.bmc's, else those of the
    PVC network the BMC's address is in."""
    try:
        address = ipaddress.ip_address(bmc.host)
    except ValueError:
        check.error(at + ("address",), f"{bmc.host!r} is a name; pvc-ansible sets the BMC's own address from it "
                    "(ipmitool lan set ipaddr): write the BMC's IPv4 address in the URL")
        return None
    values = _merged(shape.defaults.bmc, entry.bmc)
    netmask, gateway = values.get("netmask"), values.get("gateway")
    where = "bmc.netmask and bmc.gateway"
    if shape.networks.bmc is not None and address in ipaddress.ip_network(shape.networks.bmc.subnet):
        netmask = netmask or str(ipaddress.ip_network(shape.networks.bmc.subnet).netmask)
        gateway = gateway or shape.networks.bmc.gateway
        where = "networks.bmc"
    for net in networks.values():
        if address in net.subnet and net.subnet.version == 4:
            netmask, gateway = netmask or str(net.subnet.netmask), gateway or net.gateway
    if address.version != 4 or not netmask or not gateway:
        missing = " and ".join(k for k, v in (("netmask", netmask), ("gateway", gateway)) if not v) or "an IPv4 address"
        check.error(at + ("address",), f"no {missing} for BMC {address}: pvc-ansible sets the BMC's address, netmask "
                    "and gateway; add networks.bmc {subnet, gateway} (or bmc.netmask and bmc.gateway)")
        return None
    if ipaddress.ip_address(gateway) not in ipaddress.ip_network(f"{address}/{netmask}", strict=False):
        check.error(at + ("address",), f"the BMC's gateway {gateway} is not inside {address}/{netmask} "
                    f"(from {where}); fix the gateway or the netmask")
        return None
    return dataclasses.replace(bmc, netmask=netmask, gateway=gateway)


# Values a cluster has one of, and why: a node may repeat the cluster's value but not differ from it.
CLUSTER_WIDE = {
    "release": "one live ISO, built from one Debian release, installs every node",
    "mirror": "one live ISO is built from one mirror, and pvc-ansible's debian_main_repository is one per cluster",
    "apt_proxy": "one live ISO is built through one proxy",
    "timezone": "pvc-ansible's timezone_location is one per cluster",
    "dns": "pvc-ansible's recursive_dns_servers is one per cluster",
    "ssh_keys": "pvc-ansible's admin_users (and the deploy user's keys) are the same on every node",
}


def _cluster_wide(check: Checker, shape: InventoryFile) -> None:
    """Refuse a node whose install settings differ from the other nodes' in a value the cluster has
    only one of (the first node that differs from the first node is reported, at its own key)."""
    for key, why in CLUSTER_WIDE.items():
        default = getattr(shape.defaults.install, key)
        first = shape.nodes[0]
        first_value = getattr(first.install, key) or default
        for i, entry in enumerate(shape.nodes[1:], start=1):
            value = getattr(entry.install, key) or default
            if value != first_value:
                node_set = getattr(entry.install, key) is not None
                at: Path_ = ("nodes", i, "install", key) if node_set else ("nodes", 0, "install", key)
                check.error(at, f"{entry.hostname if node_set else first.hostname} differs from "
                            f"{first.hostname if node_set else entry.hostname} in install.{key}: a cluster has "
                            f"one ({why}); set it once in defaults.install")
                break


def _install(check: Checker, shape: InventoryFile, entry: NodeEntry, at: Path_, mirror: str) -> m.InstallConfig | None:
    values = {**INSTALL_DEFAULTS, **_merged(shape.defaults.install, entry.install)}
    if entry.disk:
        values["disk"] = entry.disk
    hash_ref = values.pop("root_password_hash", None)
    root_hash = None
    if hash_ref is not None:
        where = at + ("install", "root_password_hash") if entry.install.root_password_hash else \
            ("defaults", "install", "root_password_hash")
        root_hash = check.secret(SecretRef.model_validate(hash_ref), where)
        if root_hash is not None and not root_hash.get_secret_value().startswith("$"):
            check.error(where, "must be a crypt(3) hash (mkpasswd -m yescrypt), never a password")
            root_hash = None
    return m.InstallConfig(
        release=values["release"], mirror=values.get("mirror", mirror), method=values["method"],
        disk=DiskHint.parse(values["disk"]), filesystem=values["filesystem"], deploy_user=values["deploy_user"],
        timezone=values["timezone"], boot_mode=values["boot_mode"], packages=tuple(values.get("packages", ())),
        ssh_keys=tuple(values.get("ssh_keys", ())), dns=tuple(values.get("dns", ())),
        apt_proxy=values.get("apt_proxy"), root_password_hash=root_hash, wipe=values.get("wipe", "any"),
    )


def _install_network(check: Checker, shape: InventoryFile, entry: NodeEntry, at: Path_,
                     addresses: dict[str, str], upstream: m.NetworkConfig) -> m.InstallNetworkConfig | None:
    values = _merged(shape.defaults.install_network, entry.install_network)
    at = at + ("install_network",) if entry.install_network else at
    if not values.get("interface") and not values.get("mac") and not values.get("bond"):
        check.error(at, "say which interface the installer uses: install_network.interface or .mac "
                    "(here or in defaults.install_network)")
        return None
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None
    gateway = values.get("gateway")
    if values.get("address") == "dhcp":
        address = None
    elif values.get("address"):
        address = ipaddress.ip_interface(values["address"])
    elif "upstream" in addresses:
        address = ipaddress.ip_interface(f"{addresses['upstream']}/{upstream.subnet.prefixlen}")
        gateway = gateway or upstream.gateway
    else:
        return None
    if address is not None and gateway and ipaddress.ip_address(gateway) not in address.network:
        check.error(at + ("gateway",), f"{gateway} is not inside {address.network}; fix the gateway or the address")
    bond = values.get("bond") or {}
    return m.InstallNetworkConfig(values.get("interface"), (values.get("mac") or "").lower() or None,
                                  values.get("vlan"), bond.get("mode"), tuple(bond.get("slaves", ())),
                                  address, gateway)


def _unique_names(check: Checker, nodes: list[NodeEntry], ids: list[int]) -> None:
    """Hostnames and node ids: each at most once (checked on the file, so found even when a node has
    other errors). A repeated hostname repeats its id too: that is said once."""
    names = [node.hostname for node in nodes]
    for i, (name, node_id) in enumerate(zip(names, ids, strict=True)):
        if name in names[:i]:
            check.error(("nodes", i, "hostname"), f"hostname {name} is also used by nodes[{names.index(name)}]; "
                        "each must be unique")
        elif node_id and node_id in ids[:i]:
            field = "node_id" if nodes[i].node_id else "hostname"
            check.error(("nodes", i, field), f"node id {node_id} is also {names[ids.index(node_id)]}'s; "
                        "each must be unique")


def _unique(check: Checker, nodes: dict[int, m.Node]) -> None:
    """BMCs, MACs and every address: each at most once in the cluster."""
    seen: dict[tuple[str, str], int] = {}
    for i, node in nodes.items():
        for what, value, path in _identities(node):
            if (what, value) in seen:
                other = nodes[seen[(what, value)]].hostname
                check.error(("nodes", i, *path), f"{what} {value} is also {other}'s; each must be unique")
            else:
                seen[(what, value)] = i


def _identities(node: m.Node) -> Iterator[tuple[str, str, Path_]]:
    url = urlsplit(node.bmc.address)
    yield "BMC address", f"{url.hostname}:{url.port or 443}", ("bmc", "address")
    if node.install_network.mac:
        yield "MAC", node.install_network.mac, ("install_network", "mac")
    for name, address in node.addresses.items():
        yield f"{name} address", address, ("addresses", name)
    if node.management_address and node.management_address not in node.addresses.values():
        yield "install address", node.management_address, ("install_network", "address")
