"""The check-in endpoint: a live node says it booted, and where it is.

`POST /api/v1/checkin` with `{"serial", "macs": [...], "addresses": [...], "boot_mode",
"host_key_fingerprint": "SHA256:...", "node"}` (and optionally `"ssh_port"`, which the simulated
lab uses) is answered `200 {"ack": true}` when it matches a node of this run. The match is by the
system serial or a MAC that the node's BMC reported in preflight, or by the node's inventory
address; the `node` name the live system chose from the seed is never trusted on its own. Anything
else is ignored (404) and noted, and a check-in with a host key other than the pinned one is
refused (403).
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from controller.node.events import Event, EventBus, EventKind


@dataclass(frozen=True)
class Checkin:
    serial: str
    macs: tuple[str, ...]
    addresses: tuple[str, ...]
    boot_mode: str
    host_key_fingerprint: str
    node: str
    ssh_port: int = 22

    @property
    def ssh_address(self) -> str:
        """The first address: where the controller connects (as the live system lists them)."""
        return self.addresses[0].split("/")[0]

    @classmethod
    def parse(cls, data: Any) -> Checkin:
        if not isinstance(data, dict):
            raise ValueError("a check-in is a JSON object")
        macs, addresses = data.get("macs", []), data.get("addresses", [])
        if not isinstance(macs, list) or not isinstance(addresses, list) or not addresses:
            raise ValueError("macs and addresses must be lists, with at least one address")
        for address in addresses:
            ipaddress.ip_interface(str(address))  # raises ValueError
        port = data.get("ssh_port", 22)
        if not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError("ssh_port must be a port number")
        return cls(str(data.get("serial", "")), tuple(str(m).lower() for m in macs),
                   tuple(str(a) for a in addresses), str(data.get("boot_mode", "")),
                   str(data.get("host_key_fingerprint", "")), str(data.get("node", "")), port)


@dataclass
class Expected:
    """What identifies one node: learned from its BMC (serial, MACs) and the inventory (address)."""

    serial: str = ""
    macs: frozenset[str] = frozenset()
    address: str | None = None


@dataclass
class CheckinDesk:
    """Expected nodes, their latest check-in, and the jobs waiting for one."""

    host_key_fingerprint: str
    bus: EventBus
    expected: dict[str, Expected] = field(default_factory=dict)
    arrived: dict[str, Checkin] = field(default_factory=dict)
    _waiters: dict[str, asyncio.Event] = field(default_factory=dict)

    def expect(self, node: str, *, serial: str = "", macs: tuple[str, ...] = (), address: str | None = None) -> None:
        self.expected[node] = Expected(serial, frozenset(m.lower() for m in macs), address)

    def forget(self, node: str) -> None:
        """Before a (re)boot: an older check-in says nothing about the coming one."""
        self.arrived.pop(node, None)
        self._waiter(node).clear()

    def match(self, checkin: Checkin) -> str | None:
        ips = {a.split("/")[0] for a in checkin.addresses}
        for name, want in self.expected.items():
            if want.serial and want.serial == checkin.serial:
                return name
            if want.macs & set(checkin.macs):
                return name
            if want.address and want.address in ips:
                return name
        return None

    def _waiter(self, node: str) -> asyncio.Event:
        return self._waiters.setdefault(node, asyncio.Event())

    async def wait(self, node: str) -> Checkin:
        await self._waiter(node).wait()
        return self.arrived[node]

    def receive(self, checkin: Checkin, remote: str) -> tuple[int, dict[str, Any]]:
        name = self.match(checkin)
        if name is None:
            self.bus.emit(Event("", EventKind.MESSAGE, f"ignored a check-in from an unknown machine at {remote} "
                                f"(serial {checkin.serial!r}, MACs {', '.join(checkin.macs) or 'none'})"))
            return 404, {"ack": False, "reason": "unknown machine"}
        if checkin.host_key_fingerprint != self.host_key_fingerprint:
            self.bus.emit(Event(name, EventKind.MESSAGE, f"refused a check-in from {remote}: host key "
                                f"{checkin.host_key_fingerprint} is not the pinned {self.host_key_fingerprint}"))
            return 403, {"ack": False, "reason": "host key is not the pinned one"}
        self.arrived[name] = checkin
        self._waiter(name).set()
        self.bus.emit(Event(name, EventKind.MESSAGE, f"checked in from {checkin.ssh_address} ({checkin.boot_mode})"))
        return 200, {"ack": True}


DESK = web.AppKey("checkin_desk", CheckinDesk)


async def handle_checkin(request: web.Request) -> web.Response:
    try:
        checkin = Checkin.parse(await request.json())
    except ValueError as err:  # json.JSONDecodeError is a ValueError too
        return web.json_response({"ack": False, "reason": f"bad check-in: {err}"}, status=400)
    status, body = request.app[DESK].receive(checkin, request.remote or "?")
    return web.json_response(body, status=status)
