"""What a deploy checks before it touches anything: every check here runs before the run directory
exists and before any BMC is asked anything."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from core.errors import UserError
from inventory.model import Cluster


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
