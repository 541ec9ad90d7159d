"""The install plan: what the controller asks one node's installer to do.

This module is the contract between controller and node. The controller builds a `Plan` from the
inventory and writes it as JSON; the installer reads it back with `Plan.from_dict`, which checks
every field again. Python standard library only: it runs on the live system.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PLAN_VERSION = 1
FILESYSTEMS = ("ext4", "xfs")
METHODS = ("image", "debootstrap")
BOOT_MODES = ("auto", "uefi", "bios", "both")  # auto: the mode the live system booted in
RELEASES = ("bookworm",)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


MAX_INPUT_BYTES = 1024 * 1024  # an inventory, a seed or a plan: a few KiB; anything bigger is not one


class FileRefused(ValueError):
    """A file pvcctl does not read: not a regular file, or over its size limit. str() is one line naming
    the file and what to do."""


def read_small_file(path: Path, what: str, limit: int = MAX_INPUT_BYTES) -> str:
    """The UTF-8 text of `path` if it is a regular file of at most `limit` bytes, else FileRefused.

    Opened before it is checked (fstat of the open file, so nothing can swap it in between), without
    blocking (a FIFO does not hang the open) and read no further than the limit: a link to /dev/zero
    or a huge file is refused at once, not read. OSError and UnicodeDecodeError go to the caller.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a device, pipe or socket"
            raise FileRefused(f"{path}: is {kind}, not a regular file; give the path of the {what} file itself")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileRefused(f"{path}: is larger than {limit // 1024} KiB, more than any {what} needs; check that "
                          f"this is the {what} file (or trim it)")
    return data.decode("utf-8")


class PlanError(ValueError):
    """A plan field is wrong. `field` is its dotted path in the plan."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


def parse_size(text: str) -> int:
    """Bytes from a human size: 480G, 480GB and 1.92T are decimal (as disk vendors count);
    447GiB and 447Gi are binary. A bare number is bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write it like 480G, 1.92T or 447GiB")
    number, unit, binary = match.groups()
    base = 1024 if binary else 1000
    return int(float(number) * base ** _UNITS[unit.lower()])


def hostname_problem(hostname: str) -> str | None:
    """Why a hostname is unusable, or None: the installer wants a lower-case FQDN."""
    if not _HOSTNAME.match(hostname) or "." not in hostname:
        return f"{hostname!r} is not a fully-qualified lower-case hostname (like hv1.cluster.example)"
    return None


def package_problem(name: str) -> str | None:
    return None if _PACKAGE.match(name) else f"{name!r} is not a Debian package name"


DISK_HINT_HELP = (
    "write a device path (/dev/sda, /dev/disk/by-id/..., /dev/disk/by-path/...), serial:SERIAL, "
    "wwn:WWN, model:SUBSTRING[:SIZE], smallest or largest"
)


