"""The live system's check-in client against a real HTTP server on the loopback."""

from __future__ import annotations

import urllib.error

import pytest

from iso.live.checkin import checkin_payload, post_checkin
from tests.iso.vm import CheckinServer


def test_post_is_acknowledged_only_by_ack_true() -> None:
    payload = {"serial": "S", "macs": ["52:54:00:00:00:01"], "addresses": [], "boot_mode": "bios",
               "host_key_fingerprint": "SHA256:x", "node": None}
    with CheckinServer(refusals=1) as server:
        with pytest.raises(urllib.error.HTTPError):  # the 503 refusal
            post_checkin(f"http://127.0.0.1:{server.port}", payload)
        assert post_checkin(f"http://127.0.0.1:{server.port}/", payload) is True
    assert server.received == [payload, payload]


def test_payload_has_the_contract_fields() -> None:
    payload = checkin_payload("hv1")
    assert set(payload) == {"serial", "macs", "addresses", "boot_mode", "host_key_fingerprint", "node"}
    assert payload["node"] == "hv1"
    assert payload["boot_mode"] in ("uefi", "bios")
    assert all(mac == mac.lower() and mac.count(":") == 5 for mac in payload["macs"])
