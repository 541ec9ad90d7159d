"""Hostile input files: a link to /dev/zero, a FIFO, an alias bomb, a 2 MiB file. Each is refused at once,
in one line naming the file and what to do, exit 2, no traceback; the seed and the plan likewise (issue 12)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from installer.__main__ import load_plan
from installer.plan import PlanError
from inventory.load import check_inventory
from iso.seed import Seed, SeedError
from tests.inventory.test_validate import run_cli


def alias_bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        lines.append(f"a{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refused_quickly(path: Path) -> str:
    started = time.monotonic()
    done = run_cli("validate", str(path))
    assert time.monotonic() - started < 10  # Python's start-up included; nothing is read past the limit
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{path}:1:1: ")
    return line


def test_link_to_dev_zero_is_refused_not_read(tmp_path: Path) -> None:
    link = tmp_path / "inventory.yml"
    link.symlink_to("/dev/zero")
    line = refused_quickly(link)
    assert "is a device, pipe or socket, not a regular file; give the path of the inventory file itself" in line


def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "inventory.yml"
    os.mkfifo(fifo)
    assert "not a regular file" in refused_quickly(fifo)


def test_two_mib_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "inventory.yml"
    big.write_text("# padding\n" * (2 * 1024 * 1024 // 10))
    line = refused_quickly(big)
    assert "is larger than 1024 KiB, more than any inventory needs; check that this is the inventory file" in line


def test_alias_bomb_is_refused_within_a_second(tmp_path: Path) -> None:
    bomb = tmp_path / "inventory.yml"
    bomb.write_text(alias_bomb())
    started = time.monotonic()
    cluster, problems = check_inventory(bomb)
    assert time.monotonic() - started < 1.0
    assert cluster is None and len(problems) == 1
    assert "more than 100000 values once aliases (*name) are expanded" in problems[0].message
    assert "aliases" in refused_quickly(bomb)


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    small = tmp_path / "inventory.yml"
    small.write_text(alias_bomb(3))  # 729 values: a normal use of anchors
    _, problems = check_inventory(small)
    assert problems and "aliases" not in problems[0].message  # refused for its content, not its size


def test_recursive_alias_neither_hangs_nor_crashes(tmp_path: Path) -> None:
    loop = tmp_path / "inventory.yml"
    loop.write_text("a: &a [*a]\n")
    done = run_cli("validate", str(loop))
    assert done.returncode == 2 and "Traceback" not in done.stderr


@pytest.mark.parametrize("kind", ["dev-zero", "big"])
def test_seed_and_plan_have_the_same_limits(tmp_path: Path, kind: str) -> None:
    for name in ("seed.json", "plan.json"):
        path = tmp_path / name
        if kind == "dev-zero":
            path.symlink_to("/dev/zero")
        else:
            path.write_text(json.dumps({"padding": "x" * (2 * 1024 * 1024)}))
    with pytest.raises(SeedError) as seed:
        Seed.load(tmp_path / "seed.json")
    with pytest.raises(PlanError) as plan:
        load_plan(tmp_path / "plan.json")
    expected = "not a regular file" if kind == "dev-zero" else "is larger than 1024 KiB"
    for err, what in ((seed.value, "seed"), (plan.value, "plan")):
        text = str(err)
        assert expected in text and str(tmp_path / f"{what}.json") in text and what in text and "\n" not in text
