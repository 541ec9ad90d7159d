"""`pvcctl validate` and `pvcctl inventory render` write only what they are asked to: a read-only copy
of examples/ is left exactly as it was (no runs/<cluster>/ with a controller key beside the inventory),
and rendering twice keeps the same secrets."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
PVCCTL = str(Path(sys.executable).with_name("pvcctl"))


def snapshot(root: Path) -> dict[str, tuple[int, float, bytes]]:
    return {str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_mtime, p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


def pvcctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PVCCTL, *args], capture_output=True, text=True, timeout=120, cwd=cwd,
                          env={**os.environ, "PVC_BMC_PASSWORD": "not-a-real-one"})


def test_validate_and_render_leave_a_read_only_examples_copy_untouched(tmp_path: Path) -> None:
    examples = tmp_path / "examples"
    shutil.copytree(REPO / "examples", examples)
    for path in [examples, *examples.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = snapshot(examples)
    work = tmp_path / "work"
    work.mkdir()

    done = pvcctl("validate", "--file-only", str(examples / "cluster.yml"), cwd=work)
    assert done.returncode == 0, done.stderr
    # with the controller's checks too: this machine is not the example's controller (exit 2, one line),
    # and checking its secrets and key wrote nothing either
    full = pvcctl("validate", str(examples / "cluster.yml"), cwd=work)
    assert full.returncode == 2 and "10.100.0.5 is not an address of this machine" in full.stderr
    first = pvcctl("inventory", "render", str(examples / "cluster.yml"), "-o", "out", cwd=work)
    assert first.returncode == 0, first.stderr
    assert "has no state yet" in first.stderr
    secrets = (work / "out" / "group_vars" / "cluster1" / "secrets.yml").read_bytes()
    again = pvcctl("inventory", "render", str(examples / "cluster.yml"), "-o", "out", cwd=work)
    assert again.returncode == 0, again.stderr

    assert snapshot(examples) == before
    assert sorted(p.name for p in work.iterdir()) == ["out"]  # and nothing in the working directory but -o
    assert (work / "out" / "group_vars" / "cluster1" / "secrets.yml").read_bytes() == secrets
    base = (work / "out" / "group_vars" / "cluster1" / "base.yml").read_text()
    assert "controller" not in base.split("admin_users:")[1].split("networks:")[0]  # no key no deploy made


def test_render_uses_the_state_a_deploy_left(tmp_path: Path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    state = tmp_path / "examples" / "runs" / "cluster1"
    state.mkdir(parents=True)  # as a deploy leaves it
    done = pvcctl("inventory", "render", str(tmp_path / "examples" / "cluster.yml"), "-o", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "has no state yet" not in done.stderr
    kept = YAML(typ="safe").load((state / "secrets.yml").read_text())
    rendered = YAML(typ="safe").load((tmp_path / "out" / "group_vars" / "cluster1" / "secrets.yml").read_text())
    assert {k: rendered[k] for k in kept} == kept
    assert (state / "controller_ed25519.pub").read_text().split()[1] in \
        (tmp_path / "out" / "group_vars" / "cluster1" / "base.yml").read_text()
