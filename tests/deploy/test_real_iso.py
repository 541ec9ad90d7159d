"""The simulated lab booting the real live ISO (built once per session by the ISO part), re-seeded;
and `pvcctl deploy` building the ISO itself when the inventory names no controller.iso."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.sim import SimLab
from tests.conftest import TEST_CACHE
from tests.deploy.conftest import LabFactory, Pvcctl, node_states, run_dir


@pytest.mark.slow
async def test_deploy_with_the_real_live_iso(live_iso: object, tmp_path: Path, pvcctl: Pvcctl) -> None:
    from iso.keys import live_host_key

    key = live_host_key(TEST_CACHE / "iso" / "host-key")  # the key the build put on the ISO
    assert key.public_line.split()[:2] == str(live_iso.host_key_public).split()[:2]
    lab = await SimLab(2, tmp_path / "lab", base_iso=Path(str(live_iso.iso)),
                       live_key=key.private).start()
    try:
        result = await pvcctl.run("deploy", str(lab.inventory), timeout=300)
    finally:
        await lab.stop()
    assert result.code == 0, result.out + result.err
    assert node_states(lab) == {"hv1": "done", "hv2": "done"}
    assert (run_dir(lab) / "pvc-ansible" / "known_hosts").is_file()


def without_named_iso(inventory: Path, **install: str) -> Path:
    """The lab's inventory without controller.iso (so deploy builds the ISO), as a file beside it."""
    from ruamel.yaml import YAML

    yaml = YAML()
    doc = yaml.load(inventory)
    del doc["controller"]["iso"]
    doc["defaults"]["install"].update(install)
    out = inventory.with_name("build-the-iso.yml")  # beside it: the BMC password file is relative to it
    yaml.dump(doc, out)
    return out


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="an ISO build needs root")
async def test_a_failed_iso_build_is_one_line_and_touches_no_bmc(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on: debootstrap's first download is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lab = await make_lab(1)
    inventory = without_named_iso(lab.inventory, mirror=f"http://127.0.0.1:{port}/debian")
    result = await pvcctl.run("deploy", str(inventory), timeout=300)
    assert result.code == 1, result.out + result.err
    error = result.err.strip()
    assert "Traceback" not in error and len(error.splitlines()) == 1, error
    assert error.startswith("pvcctl: building the live ISO failed at debootstrap: debootstrap failed (exit 1): ")
    assert "full log: " in error and "name it in controller.iso" in error
    assert "building the live ISO" in result.out  # it said so before it started
    assert "no ISO to serve, no node touched" in (run_dir(lab) / "logs" / "run.log").read_text()
    assert lab.bmc("hv1").requests == 0
