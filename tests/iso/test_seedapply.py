"""The live system's network files from the seed, and its view of the machine (pure, fast)."""

from __future__ import annotations

from pathlib import Path

from iso.live.seedapply import DHCP_FILE, network_files
from iso.live.sysinfo import physical_links, system_serial
from iso.seed import SeedNode

LINKS = {"eno1": "52:54:00:00:00:01", "eno2": "52:54:00:00:00:02"}


def test_no_node_means_dhcp_on_every_ethernet_link() -> None:
    files = network_files(None, LINKS)
    assert list(files) == [DHCP_FILE]
    assert "DHCP=yes" in files[DHCP_FILE] and "Type=ether" in files[DHCP_FILE]


def test_static_entry_goes_on_the_link_with_the_nodes_mac() -> None:
    node = SeedNode("hv1", macs=("52:54:00:00:00:02",), address="10.0.0.5/24", gateway="10.0.0.1",
                    dns=("10.0.0.2", "10.0.0.3"))
    files = network_files(node, LINKS)
    assert list(files) == ["10-pvc-eno2.network"]
    text = files["10-pvc-eno2.network"]
    assert "MACAddress=52:54:00:00:00:02" in text
    assert "Address=10.0.0.5/24" in text and "Gateway=10.0.0.1" in text
    assert "DNS=10.0.0.2\nDNS=10.0.0.3" in text
    assert "DHCP" not in text


def test_vlan_entry_makes_a_vlan_on_the_link() -> None:
    node = SeedNode("hv1", macs=("52:54:00:00:00:01",), address="10.1.0.5/24", vlan=42)
    files = network_files(node, LINKS)
    assert "VLAN=vlan42" in files["10-pvc-eno1.network"]
    assert "\nAddress=" not in files["10-pvc-eno1.network"]
    assert "Id=42" in files["10-pvc-vlan42.netdev"]
    assert "Address=10.1.0.5/24" in files["10-pvc-vlan42.network"]


def test_named_interface_and_missing_links_fall_back() -> None:
    node = SeedNode("hv1", serial="S", address="10.0.0.5/24", interface="eno1")
    assert "Name=eno1" in network_files(node, LINKS)["10-pvc-eno1.network"]
    gone = SeedNode("hv1", serial="S", address="10.0.0.5/24", interface="eno9")
    assert list(network_files(gone, LINKS)) == [DHCP_FILE]
    named_elsewhere = SeedNode("hv1", macs=("52:54:00:00:00:02",), address="10.0.0.5/24", interface="eno9")
    assert "MACAddress=52:54:00:00:00:02" in network_files(named_elsewhere, LINKS)["10-pvc-eno2.network"]
    dhcp_node = SeedNode("hv1", macs=("52:54:00:00:00:01",))
    assert list(network_files(dhcp_node, LINKS)) == [DHCP_FILE]


def _link(sys_net: Path, name: str, mac: str, kind: str = "1", device: bool = True) -> None:
    link = sys_net / name
    link.mkdir()
    (link / "type").write_text(kind + "\n")
    (link / "address").write_text(mac + "\n")
    if device:
        (link / "device").mkdir()


def test_physical_links_skip_loopback_virtual_and_non_ethernet(tmp_path: Path) -> None:
    _link(tmp_path, "lo", "00:00:00:00:00:00", kind="772", device=False)
    _link(tmp_path, "eno1", "52:54:00:AA:00:01")
    _link(tmp_path, "br0", "52:54:00:aa:00:09", device=False)
    _link(tmp_path, "ib0", "80:00:00:00:00:01", kind="32")
    assert physical_links(tmp_path) == {"eno1": "52:54:00:aa:00:01"}


def test_serial_skips_placeholders(tmp_path: Path) -> None:
    (tmp_path / "product_serial").write_text("To Be Filled By O.E.M.\n")
    (tmp_path / "board_serial").write_text("BRD42\n")
    assert system_serial(tmp_path) == "BRD42"
    assert system_serial(tmp_path / "missing") is None
