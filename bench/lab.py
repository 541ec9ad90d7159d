"""Benchmark: the virtual lab, one QEMU machine against three at once, phase by phase, in one run.

    sudo .venv/bin/python bench/lab.py [--firmware uefi|bios] [--cpus N]

It builds (or finds cached) the live ISO's stages in /var/cache/pvcctl/iso here, where the mirror
is reachable, then starts one lab of three QEMU machines (`pvcctl lab up --qemu 3`, in a network
namespace of its own) and deploys it three times: `pvcctl deploy --only hv1` (one machine alone),
`pvcctl deploy --reinstall` (all three at once, hv1 reinstalled over its first install), and one
machine alone again, so the host's own noise between the runs shows. Same lab, same ISO, same QEMU
settings for all.

Printed side by side: each deploy phase's seconds (from the run's journal: the one machine's, and
the slowest and mean of the three), the deploy's whole wall time, the ratio three to one; how long
each machine's BMC took to get the ISO (lab/qemu.py's cd-fetch.log); the installer's slowest steps
(from each node's report.json); and where the host's CPU went during each deploy (sampled from /proc
twice a second): the QEMU processes' CPU seconds, everything else's (this deploy and lab, and any
other work on the machine), idle, and the time the hypervisor under this VM took (steal). Under
TCG a machine is CPU-bound, so its time follows the CPU it gets. The named baseline, measured
before the lab and again after it: the same three-to-one ratio for a plain CPU-bound Python loop
on this machine, the floor for any three CPU-bound machines here. Raw figures:
/tmp/pvcctl-bench-lab.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PVCCTL = str(Path(sys.executable).parent / "pvcctl")
CACHE = Path("/var/cache/pvcctl/iso")
NODES = ("hv1", "hv2", "hv3")


TICK = os.sysconf("SC_CLK_TCK")


def _host_cpu() -> tuple[float, float, float]:
    """(busy, idle, steal) CPU seconds of the whole host since boot. Steal is the time this VM's vCPUs
    were ready to run and the hypervisor under it ran something else: the host's own noise."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle, steal = fields[3] + fields[4], fields[7]
    return (sum(fields[:8]) - idle - steal) / TICK, idle / TICK, steal / TICK


class CpuSampler:
    """The CPU seconds of the QEMU processes running `lab_dir`'s disks, and of the host, meanwhile."""

    def __init__(self, lab_dir: Path):
        self.marker = str(lab_dir).encode()
        self.seen: dict[int, float] = {}
        self.before: dict[int, float] = {}  # a machine left running by the last deploy: only its CPU from now
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
                if not cmdline.startswith(b"qemu-system") or self.marker not in cmdline:
                    continue
                stat = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[int(proc.name)] = (int(stat[11]) + int(stat[12])) / TICK

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> CpuSampler:
        self.host_start = _host_cpu()
        self._sample()
        self.before = dict(self.seen)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        busy, idle, steal = _host_cpu()
        self.host_busy, self.host_idle = busy - self.host_start[0], idle - self.host_start[1]
        self.host_steal = steal - self.host_start[2]
        self.qemu = sum(seconds - self.before.get(pid, 0.0) for pid, seconds in self.seen.items())


def deploy(netns: str, inventory: Path, *extra: str) -> dict:
    """One `pvcctl deploy` in the lab's namespace: its wall time and each node's phase seconds."""
    started = time.monotonic()
    with CpuSampler(inventory.parent) as cpu:
        out = subprocess.run(["ip", "netns", "exec", netns, PVCCTL, "deploy", str(inventory), *extra],
                             capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    wall = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"deploy {' '.join(extra)} failed ({out.returncode}):\n"
                         f"{out.stdout[-3000:]}{out.stderr[-3000:]}")
    run = sorted((inventory.parent / "runs" / "vlab").glob("*/journal.sqlite"))[-1].parent
    with sqlite3.connect(run / "journal.sqlite") as db:
        rows = db.execute("SELECT node, phase, seconds FROM steps ORDER BY time").fetchall()
    phases: dict[str, dict[str, float]] = {}
    for node, phase, seconds in rows:
        phases.setdefault(node, {})[phase] = phases.get(node, {}).get(phase, 0.0) + (seconds or 0.0)
    steps = {}
    for report in run.glob("logs/*/report.json"):
        steps[report.parent.name.split(".")[0]] = json.loads(report.read_text()).get("step_seconds", {})
    return {"wall": wall, "phases": phases, "install_steps": steps,
            "cpu": {"qemu": cpu.qemu, "other": cpu.host_busy - cpu.qemu, "idle": cpu.host_idle,
                    "steal": cpu.host_steal}}


SPIN = "x = 0\nfor i in range(25_000_000):\n    x += i * i % 7\n"


def cpu_floor(rounds: int = 3) -> dict[str, float]:
    """The named baseline: this machine's own three-to-one ratio for plain CPU-bound work (one Python
    loop alone, then three at once; the best of `rounds` each). On two ideal cores it is 1.5; where the
    two cores slow each other down (shared caches, SMT siblings or a busy host under this VM) it is
    more, and no three CPU-bound machines can do better than it."""
    def wall(count: int) -> float:
        start = time.monotonic()
        for proc in [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(count)]:
            proc.wait()
        return time.monotonic() - start

    one = min(wall(1) for _ in range(rounds))
    three = min(wall(3) for _ in range(rounds))
    return {"one": one, "three": three, "ratio": three / one}