@dataclass(frozen=True)
class DiskHint:
    """Which disk to install on. Exactly one disk must match it, or the installer refuses.

    kind is one of: path, serial, wwn, model, smallest, largest. For `model`, `value` is a
    case-insensitive substring of the model and `size` (bytes, optional) must match within 3%.
    """

    kind: str
    value: str = ""
    size: int | None = None

    @classmethod
    def parse(cls, text: str) -> DiskHint:
        text = text.strip()
        if text in ("smallest", "largest"):
            return cls(text)
        if text.startswith("/dev/"):
            if any(part in ("", ".", "..") for part in text[len("/dev/"):].split("/")):
                raise ValueError(f"{text!r} is not a clean device path; {DISK_HINT_HELP}")
            return cls("path", text)
        kind, sep, rest = text.partition(":")
        if not sep or not rest.strip():
            raise ValueError(f"{text!r} is not a disk hint; {DISK_HINT_HELP}")
        rest = rest.strip()
        if kind == "serial":
            return cls("serial", rest)
        if kind == "wwn":
            wwn = rest.lower().removeprefix("0x")
            if not re.fullmatch(r"[0-9a-f]{16}|[0-9a-f]{32}", wwn):
                raise ValueError(f"wwn {rest!r} must be 16 or 32 hex digits (0x optional)")
            return cls("wwn", wwn)
        if kind == "model":
            model, sep, size_text = rest.rpartition(":")
            if not sep:
                return cls("model", rest)
            try:
                size = parse_size(size_text)
            except ValueError:
                return cls("model", rest)  # a colon inside the model name itself
            if not model.strip():
                raise ValueError(f"{text!r} names a size but no model; {DISK_HINT_HELP}")
            return cls("model", model.strip(), size)
        raise ValueError(f"{text!r}: unknown kind {kind!r}; {DISK_HINT_HELP}")

    def __str__(self) -> str:
        if self.kind in ("smallest", "largest"):
            return self.kind
        if self.kind == "path":
            return self.value
        if self.kind == "model" and self.size is not None:
            return f"model:{self.value}:{self.size}"
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Network:
    """The installed system's management network (the one the controller reaches it on).

    The interface is named (`interface`) or found by its MAC (`mac`); `address` is an
    address/prefix, or None for DHCP. A bond uses `bond_slaves` (names) with `bond_mode`.
    """

    interface: str | None = None
    mac: str | None = None
    vlan: int | None = None
    bond_mode: str | None = None
    bond_slaves: tuple[str, ...] = ()
    address: str | None = None
    gateway: str | None = None
    dns: tuple[str, ...] = ()

    def check(self) -> None:
        if not self.interface and not self.mac:
            raise PlanError("network", "name an interface or a mac")
        if self.mac is not None and not _MAC.match(self.mac):
            raise PlanError("network.mac", f"{self.mac!r} is not a MAC address like 52:54:00:12:34:56")
        if self.vlan is not None and not 1 <= self.vlan <= 4094:
            raise PlanError("network.vlan", f"{self.vlan} is not a VLAN id from 1 to 4094")
        if bool(self.bond_mode) != bool(self.bond_slaves):
            raise PlanError("network.bond_mode", "a bond needs both a mode and its slave interfaces")
        if self.address is not None:
            try:
                iface = ipaddress.ip_interface(self.address)
            except ValueError:
                raise PlanError("network.address", f"{self.address!r} is not an address/prefix") from None
            if iface.network.prefixlen == iface.max_prefixlen:
                raise PlanError("network.address", f"{self.address!r} needs its prefix length, as in /24")
        elif self.gateway is not None:
            raise PlanError("network.gateway", "a gateway needs a static address (DHCP brings its own)")
        for name, value in [("gateway", self.gateway), *[(f"dns[{i}]", d) for i, d in enumerate(self.dns)]]:
            if value is None:
                continue
            try:
                ipaddress.ip_address(value)
            except ValueError:
                raise PlanError(f"network.{name}", f"{value!r} is not an IP address") from None


