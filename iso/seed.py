"""The seed: what one cluster's ISO knows about its controller and nodes, in a small JSON file.

It lives on the ISO as /pvc/seed.json, outside the live root, so a new seed makes a new ISO in
about a second without rebuilding anything (`write_iso_with_seed`). The live system reads it at
boot (iso/live/) to set up the network, trust the controller's key and check in.

Python standard library only: this module also runs on the live system.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from installer.plan import FileRefused, read_small_file

SEED_ISO_PATH = "/pvc/seed.json"
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?[0-9a-f]{2}){5}$")
_KEY = re.compile(r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/=]+( .*)?$")


class SeedError(ValueError):
    """A seed field is wrong; the message names it."""


def normalize_mac(mac: str) -> str:
    """'AA-BB-CC-DD-EE-FF' or 'aabbccddeeff' → 'aa:bb:cc:dd:ee:ff'."""
    text = mac.strip().lower()
    if not _MAC.match(text):
        raise SeedError(f"{mac!r} is not a MAC address like 52:54:00:12:34:56")
    digits = re.sub(r"[:-]", "", text)
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True)
class SeedNode:
    """One node's live-system network: found by one of its MACs or its system serial."""

    name: str
    macs: tuple[str, ...] = ()
    serial: str | None = None
    address: str | None = None  # address/prefix; None = DHCP
    gateway: str | None = None
    vlan: int | None = None
    dns: tuple[str, ...] = ()
    interface: str | None = None

    def __post_init__(self) -> None:
        where = f"nodes[{self.name!r}]"
        if not self.name:
            raise SeedError("a seed node needs a name")
        object.__setattr__(self, "macs", tuple(normalize_mac(m) for m in self.macs))
        if not self.macs and not self.serial:
            raise SeedError(f"{where}: give at least one MAC or the system serial, or no node can match it")
        if self.vlan is not None and not 1 <= self.vlan <= 4094:
            raise SeedError(f"{where}.vlan: {self.vlan} is not a VLAN id from 1 to 4094")
        if self.address is not None:
            _check_interface_address(where, self.address)
        elif self.gateway is not None:
            raise SeedError(f"{where}.gateway: a gateway needs a static address (DHCP brings its own)")
        for value in (self.gateway, *self.dns):
            if value is not None:
                _check_ip(where, value)

    def matches(self, macs: set[str], serial: str | None) -> bool:
        return bool(set(self.macs) & macs) or (self.serial is not None and self.serial == serial)


@dataclass(frozen=True)
class Seed:
    """Controller URL, the controller's public SSH key, and the node table."""

    controller_url: str
    controller_key: str
    nodes: tuple[SeedNode, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.controller_url and not re.match(r"^https?://[^\s/]+(/\S*)?$", self.controller_url):
            raise SeedError(f"controller_url {self.controller_url!r} is not an http(s) URL")
        if not _KEY.match(self.controller_key.strip()):
            raise SeedError("controller_key is not an OpenSSH public key line (like 'ssh-ed25519 AAAA... comment')")
        names = [n.name for n in self.nodes]
        if len(set(names)) != len(names):
            raise SeedError("seed node names must be unique")

    def match(self, macs: set[str], serial: str | None) -> SeedNode | None:
        """The node whose MAC (checked first, across all nodes) or serial is this machine's."""
        lowered = {m.lower() for m in macs}
        by_mac = [n for n in self.nodes if set(n.macs) & lowered]
        if by_mac:
            return by_mac[0]
        return next((n for n in self.nodes if serial and n.serial == serial), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Seed:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as err:
            raise SeedError(f"the seed is not JSON: {err}") from None
        if not isinstance(data, dict):
            raise SeedError("the seed is a JSON object")
        try:
            nodes = tuple(_node(item) for item in data.get("nodes", []))
            return cls(str(data["controller_url"]), str(data["controller_key"]), nodes)
        except KeyError as err:
            raise SeedError(f"the seed has no {err.args[0]}") from None

    @classmethod
    def load(cls, path: Path) -> Seed:
        """The seed in `path`: a regular file of at most 1 MiB (FileRefused is a SeedError here)."""
        try:
            return cls.from_json(read_small_file(path, "seed"))
        except FileRefused as err:
            raise SeedError(str(err)) from None
        except UnicodeDecodeError:
            raise SeedError(f"{path}: is not UTF-8 text; give the seed.json pvcctl wrote") from None


def _node(data: Any) -> SeedNode:
    if not isinstance(data, dict):
        raise SeedError("each seed node is a JSON object")
    unknown = set(data) - set(SeedNode.__dataclass_fields__)
    if unknown:
        raise SeedError(f"seed node field {sorted(unknown)[0]!r} is not known")
    data = dict(data)
    for name in ("macs", "dns"):
        if not isinstance(data.get(name, []), list):
            raise SeedError(f"seed node {name} must be a list")
        data[name] = tuple(str(x) for x in data.get(name, []))
    if data.get("vlan") is not None and (not isinstance(data["vlan"], int) or isinstance(data["vlan"], bool)):
        raise SeedError("seed node vlan must be a number")
    return SeedNode(**data)


def _check_interface_address(where: str, text: str) -> None:
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        raise SeedError(f"{where}.address: {text!r} is not an address/prefix like 10.0.0.5/24") from None
    if "/" not in text:
        raise SeedError(f"{where}.address: {text!r} needs its prefix length, as in /24")
    if iface.ip == iface.network.network_address and iface.network.prefixlen < iface.max_prefixlen - 1:
        raise SeedError(f"{where}.address: {text!r} is a network address, not a host address")


def _check_ip(where: str, text: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise SeedError(f"{where}: {text!r} is not an IP address") from None


def write_iso_with_seed(base_iso: Path, seed: Seed, out_path: Path) -> Path:
    """A copy of `base_iso` with `seed` as its seed file, written atomically to out_path (~1 s).

    Nothing else changes: the live root, boot loaders and El Torito/hybrid layout are replayed.
    """
    from iso.image import replace_seed  # host-side only; the live system never writes ISOs

    return replace_seed(Path(base_iso), seed.to_json(), Path(out_path))
