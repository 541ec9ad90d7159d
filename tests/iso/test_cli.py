"""`pvcctl iso` on bad input: one line naming the problem, exit status 2, no traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iso.build import BuildReport
from iso.seed import Seed

PVCCTL = [sys.executable, "-c", "from pvcctl.cli import main; main()"]


def _pvcctl(*args: str, user: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PVCCTL, *args], capture_output=True, text=True, user=user,
                          cwd=Path(__file__).parents[2], timeout=60, check=False)


def test_bad_seed_file(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"controller_url": "http://x", "controller_key": "nope"}')
    result = _pvcctl("iso", "build", "--seed", str(seed), "-o", str(tmp_path / "x.iso"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "OpenSSH public key" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_base_iso_for_reseed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text('{"controller_url": "http://x", "controller_key": "ssh-ed25519 AAAA"}')
    result = _pvcctl("iso", "seed", str(tmp_path / "none.iso"), str(seed), "-o", str(tmp_path / "new.iso"))
    assert result.returncode == 2
    assert "pvcctl iso build" in result.stderr and "Traceback" not in result.stderr


def test_build_as_non_root_says_it_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from pvcctl.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(sys, "argv", ["pvcctl", "iso", "build", "--cache", str(tmp_path / "c"),
                                      "-o", str(tmp_path / "x.iso")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "must run as root" in err and err.count("\n") == 1
    assert not (tmp_path / "c").exists(), "nothing touched before the root check"


@pytest.mark.slow
def test_build_from_an_inventory_seeds_its_nodes_and_pins_the_key(live_iso: BuildReport, tmp_path: Path) -> None:
    inventory = tmp_path / "cluster.yml"
    text = (Path(__file__).parents[2] / "examples/cluster.yml").read_text()
    hv1 = '    bmc: {address: "https://10.100.1.1"}\n'
    assert hv1 in text
    inventory.write_text(text.replace(hv1, hv1 + '    install_network: {mac: "52:54:00:12:34:01", '
                                                 "address: 10.100.0.11/24, gateway: 10.100.0.254}\n", 1))
    out = tmp_path / "cluster.iso"
    result = subprocess.run([*PVCCTL, "iso", "build", str(inventory), "-o", str(out), "--cache",
                             str(Path(live_iso.iso).parent), "--json"], capture_output=True, text=True,
                            env={**os.environ, "PVC_BMC_PASSWORD": "x"}, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["host_key_fingerprint"] == live_iso.host_key_fingerprint
    assert Path(f"{out}.hostkey.pub").read_text().strip() == live_iso.host_key_public
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(out), "-extract", "/pvc/seed.json",
                    str(tmp_path / "seed.json")], capture_output=True, check=True)
    seed = Seed.load(tmp_path / "seed.json")
    assert seed.controller_url == "http://10.100.0.5:8740"
    assert [(n.name, n.macs, n.address) for n in seed.nodes] == [("hv1", ("52:54:00:12:34:01",), "10.100.0.11/24")]
