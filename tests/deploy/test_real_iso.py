"""The simulated lab booting the real live ISO (built once per session by the ISO part), re-seeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.sim import SimLab
from tests.conftest import TEST_CACHE
from tests.deploy.conftest import Pvcctl, node_states, run_dir


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
