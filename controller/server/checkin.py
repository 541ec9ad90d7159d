"""The check-in endpoint: a live node says it booted, and where it is.

`POST /api/v1/checkin` with `{"serial", "macs": [...], "addresses": [...], "boot_mode",
"host_key_fingerprint": "SHA256:...", "node"}` (and optionally `"ssh_port"`, which the simulated
lab uses) is answered `200 {"ack": true}` when it matches a node of this run. The match is by the
system serial or a MAC that the node's BMC reported in preflight, or by the node's inventory
address; the `node` name the live system chose from the seed is never trusted on its own. Anything
else is ignored (404) and noted, and a check-in with a host key other than the pinned one is
refused (403).

Before any matching (controller/server/guard.py): past a burst of check-ins from one source address,
429; a body over 16 KiB, 413; a body that is not a flat check-in of the right types and sizes, 400
with a short reason; a source address that is not among the addresses the check-in claims, 403
(except from `trusted_sources`, the addresses a NAT puts in front of the nodes, e.g. QEMU's user
networking, where every node comes from 127.0.0.1).

Every check-in is told as an event: one that matched a node goes to that node's log (the attempt
that expects it: what checked in, from where, what matched, the host key accepted or refused);
one from an unknown machine is the run's own (node ""), so it lands in the run's log. A live
system repeats its check-in until acknowledged: the same story is told once, not every few seconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from controller.node.events import Event, EventBus, EventKind
from controller.server.guard import MAX_BODY, CheckinBody, CheckinRefused, RateLimiter, parse_body, same_address


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
    def parse(cls, raw: bytes) -> Checkin:
        """A check-in from its body; CheckinRefused (a ValueError) with a short reason."""
        return cls.of(parse_body(raw))

    @classmethod
    def of(cls, body: CheckinBody) -> Checkin:
        # the live system sends null for what it does not know (no seed entry, no serial): not "None"
        return cls(body.serial or "", tuple(m.lower().replace("-", ":") for m in body.macs), tuple(body.addresses),
                   body.boot_mode or "", body.host_key_fingerprint or "", body.node or "", body.ssh_port)


@dataclass
class Expected:
    """What identifies one node: learned from its BMC (serial, MACs) and the inventory (address)."""

    serial: str = ""
    macs: frozenset[str] = frozenset()
    address: str | None = None
    attempt: int = 0  # the node's attempt waiting for it: its check-in lines go to that attempt's log


UNKNOWN_NOTED = 1024  # distinct unknown check-ins remembered (so each is noted once), then forgotten
CANDIDATES_KEPT = 32  # distinct places a node's check-ins named since its boot (an impostor's among them)


@dataclass
class CheckinDesk:
    """Expected nodes, their check-ins, and the jobs waiting for one.

    A check-in is a hint, never an authority: anyone who can reach the controller can send one with a
    node's serial (the BMC reports it) and the pinned fingerprint (public). So each distinct place a
    node's check-ins name (address and port) is a candidate its job tries over SSH with the pinned host
    key; one that fails is rejected, as a possible impostor, and the job goes on waiting."""

    host_key_fingerprint: str
    bus: EventBus
    expected: dict[str, Expected] = field(default_factory=dict)
    arrived: dict[str, Checkin] = field(default_factory=dict)
    _waiters: dict[str, asyncio.Event] = field(default_factory=dict)
    _candidates: dict[str, list[tuple[Checkin, str]]] = field(default_factory=dict)  # (check-in, its source)
    _rejected: dict[str, dict[tuple[str, int], str]] = field(default_factory=dict)  # place -> why
    _boots: dict[str, int] = field(default_factory=dict)  # how often each node was forgotten (a new boot)
    _told: dict[str, str] = field(default_factory=dict)  # node -> the last check-in line in its log
    _unknown: set[str] = field(default_factory=set)  # unknown check-ins already noted in the run's log
    limiter: RateLimiter = field(default_factory=RateLimiter)
    trusted_sources: frozenset[str] = frozenset()  # a NAT's addresses: their check-ins' claims are not compared

    def expect(self, node: str, *, serial: str = "", macs: tuple[str, ...] = (), address: str | None = None,
               attempt: int = 0) -> None:
        self.expected[node] = Expected(serial, frozenset(m.lower() for m in macs), address, attempt)

    def forget(self, node: str) -> None:
        """Before a (re)boot: an older check-in says nothing about the coming one."""
        self.arrived.pop(node, None)
        self._told.pop(node, None)
        self._candidates.pop(node, None)
        self._rejected.pop(node, None)
        self._boots[node] = self._boots.get(node, 0) + 1
        self._waiter(node).set()  # a job iterating the candidates starts again from this boot's

    def match(self, checkin: Checkin) -> tuple[str, str] | None:
        """The node this check-in comes from, and what matched (serial, MACs, address), or None."""
        ips = {a.split("/")[0] for a in checkin.addresses}
        for name, want in self.expected.items():
            matched = []
            if want.serial and want.serial == checkin.serial:
                matched.append(f"serial {checkin.serial}")
            macs = sorted(want.macs & set(checkin.macs))
            if macs:
                matched.append(f"MAC{'s' if len(macs) > 1 else ''} {' '.join(macs)}")
            if want.address and want.address in ips:
                matched.append(f"address {want.address}")
            if matched:
                return name, ", ".join(matched)
        return None

    def _waiter(self, node: str) -> asyncio.Event:
        return self._waiters.setdefault(node, asyncio.Event())

    async def wait(self, node: str) -> Checkin:
        while node not in self.arrived:
            await self._waiter(node).wait()
            self._waiter(node).clear()
        return self.arrived[node]

    async def candidates(self, node: str) -> AsyncIterator[tuple[Checkin, str]]:
        """Each distinct place the node's check-ins name since its boot, with the source the check-in came
        from, as they come; the caller stops by cancelling."""
        tried, boot = 0, self._boots.get(node, 0)
        while True:
            if self._boots.get(node, 0) != boot:  # forgotten: a new boot's check-ins are new candidates
                tried, boot = 0, self._boots.get(node, 0)
            pending = self._candidates.get(node, [])
            if tried < len(pending):
                tried += 1
                yield pending[tried - 1]
                continue
            waiter = self._waiter(node)
            waiter.clear()
            await waiter.wait()

    def rejections(self, node: str) -> list[str]:
        """What was rejected for the node since its boot: 'ADDRESS:PORT (why)'."""
        return [f"{address}:{port} ({why})" for (address, port), why in self._rejected.get(node, {}).items()]

    def reject(self, node: str, checkin: Checkin, remote: str, why: str) -> None:
        """The place a check-in named did not prove to be the node's live system: not tried again this
        boot; told in the node's log and in the run's log, with the source, as a possible impostor."""
        self._rejected.setdefault(node, {})[(checkin.ssh_address, checkin.ssh_port)] = why
        message = (f"rejected a check-in as a possible impostor: it came from {remote} and named "
                   f"{checkin.ssh_address}:{checkin.ssh_port}, where {why}; still waiting for {node}'s live system")
        self._tell(node, message)
        self._tell_unknown(f"{node}: {message}")

    def receive(self, checkin: Checkin, remote: str) -> tuple[int, dict[str, Any]]:
        found = self.match(checkin)
        if found is None:
            self._tell_unknown(f"ignored a check-in from an unknown machine: {_described(checkin, remote)}; "
                               "no node of this run has its serial, a MAC or an address of it")
            return 404, {"ack": False, "reason": "unknown machine"}
        name, matched = found
        fingerprint = checkin.host_key_fingerprint or "(none)"
        if checkin.host_key_fingerprint != self.host_key_fingerprint:
            self._tell(name, f"refused a check-in: {_described(checkin, remote)}; matched by {matched}; its host "
                             f"key {fingerprint} is not the pinned {self.host_key_fingerprint}")
            return 403, {"ack": False, "reason": "host key is not the pinned one"}
        place = (checkin.ssh_address, checkin.ssh_port)
        known = self._candidates.setdefault(name, [])
        if place in self._rejected.get(name, {}):
            return 403, {"ack": False, "reason": "this place did not prove to be the node's live system"}
        if all((c.ssh_address, c.ssh_port) != place for c, _ in known):
            if len(known) >= CANDIDATES_KEPT:
                return 429, {"ack": False, "reason": "too many places claimed for this node"}
            known.append((checkin, remote))
        self.arrived[name] = checkin
        self._waiter(name).set()
        self._tell(name, f"checked in: {_described(checkin, remote)}; matched by {matched}; it reports host key "
                         f"{fingerprint}, the pinned one (SSH checks it next at "
                         f"{checkin.ssh_address}:{checkin.ssh_port})")
        return 200, {"ack": True}

    def _tell(self, node: str, message: str) -> None:
        """A line in the node's log (the attempt that expects it), unless it is the one told last."""
        if self._told.get(node) == message:
            return
        self._told[node] = message
        self.bus.emit(Event(node, EventKind.MESSAGE, message, phase="live", attempt=self.expected[node].attempt))

    def note(self, message: str) -> None:
        """A refusal before any matching, in the run's log (once per story, as for unknown machines)."""
        self._tell_unknown(message)

    def _tell_unknown(self, message: str) -> None:
        """A line in the run's log, once per machine, address and story."""
        if message in self._unknown:
            return
        if len(self._unknown) >= UNKNOWN_NOTED:
            self._unknown.clear()
        self._unknown.add(message)
        self.bus.emit(Event("", EventKind.MESSAGE, message, phase="live"))


