"""The seed for a cluster's ISO, from the validated inventory model."""

from __future__ import annotations

from pathlib import Path

from inventory.model import Cluster, Node
from iso.errors import IsoUserError
from iso.seed import Seed, SeedError, SeedNode


def controller_public_key(cluster: Cluster) -> str:
    """The controller's public key line: controller.ssh_key's `.pub` file (or the file itself)."""
    key = cluster.controller.ssh_key
    if key is None:
        raise IsoUserError("the inventory names no controller.ssh_key; the live system must trust the controller's "
                           "key: set controller.ssh_key to an SSH private key (its .pub beside it)")
    public = key if key.name.endswith(".pub") else Path(f"{key}.pub")
    try:
        return public.read_text().strip()
    except OSError as err:
        raise IsoUserError(f"cannot read the controller's public key {public}: {err.strerror}; "
                           f"make it with: ssh-keygen -y -f {key} > {public}") from None


def seed_node(node: Node) -> SeedNode | None:
    """The node's live network entry, or None when nothing identifies it (it gets DHCP)."""
    net = node.install_network
    if not net.mac:
        return None
    return SeedNode(name=node.hostname, macs=(net.mac,), address=str(net.address) if net.address else None,
                    gateway=net.gateway if net.address else None, vlan=net.vlan, dns=node.install.dns,
                    interface=net.interface)


def seed_from_cluster(cluster: Cluster) -> Seed:
    try:
        nodes = tuple(n for n in (seed_node(node) for node in cluster.nodes) if n is not None)
        return Seed(cluster.controller.url, controller_public_key(cluster), nodes)
    except SeedError as err:
        raise IsoUserError(f"cannot make the ISO seed from {cluster.source}: {err}") from None
