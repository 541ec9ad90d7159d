"""Shell completion as bash runs it: the script `pvcctl --show-completion bash` prints, sourced in a real
bash, completing a real command line (node names come from the inventory named on that line)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = REPO / "examples" / "cluster.yml"


@functools.cache
def bash_script() -> str:
    return subprocess.run([str(BIN / "pvcctl"), "--show-completion", "bash"], capture_output=True, text=True,
                          timeout=60, check=True, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}).stdout


def complete(line: str, cwd: Path = REPO) -> list[str]:
    """What bash offers for the last word of `line` (an empty last word when it ends in a space)."""
    words, script = line.split(" "), bash_script()
    program = (script + "\nCOMP_WORDS=(" + " ".join(f"'{w}'" for w in words) + ")\n"
               f"COMP_CWORD={len(words) - 1}\n_pvcctl_completion pvcctl\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    # no BMC password in the environment: completing node names must not need one
    env = {k: v for k, v in os.environ.items() if k != "PVC_BMC_PASSWORD"} | {"PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", program], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_bash_completes_commands_and_options() -> None:
    assert complete("pvcctl bmc p") == ["power"]
    assert set(complete("pvcctl inv")) == {"inventory"}
    assert "--yes" in complete("pvcctl bmc power off --y")


def test_bash_completes_node_names_from_the_inventory_on_the_line() -> None:
    assert complete(f"pvcctl bmc power off -i {EXAMPLE} --node ") == ["hv1", "hv2", "hv3"]
    assert complete(f"pvcctl bmc power off -i {EXAMPLE} -n hv1 -n hv") == ["hv2", "hv3"]
    assert complete(f"pvcctl deploy {EXAMPLE} --only hv1,") == ["hv1,hv2", "hv1,hv3"]
    assert complete("pvcctl bmc power off --node ") == []  # no inventory on the line: nothing to offer


def test_bash_completes_run_directories(tmp_path: Path) -> None:
    for run in ("20260101T000000", "20260102T000000"):
        (tmp_path / "runs" / "c1" / run).mkdir(parents=True)
        (tmp_path / "runs" / "c1" / run / "journal.sqlite").write_bytes(b"")
    (tmp_path / "runs" / "c1" / "not-a-run").mkdir()
    assert complete("pvcctl status --run ", cwd=tmp_path) == ["runs/c1/20260102T000000", "runs/c1/20260101T000000"]
