"""The plan contract: validation on the node side, round trips, disk hints and sizes, layout."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from installer import configure
from installer.layout import GIB, minimum_disk_size, partition_path, sgdisk_arguments, volumes
from installer.plan import DiskHint, Network, Plan, PlanError, parse_size

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx5dGVzdGtleWZvcnRoZWluc3RhbGxlcnRlc3RzMDAw a@b"


def data(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"hostname": "hv1.c.test", "disk": "largest", "image": "/i.squashfs", "ssh_keys": [KEY],
                            "network": {"interface": "eno1"}}
    base.update(changes)
    return base


def test_round_trip_through_json_keeps_every_field() -> None:
    plan = Plan.from_dict(data(packages=["htop"], boot_mode="both", root_password_hash="$6$salt$hash",
                               network={"interface": "bond0", "bond_mode": "802.3ad", "bond_slaves": ["eno1", "eno2"],
                                        "vlan": 70, "address": "10.0.0.5/24", "gateway": "10.0.0.1",
                                        "dns": ["10.0.0.1"]}))
    again = Plan.from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again == plan
    assert "$6$" not in repr(plan)  # hashes stay out of logs and tracebacks


@pytest.mark.parametrize(("changes", "field"), [
    ({"hostname": "HV1.c.test"}, "hostname"),
    ({"method": "debootstrap"}, "mirror"),
    ({"method": "image", "image": None}, "image"),
    ({"packages": ["ok", "not ok"]}, "packages[1]"),
    ({"deploy_password_hash": "plain"}, "deploy_password_hash"),
    ({"boot_mode": "legacy"}, "boot_mode"),
    ({"network": {"interface": "eno1", "address": "10.0.0.5"}}, "network.address"),
    ({"network": {"interface": "eno1", "gateway": "10.0.0.1"}}, "network.gateway"),
    ({"network": {"mac": "52:54:00:zz:00:01"}}, "network.mac"),
    ({"network": {"interface": "bond0", "bond_mode": "802.3ad"}}, "network.bond_mode"),
    ({"version": 2}, "version"),
])
def test_wrong_field_is_named(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(PlanError) as err:
        Plan.from_dict(data(**changes))
    assert err.value.field == field


@given(st.sampled_from(["smallest", "largest", "/dev/sda", "/dev/disk/by-id/nvme-X_1", "serial:ABC 123",
                        "wwn:0x5000c500a1b2c3d4", "model:PERC H730P", "model:MZQL2:960G", "model:A:B:1.92T"]))
def test_disk_hint_text_round_trips(text: str) -> None:
    hint = DiskHint.parse(text)
    assert DiskHint.parse(str(hint)) == hint


def test_sizes_are_decimal_unless_binary() -> None:
    assert parse_size("480G") == 480 * 10**9 and parse_size("1.92T") == 1_920_000_000_000
    assert parse_size("447GiB") == 447 * GIB
    with pytest.raises(ValueError, match="not a size"):
        parse_size("big")


def test_volume_sizes_follow_pvc_installer() -> None:
    assert [v.size // GIB for v in volumes(100 * GIB)] == [32, 8, 32, 16]
    assert [v.size // GIB for v in volumes(100 * GIB - 1)] == [8, 4, 8, 8]
    assert 29 * GIB < minimum_disk_size() < 30 * GIB


def test_partition_table_and_names() -> None:
    args = " ".join(sgdisk_arguments())
    assert "--new=1:0:+32768K --typecode=1:ef02" in args and "--new=2:0:+65536K --typecode=2:ef00" in args
    assert "--new=3:0:+950272K --typecode=3:8300" in args and "--new=4:0:0 --typecode=4:8e00" in args
    assert partition_path("/dev/sda", 4) == "/dev/sda4" and partition_path("/dev/nvme0n1", 2) == "/dev/nvme0n1p2"


def test_ifupdown_static_vlan_and_bond() -> None:
    net = Network(interface="bond0", bond_mode="802.3ad", bond_slaves=("eno1", "eno2"), vlan=70,
                  address="10.0.0.5/24", gateway="10.0.0.1")
    name, text = configure.interfaces(net, "bond0")
    assert name == "bond0.70"
    assert "iface eno1 inet manual" in text and "bond-slaves eno1 eno2" in text and "bond-mode 802.3ad" in text
    assert "iface bond0.70 inet static\n    vlan_raw_device bond0\n    address 10.0.0.5\n    netmask 255.255.255.0" \
           "\n    gateway 10.0.0.1" in text
    name, text = configure.interfaces(Network(interface="ens4"), "ens4")
    assert name == "ens4" and "auto ens4\niface ens4 inet dhcp" in text


def test_xfs_gets_no_ext4_only_options() -> None:
    assert configure.data_fs_options("xfs", discard=True) == "defaults,discard"
    assert configure.data_fs_options("ext4", discard=False) == "defaults,errors=remount-ro"


def test_security_archive_beside_the_mirror() -> None:
    assert configure.security_mirror("http://mirror.example/debian/") == "http://mirror.example/debian-security"
