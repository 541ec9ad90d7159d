"""`pvcctl iso` on bad input: one line naming the problem, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PVCCTL = [sys.executable, "-c", "from controller.cli import main; main()"]


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


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_build_as_non_root_says_it_needs_root(tmp_path: Path) -> None:
    tmp_path.chmod(0o777)
    result = _pvcctl("iso", "build", "--cache", str(tmp_path / "c"), "-o", str(tmp_path / "x.iso"), user=65534)
    assert result.returncode == 2, result.stderr
    assert "must run as root" in result.stderr and "Traceback" not in result.stderr
