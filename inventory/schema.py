"""The inventory file's shape, exactly as a person writes it (pydantic, unknown keys refused).

`pvcctl inventory schema` prints the JSON Schema of `InventoryFile` for editors. What the rest of
pvcctl uses is the resolved `inventory.model.Cluster` (defaults merged, secrets read, addresses
derived); this module only says what may be written where.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from installer.plan import DiskHint

NAME = r"^[a-z][a-z0-9-]{0,62}$"
HOSTNAME = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
DOMAIN = r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
MAC = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"
FINGERPRINT = r"^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$"



def _ip(value: str) -> str:
    ipaddress.ip_address(value)
    return value


def _netmask(value: str) -> str:
    if value.count(".") != 3:
        raise ValueError(f"write the netmask dotted, as in 255.255.255.0 (ipmitool takes it so), not {value!r}")
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{value}")
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 netmask (as in 255.255.255.0)") from None
    return value


def _disk_hint(value: str) -> str:
    DiskHint.parse(value)
    return value


def _ssh_key(value: str) -> str:
    if not re.match(r"^(ssh|ecdsa|sk)-[a-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$", value):
        raise ValueError(f"{value[:24]!r}... is not an OpenSSH public key line (ssh-ed25519 AAAA... comment)")
    return value


IP = Annotated[str, AfterValidator(_ip)]
DiskHintText = Annotated[
    str,
    AfterValidator(_disk_hint),
    Field(description="which disk: a /dev path, serial:S, wwn:W, model:NAME[:SIZE], smallest or largest"),
]
SshKey = Annotated[str, AfterValidator(_ssh_key)]
Vlan = Annotated[int, Field(ge=1, le=4094, description="802.1Q VLAN id, 1-4094")]
Mtu = Annotated[int, Field(ge=576, le=9216, description="MTU in bytes, 576-9216")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Strict):
    """Where a secret comes from: an environment variable, a file (its first line), or, discouraged,
    the value itself written in the inventory."""

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="environment variable")
    file: Path | None = Field(None, description="file holding the secret (relative to the inventory)")
    value: SecretStr | None = Field(None, description="the secret itself (avoid: use env or file)")

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if sum(x is not None for x in (self.env, self.file, self.value)) != 1:
            raise ValueError("write exactly one of {env: NAME} or {file: PATH}")
        return self


def _literal_secret(value: Any) -> Any:
    return {"value": value} if isinstance(value, str) else value


Secret = Annotated[
    SecretRef,
    BeforeValidator(_literal_secret),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object", "properties": {"env": {"type": "string"}}, "required": ["env"]},
                {"type": "object", "properties": {"file": {"type": "string"}}, "required": ["file"]},
                {"type": "string", "description": "the secret itself (avoid)"},
            ]
        }
    ),
]


class BmcSettings(Strict):
    """How to log in to BMCs, and how to trust their TLS certificates."""

    username: str | None = Field(None, min_length=1)
    password: Secret | None = None
    verify_tls: bool | None = Field(None, description="verify the BMC's certificate (default true)")
    ca_bundle: Path | None = Field(None, description="PEM file of CAs that sign the BMC certificates")
    fingerprint: str | None = Field(
        None, pattern=FINGERPRINT, description="pinned SHA-256 fingerprint of the BMC certificate (hex)"
    )
    netmask: Annotated[str, AfterValidator(_netmask)] | None = Field(
        None, description="the BMC's netmask (pvc-ansible sets it on the BMC); default: networks.bmc's"
    )
    gateway: IP | None = Field(None, description="the BMC's default gateway; default: networks.bmc's")
    secure_boot: Literal["keep", "on", "off"] | None = Field(
        None, description="UEFI Secure Boot, set through the BMC before the ISO boots: keep (default: read and "
                          "report it, never write it), on or off (set, restart, read back)")


class NodeBmc(BmcSettings):
    address: str = Field(..., description="the BMC's Redfish URL: https://host[:port]")


class Bond(Strict):
    mode: Literal["802.3ad", "active-backup", "balance-rr", "balance-xor", "broadcast", "balance-tlb", "balance-alb"]
    slaves: list[str] = Field(..., min_length=1, description="interface names of the bond's members")


class InstallNetwork(Strict):
    """How the live installer and the installed system reach the controller."""

    interface: str | None = Field(None, pattern=r"^[a-zA-Z0-9._-]{1,15}$", description="interface name")
    mac: str | None = Field(None, pattern=MAC, description="or the interface's MAC address")
    vlan: Vlan | None = None
    bond: Bond | None = None
    address: str | None = Field(
        None, description="address/prefix, or 'dhcp'; default: the node's upstream address"
    )
    gateway: IP | None = None

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None or value == "dhcp":
            return value
        iface = ipaddress.ip_interface(value)
        if iface.network.prefixlen == iface.max_prefixlen and "/" not in value:
            raise ValueError("give the prefix length too, as in 10.100.0.11/24, or write dhcp")
        return value


class DeployTuning(Strict):
    """How the deploy runs: retries and per-phase deadlines (seconds)."""

    retries: int = Field(2, ge=0, le=10, description="times a failed node is started over")
    concurrency: int = Field(0, ge=0, description="nodes installing at once; 0 = all")
    deadlines: dict[
        Literal["preflight", "media", "boot", "live", "inspect", "install", "collect", "finalize", "verify"],
        Annotated[int, Field(ge=1, le=86400)],
    ] = Field(default_factory=dict)


class InstallSettings(Strict):
    """What the installer puts on each node; every key may be overridden per node."""

    release: Literal["bookworm"] | None = None
    mirror: str | None = Field(None, pattern=r"^https?://\S+$", description="Debian mirror URL")
    apt_proxy: str | None = Field(None, pattern=r"^https?://\S+$")
    method: Literal["image", "debootstrap"] | None = None
    disk: DiskHintText | None = None
    filesystem: Literal["ext4", "xfs"] | None = None
    packages: list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$")]] | None = None
    deploy_user: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    ssh_keys: list[SshKey] | None = None
    dns: list[IP] | None = None
    timezone: str | None = Field(None, pattern=r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")
    root_password_hash: Secret | None = None
    boot_mode: Literal["auto", "uefi", "bios"] | None = None
    wipe: Literal["any", "empty-only"] | None = Field(
        None, description="which disks the install may wipe: any (default), or empty-only (none with a file "
                          "system or LVM on it)")


CheckLevel = Literal["fail", "warn", "off"]


class RequirementSettings(Strict):
    """PVC's hardware requirements (inventory/requirements.py has each one's source); 0 turns a minimum off."""

    profile: Literal["pvc", "lab"] | None = Field(None, description="pvc: PVC's own minimums (default); lab: a lab's")
    disk_min_gb: float | None = Field(None, ge=0, description="system disk size, GB (pvc: 32)")
    disk_ssd: CheckLevel | None = Field(None, description="the system disk must be an SSD (pvc: warn)")
    memory_min_gb: float | None = Field(None, ge=0, description="memory, GB (pvc: 32)")
    cores_min: int | None = Field(None, ge=0, description="CPU cores (pvc: 8)")
    nic_min_mbps: int | None = Field(None, ge=0, description="the fastest NIC with link, Mbit/s (pvc: 1000)")
    virtualization: CheckLevel | None = Field(None, description="VT-x/AMD-V present (pvc: fail)")
    coordinators: list[Annotated[int, Field(ge=1, le=255)]] | None = Field(
        None, min_length=1, description="allowed coordinator counts (pvc: [3, 5])")
    ipmi: CheckLevel | None = Field(None, description="IPMI over LAN answers at the BMC, for fencing (pvc: fail)")
    bmc_health: CheckLevel | None = Field(None, description="the BMC reports the system healthy (pvc: warn)")


class Defaults(Strict):
    bmc: BmcSettings = Field(default_factory=BmcSettings)
    install: InstallSettings = Field(default_factory=InstallSettings)
    install_network: InstallNetwork = Field(default_factory=InstallNetwork)
    deploy: DeployTuning = Field(default_factory=DeployTuning)
    requirements: RequirementSettings = Field(default_factory=RequirementSettings)


class PvcNetwork(Strict):
    """One of PVC's core networks."""

    subnet: str = Field(..., description="network/prefix, e.g. 10.100.0.0/24")
    gateway: IP | None = Field(None, description="upstream only: the default gateway")
    floating_ip: IP = Field(..., description="the primary coordinator's floating address")
    mtu: Mtu = 1500
    device: str = Field(..., pattern=r"^[a-zA-Z0-9._-]{1,15}$", description="interface, bond or vlan device")
    raw_device: str | None = Field(None, description="for a VLAN device: its parent interface")
    vlan: Vlan | None = None
    domain: str | None = Field(None, pattern=DOMAIN)

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        ipaddress.ip_network(value, strict=True)
        if "/" not in value:
            raise ValueError("give the prefix length, as in 10.100.0.0/24")
        return value


