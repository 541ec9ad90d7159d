"""The seed of a cluster's ISO, from its inventory: controller URL and key, and the nodes whose
install MAC is known (the others are found by DHCP and their check-in)."""

from __future__ import annotations

from inventory.model import Cluster
from iso.errors import IsoUserError
from iso.seed import Seed, SeedError, SeedNode


def seed_for(cluster: Cluster, controller_key: str) -> Seed:
    """The ISO's seed: controller URL and key, and each node that has a known install MAC."""
    nodes = []
    for node in cluster.nodes:
        net = node.install_network
        if not net.mac:
            continue  # found by DHCP and check-in instead; the BMC's MACs come only at preflight
        nodes.append(SeedNode(name=node.hostname, macs=(net.mac,), interface=net.interface,
                              address=str(net.address) if net.address else None, gateway=net.gateway,
                              vlan=net.vlan, dns=node.install.dns))
    try:
        return Seed(cluster.controller.url, controller_key.strip(), tuple(nodes))
    except SeedError as err:
        raise IsoUserError(f"the ISO seed cannot be made from the inventory: {err}") from None
