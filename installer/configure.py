"""The text of every configuration file the installer writes: pure functions, no I/O."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from installer.layout import VG_NAME
from installer.plan import Network, Plan

HOSTS_TEMPLATE = """127.0.0.1\tlocalhost
{address_line}
::1\tlocalhost ip6-localhost ip6-loopback
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""
GRUB_DEFAULTS = """# Written by the PVC installer (pvcctl).
GRUB_DEFAULT=0
GRUB_TIMEOUT=5
GRUB_DISTRIBUTOR="Parallel Virtual Cluster (PVC) - Debian"
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="noautogroup blacklist=hpwdt console=tty0 console=ttyS0,115200n8"
GRUB_TERMINAL_INPUT="console serial"
GRUB_TERMINAL_OUTPUT="console serial"
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
"""
BLACKLIST = "# pvc-installer: the HP watchdog resets nodes under load\nblacklist hpwdt\n"
SUDOERS = "# PVC deploy user and sudo group: passwordless, as pvc-ansible expects\n%sudo ALL=(ALL:ALL) NOPASSWD: ALL\n"
BIND_MOUNTS = ("dev", "dev/pts", "proc", "sys", "run")


@dataclass(frozen=True)
class FsEntry:
    uuid: str
    mountpoint: str
    fstype: str
    options: str
    passno: int


def fstab(entries: list[FsEntry]) -> str:
    lines = ["# /etc/fstab, by UUID (written by the PVC installer)",
             "# <file system> <mount point> <type> <options> <dump> <pass>"]
    lines += [f"UUID={e.uuid}\t{e.mountpoint}\t{e.fstype}\t{e.options}\t0\t{e.passno}" for e in entries]
    lines.append("tmpfs\t/tmp\ttmpfs\tdefaults,nosuid,nodev\t0\t0")
    return "\n".join(lines) + "\n"


def data_fs_options(filesystem: str, discard: bool) -> str:
    """errors=remount-ro is an ext4 option; xfs refuses it (pvc-installer wrote it for both)."""
    options = ["defaults"] + (["discard"] if discard else [])
    if filesystem == "ext4":
        options.append("errors=remount-ro")
    return ",".join(options)


def interfaces(network: Network, interface: str) -> tuple[str, str]:
    """(file name under /etc/network/interfaces.d, its text): ifupdown the way pvc-ansible reads it."""
    stanzas = []
    base = interface
    if network.bond_slaves:
        for slave in network.bond_slaves:
            stanzas.append(f"auto {slave}\niface {slave} inet manual\n")
    configured = f"{base}.{network.vlan}" if network.vlan else base
    if network.vlan:
        stanzas.append(f"auto {base}\niface {base} inet manual\n" + _bond_lines(network))
    lines = [f"auto {configured}", f"iface {configured} inet {'static' if network.address else 'dhcp'}"]
    if network.vlan:
        lines.append(f"    vlan_raw_device {base}")
    elif network.bond_slaves:
        lines.append(_bond_lines(network).rstrip("\n"))
    if network.address:
        iface = ipaddress.ip_interface(network.address)
        lines += [f"    address {iface.ip}", f"    netmask {iface.netmask}"]
        if network.gateway:
            lines.append(f"    gateway {network.gateway}")
    stanzas.append("\n".join(lines) + "\n")
    return configured, "# Written by the PVC installer (pvcctl)\n" + "\n".join(stanzas)


def _bond_lines(network: Network) -> str:
    if not network.bond_slaves:
        return ""
    return f"    bond-mode {network.bond_mode}\n    bond-slaves {' '.join(network.bond_slaves)}\n" \
           "    bond-miimon 100\n"


def hosts(hostname: str, address: str | None) -> str:
    short = hostname.split(".")[0]
    ip = str(ipaddress.ip_interface(address).ip) if address else "127.0.1.1"
    return HOSTS_TEMPLATE.format(address_line=f"{ip}\t{hostname} {short}")


def resolv_conf(dns: tuple[str, ...]) -> str:
    return "".join(f"nameserver {server}\n" for server in dns)


def security_mirror(mirror: str) -> str:
    """The security archive beside a mirror: .../debian → .../debian-security."""
    base = mirror.rstrip("/")
    return re.sub(r"/debian$", "/debian-security", base) if base.endswith("/debian") else base + "-security"


def apt_sources(plan: Plan, mirror: str) -> str:
    """deb822 sources with updates, security and non-free-firmware (pvc-installer added neither)."""
    components = "main contrib non-free-firmware"
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    return (f"Types: deb\nURIs: {mirror}\nSuites: {plan.release} {plan.release}-updates\n"
            f"Components: {components}\nSigned-By: {keyring}\n\n"
            f"Types: deb\nURIs: {security_mirror(mirror)}\nSuites: {plan.release}-security\n"
            f"Components: {components}\nSigned-By: {keyring}\n")


def authorized_keys(keys: tuple[str, ...]) -> str:
    return "".join(f"{key.strip()}\n" for key in keys)


def lv_device(name: str) -> str:
    return f"/dev/{VG_NAME}/{name}"