@dataclass(frozen=True)
class Plan:
    """Everything one node's install needs; `Plan.from_dict(plan.to_dict()) == plan`."""

    hostname: str
    disk: DiskHint
    network: Network
    filesystem: str = "ext4"
    method: str = "image"
    release: str = "bookworm"
    mirror: str = ""
    packages: tuple[str, ...] = ()
    deploy_user: str = "deploy"
    ssh_keys: tuple[str, ...] = ()
    root_password_hash: str | None = field(default=None, repr=False)  # never shown in logs
    deploy_password_hash: str | None = field(default=None, repr=False)
    timezone: str = "Etc/UTC"
    image: str | None = None
    boot_mode: str = "auto"
    run: str = ""  # the controller's run (and attempt) that asked for this install: kept in the install marker
    version: int = PLAN_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Raise PlanError naming the first wrong field."""
        if self.version != PLAN_VERSION:
            raise PlanError("version", f"plan version {self.version} is not {PLAN_VERSION}; update pvcctl")
        problem = hostname_problem(self.hostname)
        if problem:
            raise PlanError("hostname", problem)
        _one_of("filesystem", self.filesystem, FILESYSTEMS)
        _one_of("method", self.method, METHODS)
        _one_of("release", self.release, RELEASES)
        _one_of("boot_mode", self.boot_mode, BOOT_MODES)
        if self.method == "debootstrap" and not re.match(r"^https?://\S+$", self.mirror):
            raise PlanError("mirror", "the debootstrap method needs an http(s) mirror URL")
        if self.method == "image" and not self.image:
            raise PlanError("image", "the image method needs the path of the root image")
        for i, package in enumerate(self.packages):
            problem = package_problem(package)
            if problem:
                raise PlanError(f"packages[{i}]", problem)
        if not _USER.match(self.deploy_user):
            raise PlanError("deploy_user", f"{self.deploy_user!r} is not a valid user name")
        for i, key in enumerate(self.ssh_keys):
            if not re.match(r"^(ssh|ecdsa|sk)-[a-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$", key):
                raise PlanError(f"ssh_keys[{i}]", "is not an OpenSSH public key line")
        if not self.ssh_keys and self.root_password_hash is None and self.deploy_password_hash is None:
            raise PlanError("ssh_keys", "give at least one SSH key, or a root password hash, or nobody can log in")
        for name in ("root_password_hash", "deploy_password_hash"):
            value = getattr(self, name)
            if value is not None and (not value.startswith("$") or ":" in value or "\n" in value):
                raise PlanError(name, "must be a crypt(3) hash (mkpasswd -m yescrypt), never a password")
        self.network.check()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples become lists, so `from_dict(to_dict())` and a JSON round trip agree."""
        data = _lists(asdict(self))
        data["disk"] = str(self.disk)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Plan:
        """A checked Plan from decoded JSON; PlanError names the first wrong field."""
        if not isinstance(data, dict):
            raise PlanError("", "a plan is a JSON object")
        data = dict(data)
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise PlanError(unknown[0], "is not a plan field (is the installer older than the controller?)")
        for required in ("hostname", "disk", "network"):
            if required not in data:
                raise PlanError(required, "is missing")
        try:
            data["disk"] = DiskHint.parse(_typed("disk", data["disk"], str))
        except ValueError as err:
            raise PlanError("disk", str(err)) from None
        data["network"] = _network(data["network"])
        for name in ("packages", "ssh_keys"):
            if name in data:
                data[name] = tuple(_typed(f"{name}[]", item, str) for item in _typed(name, data[name], list))
        for name, kind in (("hostname", str), ("filesystem", str), ("method", str), ("release", str),
                           ("mirror", str), ("deploy_user", str), ("timezone", str), ("boot_mode", str),
                           ("run", str), ("version", int), ("extra", dict)):
            if name in data:
                _typed(name, data[name], kind)
        for name in ("root_password_hash", "deploy_password_hash", "image"):
            if data.get(name) is not None:
                _typed(name, data[name], str)
        plan = cls(**data)
        plan.check()
        return plan


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _lists(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(item) for item in value]
    return value


def _network(data: Any) -> Network:
    data = dict(_typed("network", data, dict))
    known = set(Network.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise PlanError(f"network.{unknown[0]}", "is not a network field")
    for name in ("bond_slaves", "dns"):
        if name in data:
            data[name] = tuple(_typed(f"network.{name}[]", x, str) for x in _typed(f"network.{name}", data[name], list))
    for name in ("interface", "mac", "bond_mode", "address", "gateway"):
        if data.get(name) is not None:
            _typed(f"network.{name}", data[name], str)
    if data.get("vlan") is not None:
        _typed("network.vlan", data["vlan"], int)
    if data.get("mac"):
        data["mac"] = data["mac"].lower()
    return Network(**data)


def _typed(name: str, value: Any, kind: type) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PlanError(name, f"must be a {kind.__name__}, not {type(value).__name__}")
    return value


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PlanError(name, f"{value!r} is not one of {', '.join(allowed)}")
