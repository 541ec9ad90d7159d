"""Simulated deploys of N nodes: wall time against the slowest single node, controller CPU and memory.

    .venv/bin/python bench/deploy.py [--sizes 10,100,250] [--step-delay 0.05] [--concurrency 0]
    .venv/bin/python bench/deploy.py --sizes 1000 --concurrency 250

Above 250 nodes no valid inventory exists (PVC node ids end at 255), so the bench builds the cluster
model from the lab's first node and hands it to the same engine (`DeployOptions.cluster`); limit the
installs at once there (`--concurrency`), or N simulated installers share this machine's memory.

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

MAX_INVENTORY_NODES = 250  # PVC node ids end at 255

PVCCTL = str(Path(sys.executable).parent / "pvcctl")


def _deploy(inventory: Path, home: Path, concurrency: int, synthetic: bool) -> tuple[int, float, float, int]:
    """Run the deploy; (exit code, wall s, CPU s, peak RSS KiB) of that process alone."""
    env = {**os.environ, "PVCCTL_HOME": str(home)}
    limit = ["--concurrency", str(concurrency)] if concurrency else []
    args = [PVCCTL, "deploy", "--json", *limit, str(inventory)]
    if synthetic:  # no valid inventory holds it: the same engine, given the cluster model
        args = [sys.executable, __file__, *limit, "--controller-for", str(inventory)]
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


async def bench(size: int, step_delay: float, concurrency: int, base: Path, synthetic: bool) -> dict[str, float]:
    directory = base / f"lab{size}"
    async with SimLab(size, directory, step_delay=step_delay) as lab:
        code, wall, cpu, rss = await asyncio.to_thread(_deploy, lab.inventory, base / "home", concurrency,
                                                       synthetic or size > MAX_INVENTORY_NODES)
        ideal, done = _slowest_node(lab)
    shutil.rmtree(directory, ignore_errors=True)
    return {"nodes": size, "done": done, "exit": code, "wall": wall, "ideal": ideal, "ratio": wall / ideal,
            "cpu_per_node": cpu / size, "peak_rss_mib": rss / 1024}


def _controller_for(inventory: Path, concurrency: int) -> int:
    """The deploy engine on a cluster larger than an inventory may hold: the lab's first node, loaded
    and checked from the inventory, copied once per machine with its own name, id, BMC and address."""
    import dataclasses
    import ipaddress

    from ruamel.yaml import YAML

    from controller.scheduler import DeployOptions, run_deploy
    from inventory.load import load_inventory

    yaml = YAML()
    doc = yaml.load(inventory.read_text())
    entries = doc["nodes"]
    doc["nodes"] = entries[:1]
    template_path = inventory.with_name("template.yml")
    with template_path.open("w") as out:
        yaml.dump(doc, out)
    cluster = load_inventory(template_path)
    first = cluster.nodes[0]
    nodes = []
    for i, entry in enumerate(entries, 1):
        upstream = f"127.2.{i >> 8}.{i & 255}"
        name = entry["hostname"]
        network = dataclasses.replace(first.install_network, address=ipaddress.ip_interface(f"{upstream}/16"))
        nodes.append(dataclasses.replace(
            first, hostname=name, node_id=i, coordinator=i <= 3, fqdn=f"{name}.{cluster.domain}",
            bmc=dataclasses.replace(first.bmc, address=entry["bmc"]["address"]), install_network=network,
            addresses={"upstream": upstream, "cluster": f"10.250.{i >> 8}.{i & 255}",
                       "storage": f"10.251.{i >> 8}.{i & 255}"}))
    cluster = dataclasses.replace(cluster, nodes=tuple(nodes))
    options = DeployOptions(inventory, concurrency=concurrency if concurrency else -1, json=True, cluster=cluster)
    return asyncio.run(run_deploy(options))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--controller-for", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--synthetic", action="store_true",
                        help="build the cluster model here (automatic above 250 nodes), not from the inventory")
    parser.add_argument("--sizes", default="10,100,250")
    parser.add_argument("--step-delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=0, help="installs at once (0 = all)")
    opts = parser.parse_args()
    if opts.controller_for:
        sys.exit(_controller_for(opts.controller_for, opts.concurrency))
    print(f"{'nodes':>6} {'done':>5} {'exit':>4} {'wall s':>8} {'ideal s':>8} {'ratio':>6} "
          f"{'CPU s/node':>10} {'peak RSS MiB':>12}")
    with tempfile.TemporaryDirectory(prefix="pvcctl-bench-") as tmp:
        for size in (int(s) for s in opts.sizes.split(",")):
            r = asyncio.run(bench(size, opts.step_delay, opts.concurrency, Path(tmp), opts.synthetic))
            print(f"{r['nodes']:>6.0f} {r['done']:>5.0f} {r['exit']:>4.0f} {r['wall']:>8.2f} {r['ideal']:>8.2f} "
                  f"{r['ratio']:>6.2f} {r['cpu_per_node']:>10.3f} {r['peak_rss_mib']:>12.1f}", flush=True)


if __name__ == "__main__":
    main()
