"""The check-in endpoint against hostile bodies and sources, with real HTTP requests (issue 12)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from controller.server.guard import RateLimit, RateLimiter
from tests.server.test_server import FINGERPRINT, Controller, post_body, post_checkin, told

GOOD = {"serial": "S1", "macs": ["52:54:00:00:00:01"], "addresses": ["127.2.0.1/8"], "boot_mode": "uefi",
        "host_key_fingerprint": FINGERPRINT, "node": "hv1", "ssh_port": 2222}


@pytest.fixture
async def ctl(tmp_path: Path) -> AsyncIterator[Controller]:
    async with Controller(tmp_path, None) as controller:
        controller.desk.expect("hv1", serial="S1", macs=("52:54:00:00:00:01",))
        yield controller


@pytest.mark.parametrize(("fields", "reason"), [
    ({"ssh_port": True}, "ssh_port: Input should be a valid integer"),
    ({"ssh_port": 0}, "ssh_port: Input should be greater than or equal to 1"),
    ({"ssh_port": 65536}, "ssh_port: Input should be less than or equal to 65535"),
    ({"ssh_port": "22"}, "ssh_port: Input should be a valid integer"),
    ({"serial": 12345}, "serial: Input should be a valid string"),
    ({"serial": "S" * 129}, "serial: String should have at most 128 characters"),
    ({"macs": ["52:54:00:00:00"]}, "macs.0: String should match pattern"),
    ({"macs": "52:54:00:00:00:01"}, "macs: Input should be a valid list"),
    ({"addresses": []}, "addresses: List should have at least 1 item"),
    ({"addresses": ["127.2.0.1/8"] * 65}, "addresses: List should have at most 64 items"),
    ({"addresses": ["not-an-address"]}, "addresses: Value error, 'not-an-address' is not an IP address"),
    ({"addresses": ["127.2.0.1/99"]}, "is not an IP address"),
    ({"node": "hv1; rm -rf /"}, "node: String should match pattern"),
    ({"extra": {"a": 1}}, "extra: Extra inputs are not permitted"),
    ({"serial": [[["deep"]]]}, "serial: Input should be a valid string"),
])
async def test_bad_bodies_are_400_with_a_short_reason(ctl: Controller, fields: dict, reason: str) -> None:
    status, body = await post_checkin(ctl.url, source="127.2.0.1", **fields)
    assert status == 400 and body["ack"] is False
    assert body["reason"].startswith("bad check-in: ") and reason in body["reason"] and len(body["reason"]) < 250
    assert ctl.desk.arrived == {}


async def test_deeply_nested_json_is_a_400_not_a_500(ctl: Controller) -> None:
    for raw in (b"[" * 8000 + b"]" * 8000, b'{"serial": ' + b"[" * 4000 + b"]" * 4000 + b"}"):
        status, body = await post_body(ctl.url, data=raw)
        assert status == 400 and "nested deeper than 4 levels" in body["reason"]
    status, body = await post_body(ctl.url, data=b'{"serial": "[[[[[[[[[[", "addresses": ["127.2.0.1/8"]}')
    assert status == 404  # brackets in a string are not nesting: a well-formed check-in of no node


async def test_not_json_and_not_an_object(ctl: Controller) -> None:
    for raw, reason in ((b"{not json", "not JSON"), (b"[1, 2]", "a check-in is a JSON object"),
                        (b"\xff\xfe", "not UTF-8")):
        status, body = await post_body(ctl.url, data=raw)
        assert status == 400 and reason in body["reason"]


async def test_large_body_is_413(ctl: Controller) -> None:
    status, body = await post_body(ctl.url, GOOD | {"serial": "x" * 20000})
    assert status == 413 and "16384 bytes" in body["reason"]


async def test_source_not_among_the_claimed_addresses_is_refused(ctl: Controller) -> None:
    # A machine that checks in for another: the serial matches hv1, the address is not its own.
    status, body = await post_body(ctl.url, GOOD | {"addresses": ["127.3.0.1/8"]}, source="127.2.0.1")
    assert status == 403 and "comes from 127.2.0.1" in body["reason"]
    assert ctl.desk.arrived == {}
    ((node, _, message),) = told(ctl)
    assert node == "" and "claims addresses 127.3.0.1/8 but comes from 127.2.0.1" in message
    status, _ = await post_body(ctl.url, GOOD | {"addresses": ["127.3.0.1/8", "127.2.0.1/8"]}, source="127.2.0.1")
    assert status == 200  # any of its addresses will do


async def test_trusted_sources_are_a_nat_in_front_of_the_nodes(ctl: Controller) -> None:
    ctl.desk.trusted_sources = frozenset({"127.0.0.1"})  # QEMU user networking: every node from 127.0.0.1
    status, _ = await post_body(ctl.url, GOOD | {"addresses": ["10.0.2.15/24"]}, source="127.0.0.1")
    assert status == 200 and ctl.desk.arrived["hv1"].ssh_address == "10.0.2.15"


async def test_rate_limit_per_source(ctl: Controller) -> None:
    statuses = [(await post_checkin(ctl.url, source="127.2.0.1"))[0] for _ in range(14)]
    assert statuses[:10] == [200] * 10 and 429 in statuses[10:]
    status, body = await post_checkin(ctl.url, source="127.2.0.1")
    assert status == 429 and "too many check-ins" in body["reason"]
    other = {"serial": "S2", "macs": [], "addresses": ["127.2.0.2/8"]}
    assert (await post_body(ctl.url, other, source="127.2.0.2"))[0] == 404  # another source is not limited


def test_rate_limiter_memory_is_bounded_and_tokens_come_back() -> None:
    limiter = RateLimiter(RateLimit(burst=2, per_second=1.0, sources=100))
    now = time.monotonic()
    for i in range(10000):
        limiter.allow(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", now)
    assert len(limiter) == 100
    assert [limiter.allow("10.9.9.9", now) for _ in range(3)] == [True, True, False]
    assert limiter.allow("10.9.9.9", now + 1.0)  # a second later: one more