def _described(checkin: Checkin, remote: str) -> str:
    """What checked in, and from where, as the live system said it."""
    return (f"serial {checkin.serial or '(none)'}, MACs {', '.join(checkin.macs) or '(none)'}, addresses "
            f"{', '.join(checkin.addresses)}, {checkin.boot_mode or 'unknown'} boot, named "
            f"{checkin.node or '(none)'} by the seed, from {remote}")


DESK = web.AppKey("checkin_desk", CheckinDesk)


async def handle_checkin(request: web.Request) -> web.Response:
    desk, remote = request.app[DESK], request.remote or "?"
    if not desk.limiter.allow(remote):
        return _refused(429, "too many check-ins from this address; try again in a few seconds")
    if (request.content_length or 0) > MAX_BODY:
        return _refused(413, f"body larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    try:
        checkin = Checkin.parse(raw)
    except CheckinRefused as err:
        return _refused(413 if len(raw) > MAX_BODY else 400, f"bad check-in: {err}")
    if remote not in desk.trusted_sources and not same_address(remote, checkin.addresses):
        desk.note(f"refused a check-in that claims addresses {', '.join(checkin.addresses)} but comes from "
                  f"{remote}: {_described(checkin, remote)}")
        return _refused(403, f"the check-in comes from {remote}, which is not among the addresses it claims")
    status, body = desk.receive(checkin, remote)
    return web.json_response(body, status=status)


def _refused(status: int, reason: str) -> web.Response:
    return web.json_response({"ack": False, "reason": reason}, status=status)
