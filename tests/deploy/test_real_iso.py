"""The simulated lab booting the real live ISO (built once per session by the ISO part), re-seeded;
and `pvcctl deploy` building the ISO itself when the inventory names no controller.iso."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from lab.sim import SimLab
from tests.conftest import TEST_CACHE
from tests.deploy.conftest import LabFactory, Pvcctl, journal_rows, node_states, run_dir


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


def seed_on(iso: Path, scratch: Path) -> str:
    out = scratch / f"{iso.name}.seed.json"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/pvc/seed.json", str(out)],
                   check=True, capture_output=True)
    return out.read_text()


@pytest.mark.slow
async def test_deploy_builds_the_live_iso_itself_reusing_the_cached_stages(
        live_iso: object, tmp_path: Path, pvcctl: Pvcctl) -> None:
    from inventory.load import load_inventory
    from inventory.state import controller_key
    from iso.inventory_seed import seed_for
    from iso.keys import live_host_key
    from iso.seed import Seed

    key = live_host_key(TEST_CACHE / "iso" / "host-key")  # the cache's live host key: deploy's build uses it
    assert key.public_line.split()[:2] == str(live_iso.host_key_public).split()[:2]
    lab = await SimLab(2, tmp_path / "lab", live_key=key.private).start()
    try:
        inventory = without_named_iso(lab.inventory)
        cluster = load_inventory(inventory)  # still a valid inventory
        assert cluster.controller.iso is None
        cluster_dir = cluster.controller.state_dir / cluster.name
        cluster_dir.mkdir(parents=True)
        # deploy's cache is the session's: every stage but the ISO (with this run's seed) is there
        (cluster_dir / "iso-cache").symlink_to(TEST_CACHE / "iso")
        started = time.monotonic()
        result = await pvcctl.run("deploy", str(inventory), timeout=600)
        seconds = time.monotonic() - started
    finally:
        await lab.stop()
    assert result.code == 0, result.out + result.err
    assert node_states(lab) == {"hv1": "done", "hv2": "done"}
    iso = cluster_dir / "pvc-live.iso"
    assert iso.is_file() and (run_dir(lab) / "pvc-ansible" / "known_hosts").is_file()
    assert Path(f"{iso}.hostkey.pub").read_text().split()[:2] == key.public_line.split()[:2]
    # it said what it was doing while it built, and only the ISO itself was made
    assert f"building the live ISO {iso} (the inventory names no controller.iso)" in result.out
    ((message, data),) = journal_rows(lab, "SELECT message, data FROM events WHERE message LIKE 'live ISO ready%'")
    stages = json.loads(data)["stages"]
    assert {name for name, stage in stages.items() if not stage["cached"]} == {"iso"}, message
    assert "live ISO ready" in (run_dir(lab) / "logs" / "run.log").read_text()
    # the machines booted that ISO: the seed they read from what they fetched is deploy's, not the lab's
    expected = seed_for(cluster, controller_key(cluster)[1])
    assert Seed.from_json(seed_on(iso, tmp_path)) == expected
    assert Seed.from_json(seed_on(lab.dir / "pvc-live.iso", tmp_path)) != expected
    for name in ("hv1", "hv2"):
        assert Seed.from_json((lab.nodes[name].home / "seed.json").read_text()) == expected
    print(f"deploy building the ISO from the cache: {seconds:.1f}s ({message})")


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
