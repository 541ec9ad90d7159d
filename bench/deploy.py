"""Simulated deploys of N nodes: wall time against the slowest single node, controller CPU and memory.

    .venv/bin/python bench/deploy.py [--sizes 10,100,250] [--step-delay 0.05] [--concurrency 0]

For each size it starts a simulated lab (emulated Redfish BMCs over HTTPS, simulated machines with
asyncssh live nodes running the real installer in simulated-disk mode) in this process, then runs
`pvcctl deploy` as its own process and measures that process alone (os.wait4):

- wall: the deploy process, start to exit (includes Python start-up and building the installer zipapp)
- ideal: the slowest single node's own time (sum of its phases, from the journal): the baseline a
  perfectly parallel controller would match; ratio = wall / ideal
- CPU s/node: the controller's user+system CPU seconds divided by N
- peak RSS: the controller's maximum resident memory

The lab's own CPU (BMC emulators, SSH servers, N installer processes) is not counted: on one machine
it competes with the controller for the same 2 cores, so the ratio is pessimistic for large N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.sim import SimLab

PVCCTL = str(Path(sys.executable).parent / "pvcctl")


def _deploy(inventory: Path, home: Path, concurrency: int) -> tuple[int, float, float, int]:
    """Run the deploy; (exit code, wall s, CPU s, peak RSS KiB) of that process alone."""
    env = {**os.environ, "PVCCTL_HOME": str(home)}
    args = [PVCCTL, "deploy", "--json", str(inventory)]
    if concurrency:
        args[2:2] = ["--concurrency", str(concurrency)]
    started = time.monotonic()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _slowest_node(lab: SimLab) -> tuple[float, int]:
    """The slowest node's own seconds (sum of its last attempt's phases), and how many nodes are done."""
    journal = sorted((lab.dir / "runs" / "simlab").glob("*/journal.sqlite"))[-1]
    with sqlite3.connect(journal) as db:
        per_node = db.execute("SELECT s.node, SUM(s.seconds) FROM steps s JOIN nodes n ON n.node = s.node "
                              "AND n.attempt = s.attempt GROUP BY s.node").fetchall()
        done = db.execute("SELECT COUNT(*) FROM nodes WHERE state = 'done'").fetchone()[0]
    return max(seconds for _, seconds in per_node), int(done)


async def bench(size: int, step_delay: float, concurrency: int, base: Path) -> dict[str, float]:
    directory = base / f"lab{size}"
    async with SimLab(size, directory, step_delay=step_delay) as lab:
        code, wall, cpu, rss = await asyncio.to_thread(_deploy, lab.inventory, base / "home", concurrency)
        ideal, done = _slowest_node(lab)
    shutil.rmtree(directory, ignore_errors=True)
    return {"nodes": size, "done": done, "exit": code, "wall": wall, "ideal": ideal, "ratio": wall / ideal,
            "cpu_per_node": cpu / size, "peak_rss_mib": rss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,250")
    parser.add_argument("--step-delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=0, help="installs at once (0 = all)")
    opts = parser.parse_args()
    print(f"{'nodes':>6} {'done':>5} {'exit':>4} {'wall s':>8} {'ideal s':>8} {'ratio':>6} "
          f"{'CPU s/node':>10} {'peak RSS MiB':>12}")
    with tempfile.TemporaryDirectory(prefix="pvcctl-bench-") as tmp:
        for size in (int(s) for s in opts.sizes.split(",")):
            r = asyncio.run(bench(size, opts.step_delay, opts.concurrency, Path(tmp)))
            print(f"{r['nodes']:>6.0f} {r['done']:>5.0f} {r['exit']:>4.0f} {r['wall']:>8.2f} {r['ideal']:>8.2f} "
                  f"{r['ratio']:>6.2f} {r['cpu_per_node']:>10.3f} {r['peak_rss_mib']:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
