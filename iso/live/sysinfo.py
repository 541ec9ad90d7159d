"""What this machine is: MACs, serial, addresses, boot mode, host key fingerprint (stdlib only)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path

SYS_NET = Path("/sys/class/net")


def physical_links(sys_net: Path = SYS_NET) -> dict[str, str]:
    """Ethernet links backed by a device: name -> lowercase MAC."""
    links = {}
    for link in sorted(sys_net.iterdir()):
        try:
            kind = (link / "type").read_text().strip()
            mac = (link / "address").read_text().strip().lower()
        except OSError:
            continue
        if kind == "1" and (link / "device").exists() and mac != "00:00:00:00:00:00":
            links[link.name] = mac
    return links


def system_serial(dmi: Path = Path("/sys/class/dmi/id")) -> str | None:
    for name in ("product_serial", "board_serial", "chassis_serial"):
        try:
            value = (dmi / name).read_text().strip()
        except OSError:
            continue
        if value and value.lower() not in ("", "none", "not specified", "to be filled by o.e.m.", "0"):
            return value
    return None


def boot_mode() -> str:
    return "uefi" if Path("/sys/firmware/efi").is_dir() else "bios"


def global_addresses() -> list[str]:
    """Every global IPv4/IPv6 address/prefix on this machine, from `ip -json addr`."""
    out = subprocess.run(["ip", "-json", "addr", "show"], capture_output=True, text=True, check=False).stdout
    found = []
    for link in json.loads(out or "[]"):
        for addr in link.get("addr_info", []):
            if addr.get("scope") == "global":
                found.append(f"{addr['local']}/{addr['prefixlen']}")
    return found


def host_key_fingerprint(public: Path = Path("/etc/ssh/ssh_host_ed25519_key.pub")) -> str | None:
    try:
        blob = base64.b64decode(public.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