class BmcNetwork(Strict):
    """The network the BMCs are on (pvc-ansible sets each BMC's address, netmask and gateway)."""

    subnet: str = Field(..., description="network/prefix, e.g. 10.100.1.0/24")
    gateway: IP = Field(..., description="the BMCs' default gateway")

    @field_validator("subnet")
    @classmethod
    def _subnet(cls, value: str) -> str:
        return PvcNetwork._subnet(value)


class Networks(Strict):
    upstream: PvcNetwork
    cluster: PvcNetwork
    storage: PvcNetwork
    bmc: BmcNetwork | None = Field(None, description="the BMCs' network; default: the PVC network they are in")


class NodeAddresses(Strict):
    """A node's address on each PVC network; default: the network's base address + node_id."""

    upstream: IP | None = None
    cluster: IP | None = None
    storage: IP | None = None


class NodeEntry(Strict):
    hostname: str = Field(..., pattern=HOSTNAME, description="short hostname; its digits are the node id")
    node_id: int | None = Field(None, ge=1, le=255, description="default: the digits in the hostname")
    coordinator: bool = False
    bmc: NodeBmc
    install_network: InstallNetwork | None = None
    addresses: NodeAddresses = Field(default_factory=NodeAddresses)
    disk: DiskHintText | None = None
    install: InstallSettings = Field(default_factory=InstallSettings)
    requirements: RequirementSettings = Field(default_factory=RequirementSettings)


