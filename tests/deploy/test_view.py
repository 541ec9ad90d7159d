"""The terminal's views are pure functions of a snapshot: rendered at 60, 80 and 120 columns, nothing wraps,
the columns that do not fit are dropped in order of importance, and the cluster line counts and estimates."""

from __future__ import annotations

import pytest
from rich.console import Console

from controller.view import cluster_line, eta, failure_lines, progress_table, summary_table

NOW = 1_000_000.0
LONG = "installing the base system: unpacking the root image onto /dev/disk/by-id/nvme-SAMSUNG-MZ1L2960HCJR-00A07"


def _node(name: str, state: str, phase: str = "", **more: object) -> dict[str, object]:
    base: dict[str, object] = {"node": name, "state": state, "phase": phase or state, "attempt": 1, "percent": 0,
                               "message": "", "error": "", "log": "", "started": NOW - 300, "finished": None,
                               "phase_seconds": {}, "phase_started": None, "timeline": [], "disk": ""}
    base.update(more)
    return base


SNAPSHOT = [
    _node("hv1", "done", "verify", phase_seconds={"preflight": 2.0, "media": 3.0, "boot": 5.0, "live": 40.0,
                                                   "install": 90.0, "collect": 1.0, "finalize": 4.0, "verify": 30.0},
          finished=NOW - 10),
    _node("hv2", "install", percent=40, message=LONG, phase_started=NOW - 30,
          phase_seconds={"preflight": 2.0, "media": 3.0, "boot": 5.0, "live": 40.0}),
    _node("hv3", "failed", "media", error="BMC https://10.100.0.13: virtual media insert refused: " + LONG,
          log="/var/lib/pvcctl/runs/c1/20261202-070000/logs/hv3.1.log"),
    _node("hv4", "live", phase_started=NOW - 850, message="waiting for its check-in"),
    _node("hv5", "pending", started=None),
]


def render(renderable: object, width: int) -> list[str]:
    console = Console(width=width, record=True, force_terminal=False, color_system=None)
    console.print(renderable)
    return console.export_text().rstrip("\n").splitlines()


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_live_view_fits_every_width_without_wrapping(width: int) -> None:
    lines = render(progress_table("c1", SNAPSHOT, now=NOW, width=width, deadlines={"live": 900}), width)
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    assert len(lines) == 1 + 1 + len(SNAPSHOT)  # the cluster line, the header, one line per node: nothing wraps
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"hv1", "hv2", "hv3", "hv4", "hv5"}
    assert "…" in rows["hv2"]  # the long message cut with an ellipsis, on its one line
    assert "install" in rows["hv2"] and "failed" in rows["hv3"] and "BMC https://10.100.0.13" in rows["hv3"]
    header = lines[1]
    assert ("deadline" in header) == (width >= 120) and ("attempt" in header) == (width >= 80)
    if width >= 120:
        assert "0:50 left" in rows["hv4"]  # 850 s of a 900 s live deadline: shown when near
        assert "5:00" in rows["hv2"]  # time since the node began


def test_the_cluster_line_counts_and_estimates() -> None:
    line = cluster_line("c1", SNAPSHOT, NOW).plain
    assert line.startswith("c1: 1 done · 1 failed · 2 running · 1 waiting · ")
    assert "5:00 elapsed" in line
    # hv2 is 30 s into install (90 s measured), then collect, finalize, verify: 60 + 1 + 4 + 30 = 95 s; hv5 has
    # all to do: 2 + 3 + 5 + 40 + 90 + 1 + 4 + 30 = 175 s, the longest
    assert eta(SNAPSHOT, NOW) == pytest.approx(175.0) and "ETA 2:55" in line
    assert eta([_node("a", "install")], NOW) is None  # nothing measured yet: no guess


@pytest.mark.parametrize("width", [80, 120])
def test_the_summary_fits_and_keeps_the_log_path_whole(width: int) -> None:
    lines = render(summary_table("c1", SNAPSHOT, width=width), width)
    assert all(len(line) <= width for line in lines), "\n".join(lines)
    assert any("hv3" in line and "failed" in line for line in lines)
    assert ("preflight" in "\n".join(lines)) == (width >= 120)  # per-phase seconds when they fit, else the total
    assert "/var/lib/pvcctl/runs/c1/20261202-070000/logs/hv3.1.log" in "\n".join(failure_lines(SNAPSHOT))
