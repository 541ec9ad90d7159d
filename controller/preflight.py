"""What a deploy checks before it touches anything: every check here runs before the run directory
exists and before any BMC is asked anything."""

from __future__ import annotations

import errno
import socket
from urllib.parse import urlsplit

from core.errors import UserError
from inventory.model import Cluster
from inventory.pvc_ansible import check_render_secrets
from iso.resolve import check_iso


class ControllerAddressError(UserError):
    """The controller URL names an address this machine does not have: nothing could reach it."""


def check_controller_address(cluster: Cluster) -> None:
    """Before any BMC is touched: controller.url must be an address of this machine."""
    url = cluster.controller.url
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise ControllerAddressError(f"controller.url {url}: cannot resolve {host!r}; write an address "
                                     "of this machine that the BMCs and nodes can reach") from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind((address[0], 0))
                return
            except OSError:
                continue
    raise ControllerAddressError(f"controller.url {url}: {host} is not an address of this machine, so no BMC "
                                 "or node could reach the controller; write one of this machine's addresses")


class ListenUnusableError(UserError):
    """The controller cannot listen where the inventory says."""


def check_listen(cluster: Cluster) -> None:
    """controller.listen can be bound now (the deploy's server binds it with the same options)."""
    host, port = cluster.controller.listen_host, cluster.controller.listen_port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        raise ListenUnusableError(f"controller.listen {host}:{port}: cannot resolve {host!r}; write an address "
                                  "of this machine (or 0.0.0.0)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            why = "is in use" if err.errno == errno.EADDRINUSE else f"cannot be used ({err.strerror})"
            raise ListenUnusableError(f"controller.listen {host}:{port} {why}; change controller.listen in the "
                                      "inventory, or stop what listens there") from None


def check_controller_key(cluster: Cluster) -> None:
    """A controller key the inventory names must be an SSH private key pvcctl can read."""
    path = cluster.controller.ssh_key
    if path is None:
        return  # made in the cluster's state directory by the first deploy
    import asyncssh

    try:
        asyncssh.read_private_key(str(path))
    except (OSError, asyncssh.KeyImportError) as err:
        raise UserError(f"controller.ssh_key {path}: cannot read it as an SSH private key: {err}") from None


async def preflight(cluster: Cluster) -> list[str]:
    """Everything a deploy can check before it makes its run directory or asks any BMC anything; raises
    the first problem as a one-line UserError. Returns what was found, for `pvcctl validate` to say."""
    check_controller_address(cluster)
    check_listen(cluster)
    check_render_secrets(cluster)
    check_controller_key(cluster)
    iso = await check_iso(cluster)
    return [f"controller at {cluster.controller.url}, listening on {cluster.controller.listen_host}:"
            f"{cluster.controller.listen_port}", f"serves {iso}", "secrets and BMC passwords readable"]