def fetch_times(lab: Path) -> dict[str, list[str]]:
    return {box.name: box.joinpath("cd-fetch.log").read_text().splitlines()
            for box in sorted((lab / "machines").iterdir()) if box.joinpath("cd-fetch.log").exists()}


def table(one: dict, three: dict) -> list[str]:
    order = list(one["phases"]["hv1"])
    lines = [f"{'phase':<10} {'1 machine':>10} {'3 at once: max':>15} {'mean':>7} {'ratio':>6}"]
    for phase in order:
        alone = one["phases"]["hv1"].get(phase, 0.0)
        each = [three["phases"].get(node, {}).get(phase, 0.0) for node in NODES]
        ratio = f"{max(each) / alone:6.2f}" if alone >= 1 else "     -"
        lines.append(f"{phase:<10} {alone:9.1f}s {max(each):14.1f}s {sum(each) / 3:6.1f}s {ratio}")
    lines.append(f"{'whole':<10} {one['wall']:9.1f}s {three['wall']:14.1f}s {'':>7} {three['wall'] / one['wall']:6.2f}")
    return lines


def slowest(steps: dict[str, float], n: int = 4) -> str:
    return ", ".join(f"{k} {v:.0f} s" for k, v in sorted(steps.items(), key=lambda kv: -kv[1])[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firmware", default="uefi", choices=("uefi", "bios"))
    parser.add_argument("--cpus", type=int, default=0, help="vCPUs per machine (default: the lab's)")
    args = parser.parse_args()
    subprocess.run([PVCCTL, "iso", "build", "-o", "/tmp/pvcctl-bench-lab-base.iso", "--cache", str(CACHE)],
                   check=True, stdout=subprocess.DEVNULL)
    floor = cpu_floor()  # before the lab starts, and again after it: the host under this VM may change
    netns = f"pvcbench{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    with tempfile.TemporaryDirectory(prefix="pvcctl-bench-lab-") as tmp:
        lab_dir = Path(tmp) / "vlab"
        lab = subprocess.Popen(["ip", "netns", "exec", netns, PVCCTL, "lab", "up", "--qemu", "3", "--dir",
                                str(lab_dir), "--iso-cache", str(CACHE), "--firmware", args.firmware,
                                "--cpus", str(args.cpus)], stdout=subprocess.PIPE, text=True)
        try:
            assert lab.stdout is not None
            up = lab.stdout.readline()
            if "its inventory:" not in up:
                raise SystemExit(f"the lab did not start: {up}")
            inventory = lab_dir / "inventory.yml"
            one = deploy(netns, inventory, "--only", "hv1")
            one_fetch = fetch_times(lab_dir)
            three = deploy(netns, inventory, "--reinstall")
            fetches = fetch_times(lab_dir)
            again = deploy(netns, inventory, "--only", "hv1", "--reinstall")  # the host's noise, bracketed
        finally:
            lab.send_signal(signal.SIGTERM)
            lab.wait(120)
            subprocess.run(["ip", "netns", "del", netns], check=False)
    floor_after = cpu_floor()
    results = {"settings": up.strip(), "cpu_floor": floor, "cpu_floor_after": floor_after, "one": one,
               "three": three, "one_again": again, "fetch_one": one_fetch, "fetch": fetches}
    Path("/tmp/pvcctl-bench-lab.json").write_text(json.dumps(results, indent=2))
    print(up.split(";")[0])
    print("\n".join(table(one, three)))
    ratio = three["wall"] / one["wall"]
    print(f"three machines at once take {ratio:.2f}x the time of one "
          f"({three['wall']:.0f} s against {one['wall']:.0f} s)")
    print(f"one machine again after the three: {again['wall']:.0f} s ({three['wall'] / again['wall']:.2f}x); "
          f"against the mean of both: {2 * three['wall'] / (one['wall'] + again['wall']):.2f}x")
    print(f"baseline, this machine's plain CPU-bound work (a Python loop), three at once against one: "
          f"{floor['ratio']:.2f}x ({floor['three']:.1f} s against {floor['one']:.1f} s; 1.5 on two ideal cores); "
          f"the lab against it: {ratio / floor['ratio']:.2f}; measured again after the lab: "
          f"{floor_after['ratio']:.2f}x")
    for name, run in (("1 machine", one), ("3 at once", three), ("1 machine again", again)):
        cpu = run["cpu"]
        print(f"CPU during {name}: QEMU {cpu['qemu']:.0f} s ({cpu['qemu'] / run['wall']:.2f} cores), everything "
              f"else {cpu['other']:.0f} s ({cpu['other'] / run['wall']:.2f} cores), idle {cpu['idle']:.0f} s, "
              f"stolen by the hypervisor {cpu['steal']:.0f} s")
    for name, lines in fetches.items():
        print(f"ISO to {name}'s BMC: {'; '.join(line.split(' ', 1)[1] for line in lines)}")
    print(f"install steps, 1 machine: {slowest(one['install_steps'].get('hv1', {}))}")
    for node in NODES:
        print(f"install steps, {node} of 3: {slowest(three['install_steps'].get(node, {}))}")
    print("raw figures: /tmp/pvcctl-bench-lab.json")


if __name__ == "__main__":
    main()
