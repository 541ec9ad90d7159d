from __future__ import annotations

from pathlib import Path

import pytest

# A valid three-node inventory; tests change one thing in it and read the exact message back.
# Its line numbers matter to those tests: add lines at the end only.
BASE = """\
version: 1
cluster:
  name: c1
  domain: c1.example.tld
controller:
  url: http://10.100.0.5:8740
defaults:
  bmc:
    username: root
    password: {env: TEST_BMC_PASSWORD}
  install:
    mirror: http://mirror.test/debian
    dns: [10.100.0.254]
  install_network:
    interface: eno1
networks:
  upstream:
    subnet: 10.100.0.0/23
    gateway: 10.100.0.254
    floating_ip: 10.100.0.250
    device: eno1
  cluster:
    subnet: 10.0.0.0/24
    floating_ip: 10.0.0.254
    device: eno2
  storage:
    subnet: 10.0.1.0/24
    floating_ip: 10.0.1.254
    device: eno3
nodes:
  - hostname: hv1
    coordinator: true
    bmc: {address: "https://10.100.1.1"}
  - hostname: hv2
    coordinator: true
    bmc: {address: "https://10.100.1.2"}
  - hostname: hv3
    coordinator: true
    bmc: {address: "https://10.100.1.3"}
"""


@pytest.fixture(autouse=True)
def bmc_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_BMC_PASSWORD", "s3cret-bmc")


@pytest.fixture
def write(tmp_path: Path):
    def write(text: str, name: str = "inventory.yml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
