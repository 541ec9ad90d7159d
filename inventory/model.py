"""The resolved cluster: what every other part of pvcctl works from.

`inventory.load.load_inventory` builds it from an inventory file: defaults merged into each
node, secret references read, addresses and node ids derived, every rule checked. Nothing here
does I/O; secrets are `SecretStr`, so a repr or a log line never shows them.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from installer.plan import DiskHint
from inventory.requirements import Requirements

PVC_NETWORKS = ("upstream", "cluster", "storage")
DEFAULT_DEADLINES = {
    "preflight": 180, "media": 300, "boot": 600, "live": 900, "inspect": 300,
    "install": 3600, "collect": 300, "finalize": 600, "verify": 900,
}


class SecureBootSwitch(enum.StrEnum):
    """What a deploy does with a node's UEFI Secure Boot (the BMC's Redfish SecureBoot resource)."""

    KEEP = "keep"  # read and report it, never write it
    ON = "on"
    OFF = "off"


@dataclass(frozen=True)
class BmcConfig:
    address: str
    username: str
    password: SecretStr
    verify_tls: bool = True
    ca_bundle: Path | None = None
    fingerprint: str | None = None  # SHA-256 of the certificate: lower-case hex, no colons
    password_source: str | None = None  # "env:NAME" or "file:/abs/path"; None when written in the file
    netmask: str | None = None  # dotted; what pvc-ansible sets on the BMC's LAN with its address
    gateway: str | None = None
    secure_boot: SecureBootSwitch = SecureBootSwitch.KEEP

    @property
    def host(self) -> str:
        return urlsplit(self.address).hostname or ""


@dataclass(frozen=True)
class InstallConfig:
    release: str
    mirror: str
    method: str
    disk: DiskHint
    filesystem: str
    deploy_user: str
    timezone: str
    boot_mode: str
    packages: tuple[str, ...] = ()
    ssh_keys: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    apt_proxy: str | None = None
    root_password_hash: SecretStr | None = None
    wipe: str = "any"  # or "empty-only": a disk holding a file system or LVM is refused


@dataclass(frozen=True)
class InstallNetworkConfig:
    """The install-time network; `address` None means DHCP."""

    interface: str | None = None
    mac: str | None = None
    vlan: int | None = None
    bond_mode: str | None = None
    bond_slaves: tuple[str, ...] = ()
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface | None = None
    gateway: str | None = None


@dataclass(frozen=True)
class NetworkConfig:
    name: str
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    floating_ip: str
    mtu: int
    device: str
    gateway: str | None = None
    raw_device: str | None = None
    vlan: int | None = None
    domain: str | None = None


@dataclass(frozen=True)
class Node:
    hostname: str
    node_id: int
    coordinator: bool
    fqdn: str
    bmc: BmcConfig
    install: InstallConfig
    install_network: InstallNetworkConfig
    addresses: dict[str, str]  # PVC network name -> address
    requirements: Requirements = field(default_factory=Requirements)

    @property
    def management_address(self) -> str | None:
        """The address the controller and Ansible reach the installed node on, when static."""
        addr = self.install_network.address
        return str(addr.ip) if addr is not None else None


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    token: SecretStr | None = None  # the HMAC-SHA256 key that signs each body


@dataclass(frozen=True)
class ControllerConfig:
    listen_host: str
    listen_port: int
    url: str
    state_dir: Path
    ssh_key: Path | None = None
    iso: str | None = None
    lab: bool = False  # written by `pvcctl lab up`: loopback may fetch the ISO, simulated installs count
    webhooks: tuple[WebhookConfig, ...] = ()


@dataclass(frozen=True)
class DeployConfig:
    retries: int = 2
    concurrency: int = 0
    deadlines: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))


@dataclass(frozen=True)
class Cluster:
    name: str
    domain: str
    controller: ControllerConfig
    networks: dict[str, NetworkConfig]
    nodes: tuple[Node, ...]
    deploy: DeployConfig
    source: Path
    manager_email: str | None = None

    def node(self, hostname: str) -> Node:
        for node in self.nodes:
            if node.hostname == hostname:
                return node
        raise KeyError(hostname)

    @property
    def coordinators(self) -> tuple[Node, ...]:
        return tuple(node for node in self.nodes if node.coordinator)