class ClusterInfo(Strict):
    name: str = Field(..., pattern=NAME, description="the pvc-ansible group name")
    domain: str = Field(..., pattern=DOMAIN, description="the nodes' DNS domain")
    manager_email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")


class Webhook(Strict):
    url: str = Field(..., pattern=r"^https?://[^/\s]+(/\S*)?$", description="where to POST each notification")
    token: SecretRef | None = Field(None, description="signs each body: X-Pvcctl-Signature: sha256=HMAC-SHA256")


class ControllerSettings(Strict):
    listen: str = Field("0.0.0.0:8740", pattern=r"^\S+:\d{1,5}$", description="host:port the controller binds")
    url: str = Field(..., pattern=r"^https?://[^/\s]+(:\d+)?/?$", description="how BMCs and live nodes reach it")
    ssh_key: Path | None = Field(None, description="the controller's SSH private key; default: generated")
    state_dir: Path = Field(Path("runs"), description="where runs, logs, the ISO cache and each cluster's state go")
    iso: str | None = Field(None, description="a prebuilt ISO: a local path or an http(s) URL")
    lab: bool = Field(False, description="a lab's inventory (pvcctl lab up writes it): the ISO is also served to "
                                         "loopback, and the installs may be simulated ones")
    webhooks: list[Webhook] = Field(default_factory=list, description="told when a node is done or failed and when "
                                                                      "the deploy ends (JSON POST)")


class InventoryFile(Strict):
    """A PVC cluster for pvcctl: one file, every node."""

    version: Literal[1] = 1
    cluster: ClusterInfo
    controller: ControllerSettings
    defaults: Defaults = Field(default_factory=Defaults)
    networks: Networks
    nodes: list[NodeEntry] = Field(..., min_length=1)


def json_schema() -> dict[str, Any]:
    schema = InventoryFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "pvcctl inventory"
    return schema
