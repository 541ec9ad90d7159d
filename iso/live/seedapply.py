"""At boot, before networkd and sshd: apply the seed (stdlib only).

Trusts the controller's key for root, and writes systemd-networkd files into /run: the static
entry of the seed node that matches one of this machine's MACs or its serial, else DHCP on every
Ethernet link (networkd only acts on links with carrier). Records what it did for the console.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from iso.live import SEED_FILE, STATE_DIR
from iso.live.sysinfo import physical_links, system_serial
from iso.seed import Seed, SeedError, SeedNode

NETWORK_DIR = Path("/run/systemd/network")
DHCP_FILE = "99-pvc-dhcp.network"
DHCP_NETWORK = """[Match]
Type=ether
Kind=!*

[Network]
DHCP=yes
LinkLocalAddressing=no
IPv6AcceptRA=yes
"""


def network_files(node: SeedNode | None, links: dict[str, str]) -> dict[str, str]:
    """networkd files (name -> content) for this machine: the node's static entry, or DHCP."""
    if node is None or node.address is None:
        return {DHCP_FILE: DHCP_NETWORK}
    link = _seed_link(node, links)
    if link is None:
        return {DHCP_FILE: DHCP_NETWORK}
    by_mac = links[link] in node.macs
    match = f"[Match]\nMACAddress={links[link]}\nType=ether\n" if by_mac else f"[Match]\nName={link}\n"
    static = f"[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nAddress={node.address}\n"
    static += f"Gateway={node.gateway}\n" if node.gateway else ""
    static += "".join(f"DNS={server}\n" for server in node.dns)
    if node.vlan is None:
        return {f"10-pvc-{link}.network": f"{match}\n{static}"}
    vlan = f"vlan{node.vlan}"
    return {
        f"10-pvc-{link}.network": f"{match}\n[Network]\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nVLAN={vlan}\n",
        f"10-pvc-{vlan}.netdev": f"[NetDev]\nName={vlan}\nKind=vlan\n\n[VLAN]\nId={node.vlan}\n",
        f"10-pvc-{vlan}.network": f"[Match]\nName={vlan}\n\n{static}",
    }


def _seed_link(node: SeedNode, links: dict[str, str]) -> str | None:
    """The link the node's static entry goes on: the one with its MAC, else its named interface
    (a MAC is surer: the live system may name NICs differently from the installed one)."""
    by_mac = next((name for name, mac in links.items() if mac in node.macs), None)
    if by_mac is not None:
        return by_mac
    return node.interface if node.interface in links else None


def wait_for_links(deadline_seconds: float = 30.0) -> dict[str, str]:
    """Ethernet links, waiting for drivers to load (they come up after udev's trigger)."""
    end = time.monotonic() + deadline_seconds
    links = physical_links()
    while not links and time.monotonic() < end:
        time.sleep(0.5)
        links = physical_links()
    time.sleep(1.0)  # let a second NIC's driver finish too
    return physical_links()


def read_seed(path: Path = SEED_FILE) -> tuple[Seed | None, str]:
    if not path.is_file():
        return None, "no seed on this medium"
    try:
        return Seed.load(path), "seed read"
    except (OSError, SeedError) as err:
        return None, f"seed unreadable: {err}"


def trust_controller(seed: Seed, home: Path = Path("/root")) -> None:
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.touch(mode=0o600)
    keys.write_text(seed.controller_key.strip() + "\n")


def main() -> int:
    seed, note = read_seed()
    if seed is not None:
        trust_controller(seed)
    links = wait_for_links()
    node = seed.match(set(links.values()), system_serial()) if seed else None
    files = network_files(node, links)
    NETWORK_DIR.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (NETWORK_DIR / name).write_text(content)
    mode = "dhcp" if DHCP_FILE in files else "static"
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    state = {"seed": note, "node": node.name if node else None, "network": mode, "links": links}
    (STATE_DIR / "seed.json").write_text(json.dumps(state))
    print(f"pvc-seed: {note}; node {state['node']}; network {mode} on {', '.join(links) or 'no links'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
