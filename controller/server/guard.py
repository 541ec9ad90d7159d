"""What the check-in endpoint lets in: a bounded, schema-checked body, from a source that is among the
addresses it claims, at a bounded rate per source.

Anyone on the install network can POST a check-in, so its body is hostile until checked: at most
`MAX_BODY` bytes, JSON nested at most `MAX_DEPTH` deep (checked before parsing: a deeply nested body
would exhaust the parser's recursion), and then `CheckinBody`: strict types (`"ssh_port": true` is
not a port), bounded strings and lists, MAC and address syntax. A refusal is a short reason for a
400. `RateLimiter` answers 429 past a burst per source address; it remembers `sources` addresses at
most, the least recently seen forgotten first.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

MAX_BODY = 16 * 1024  # a check-in with 64 MACs and 64 addresses is under 6 KiB
MAX_DEPTH = 4  # the object, a list, (a spare level): a check-in is flat
MAX_ITEMS = 64

_Text = Annotated[str, StringConstraints(max_length=128, pattern=r"^[\x20-\x7e]*$")]
_Mac = Annotated[str, StringConstraints(pattern=r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5,19}$")]
_Address = Annotated[str, StringConstraints(max_length=64)]


class CheckinRefused(ValueError):
    """A check-in body that is not let in; str() is the short reason."""


class CheckinBody(BaseModel):
    """The check-in as the live system sends it (iso/live/checkin.py); nothing else is accepted."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    serial: _Text | None = None
    macs: list[_Mac] = Field(default_factory=list, max_length=MAX_ITEMS)
    addresses: list[_Address] = Field(min_length=1, max_length=MAX_ITEMS)
    boot_mode: Annotated[str, StringConstraints(max_length=16, pattern=r"^[a-z]*$")] | None = None
    host_key_fingerprint: _Text | None = None
    node: Annotated[str, StringConstraints(max_length=63, pattern=r"^[A-Za-z0-9._-]*$")] | None = None
    ssh_port: int = Field(22, ge=1, le=65535)  # strict: a bool is not an int here

    @field_validator("addresses")
    @classmethod
    def _interfaces(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            try:
                ipaddress.ip_interface(address)
            except ValueError:
                raise ValueError(f"{address[:64]!r} is not an IP address (with an optional /prefix)") from None
        return addresses


def parse_body(raw: bytes) -> CheckinBody:
    """The body as a CheckinBody, or CheckinRefused with a short reason."""
    if len(raw) > MAX_BODY:
        raise CheckinRefused(f"body larger than {MAX_BODY} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckinRefused("body is not UTF-8") from None
    if _depth(text) > MAX_DEPTH:
        raise CheckinRefused(f"JSON nested deeper than {MAX_DEPTH} levels")
    try:
        data: Any = json.loads(text)
    except ValueError as err:
        raise CheckinRefused(f"not JSON: {err.msg} at character {err.pos}" if isinstance(err, json.JSONDecodeError)
                             else "not JSON") from None
    if not isinstance(data, dict):
        raise CheckinRefused("a check-in is a JSON object")
    try:
        return CheckinBody.model_validate(data)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise CheckinRefused(f"{where}: {first['msg']}"[:200]) from None


def _depth(text: str) -> int:
    """How deep the JSON's arrays and objects nest (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def same_address(remote: str, claimed: tuple[str, ...]) -> bool:
    """Whether the connection's source is one of the addresses the check-in claims."""
    try:
        source = ipaddress.ip_address(remote.split("%")[0])
    except ValueError:
        return False
    if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped is not None:
        source = source.ipv4_mapped
    return any(ipaddress.ip_interface(a).ip == source for a in claimed)


@dataclass(frozen=True)
class RateLimit:
    """Check-ins per source address: `burst` at once, then `per_second`; `sources` remembered at most.
    A live system checks in every 5 s until acknowledged (the simulated lab every 0.5 s)."""

    burst: float = 10.0
    per_second: float = 2.0
    sources: int = 4096


class RateLimiter:
    """A token bucket per source address, in a bounded LRU (see the module docstring)."""

    def __init__(self, limit: RateLimit | None = None):
        self.limit = limit or RateLimit()
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # source -> (tokens, when)

    def allow(self, source: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, when = self._buckets.pop(source, (self.limit.burst, now))
        tokens = min(self.limit.burst, tokens + (now - when) * self.limit.per_second)
        allowed = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > self.limit.sources:
            self._buckets.popitem(last=False)
        return allowed

    def __len__(self) -> int:
        return len(self._buckets)
