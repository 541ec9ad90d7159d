"""From the inventory to what each node gets: its install `Plan`, a pure function of the resolved
`Node` and the controller's public key. The installer checks the same plan with the same code."""

from __future__ import annotations

from core.errors import UserError
from installer.plan import Network, Plan, PlanError
from inventory.model import Node

# Where the live system keeps the target root image (iso/build.py's LIVE_TARGET_IMAGE).
DEFAULT_LIVE_IMAGE = "/run/live/medium/pvc/target.squashfs"


class PlanInputError(UserError):
    """The inventory makes a plan the installer would refuse."""


def live_image_path() -> str:
    try:
        from iso.build import LIVE_TARGET_IMAGE
    except ImportError:
        return DEFAULT_LIVE_IMAGE
    return str(LIVE_TARGET_IMAGE)


def plan_for(node: Node, controller_key: str) -> Plan:
    """The node's install plan; the controller's key is added so verify can log in as the deploy user."""
    install, net = node.install, node.install_network
    plan = Plan(
        hostname=node.fqdn,
        disk=install.disk,
        network=Network(
            interface=net.interface, mac=net.mac, vlan=net.vlan, bond_mode=net.bond_mode,
            bond_slaves=net.bond_slaves, address=str(net.address) if net.address else None,
            gateway=net.gateway, dns=install.dns,
        ),
        filesystem=install.filesystem,
        method=install.method,
        release=install.release,
        mirror=install.mirror,
        packages=install.packages,
        deploy_user=install.deploy_user,
        ssh_keys=tuple(dict.fromkeys([*install.ssh_keys, controller_key.strip()])),
        root_password_hash=install.root_password_hash.get_secret_value() if install.root_password_hash else None,
        timezone=install.timezone,
        image=live_image_path() if install.method == "image" else None,
        boot_mode=install.boot_mode,
    )
    try:
        plan.check()
    except PlanError as err:
        raise PlanInputError(f"node {node.hostname}: its install plan is wrong: {err}") from None
    return plan
