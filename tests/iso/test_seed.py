"""The seed: validation, JSON round trip and node matching (pure, fast)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iso.seed import Seed, SeedError, SeedNode, normalize_mac

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEFHI1HGoHcasy7wh4z7jRBFRwQdmzP7TKSddjpd9Hch controller"


def test_round_trip_keeps_every_field() -> None:
    seed = Seed("http://10.0.0.1:8080", KEY, (
        SeedNode("hv1", macs=("AA-BB-CC-00-11-22",), serial="S1", address="10.0.0.11/24", gateway="10.0.0.1",
                 vlan=100, dns=("10.0.0.2",), interface="eno1"),
        SeedNode("hv2", serial="S2"),
    ))
    again = Seed.from_json(seed.to_json())
    assert again == seed
    assert again.nodes[0].macs == ("aa:bb:cc:00:11:22",)


macs = st.lists(st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b)), min_size=1,
                max_size=3, unique=True)


@given(macs, st.integers(1, 4094) | st.none(), st.text("ABC123", min_size=1, max_size=8) | st.none())
def test_round_trip_of_generated_nodes(node_macs: list[str], vlan: int | None, serial: str | None) -> None:
    seed = Seed("https://ctl.example:8443/x", KEY, (SeedNode("n", macs=tuple(node_macs), serial=serial, vlan=vlan,
                                                             address="192.0.2.7/24"),))
    assert Seed.from_json(seed.to_json()) == seed


def test_mac_match_wins_over_serial_and_is_case_blind() -> None:
    by_serial = SeedNode("a", serial="XYZ")
    by_mac = SeedNode("b", macs=("52:54:00:00:00:02",))
    seed = Seed("http://c", KEY, (by_serial, by_mac))
    assert seed.match({"52:54:00:00:00:02"}, "XYZ") == by_mac
    assert seed.match({"52:54:00:00:00:09"}, "XYZ") == by_serial
    assert seed.match({"52:54:00:00:00:09"}, None) is None
    assert seed.match(set(), "other") is None


@pytest.mark.parametrize(("node", "words"), [
    (dict(name="a"), "MAC or the system serial"),
    (dict(name="a", macs=("zz:00:00:00:00:00",)), "not a MAC"),
    (dict(name="a", serial="s", vlan=0), "VLAN id"),
    (dict(name="a", serial="s", address="10.0.0.5"), "prefix length"),
    (dict(name="a", serial="s", address="10.0.0.0/24"), "network address"),
    (dict(name="a", serial="s", gateway="10.0.0.1"), "needs a static address"),
    (dict(name="a", serial="s", address="10.0.0.5/24", dns=("eight",)), "not an IP address"),
])
def test_bad_nodes_are_named(node: dict[str, object], words: str) -> None:
    with pytest.raises(SeedError, match=words):
        SeedNode(**node)  # type: ignore[arg-type]


@pytest.mark.parametrize(("text", "words"), [
    ("[]", "JSON object"), ("{", "not JSON"), ('{"controller_key": "x"}', "controller_url"),
    ('{"controller_url": "ftp://x", "controller_key": "ssh-ed25519 AAAA"}', "http"),
    ('{"controller_url": "http://x", "controller_key": "hello"}', "OpenSSH public key"),
    ('{"controller_url": "http://x", "controller_key": "ssh-ed25519 AAAA", "nodes": [{"name": "a", "mac": "x"}]}',
     "'mac' is not known"),
])
def test_bad_seed_files_are_named(text: str, words: str) -> None:
    with pytest.raises(SeedError, match=words):
        Seed.from_json(text)


def test_normalize_mac_forms() -> None:
    assert normalize_mac("AABBCCDDEEFF") == normalize_mac("aa-bb-cc-dd-ee-ff") == "aa:bb:cc:dd:ee:ff"
