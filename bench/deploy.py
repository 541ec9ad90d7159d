"""Simulated deploys of N nodes: wall time against the slowest single node, controller CPU and memory;
and against the same install done with Ansible (community.general's Redfish modules and ssh).

    .venv/bin/python bench/deploy.py [--sizes 10,100,250] [--step-delay 0.05] [--concurrency 0]
    .venv/bin/python bench/deploy.py --sizes 1000 --concurrency 250
    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/deploy.py --ansible --sizes 100

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

`--ansible` adds the baseline: the operator's way without pvcctl, bench/ansible/install.yml run by
ansible-playbook with forks=100 on a fresh lab of the same size (each node's SSH on a fixed port,
since Ansible cannot learn it from a check-in), its ISO served by a plain aiohttp file server here.
Its plans, installer zipapp and inventory are made before the clock starts. It is measured as the
deploy is (os.wait4 of ansible-playbook: its forks and module processes are waited for, so counted),
and `vs ansible` is its wall time over pvcctl's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.sim import SimLab, serve_stand_in

MAX_INVENTORY_NODES = 250  # PVC node ids end at 255

PVCCTL = str(Path(sys.executable).parent / "pvcctl")


def _measure(args: list[str], env: dict[str, str], output: Path | None = None) -> tuple[int, float, float, int]:
    """Run a command; (exit code, wall s, CPU s, peak RSS KiB) of it and the children it waited for."""
    started = time.monotonic()
    with open(output or os.devnull, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def _deploy(inventory: Path, concurrency: int, synthetic: bool) -> tuple[int, float, float, int]:
    """Run the deploy; (exit code, wall s, CPU s, peak RSS KiB) of that process alone."""
    limit = ["--concurrency", str(concurrency)] if concurrency else []
    args = [PVCCTL, "deploy", "--json", *limit, str(inventory)]
    if synthetic:  # no valid inventory holds it: the same engine, given the cluster model
        args = [sys.executable, __file__, *limit, "--controller-for", str(inventory)]
    return _measure(args, dict(os.environ))


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
        code, wall, cpu, rss = await asyncio.to_thread(_deploy, lab.inventory, concurrency,
                                                       synthetic or size > MAX_INVENTORY_NODES)
        ideal, done = _slowest_node(lab)
    shutil.rmtree(directory, ignore_errors=True)
    return {"nodes": size, "done": done, "exit": code, "wall": wall, "ideal": ideal, "ratio": wall / ideal,
            "cpu_per_node": cpu / size, "peak_rss_mib": rss / 1024}


# -- the baseline: Ansible, the way an operator would do it without pvcctl --------------------------------

PLAYBOOK = Path(__file__).resolve().parent / "ansible" / "install.yml"
ANSIBLE_SSH_PORT = 2222  # every simulated node on its own loopback address, all on this port
RECAP = re.compile(r"^(\S+)\s+: ok=\d+\s+changed=\d+\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)


def _ansible_ready() -> str | None:
    """Why the baseline cannot run, or None."""
    playbook = Path(sys.executable).parent / "ansible-playbook"
    if not playbook.is_file():
        return "ansible-playbook is not in this venv"
    found = subprocess.run([str(playbook.parent / "ansible-doc"), "--list", "community.general"],
                           capture_output=True, text=True)
    if "community.general.redfish_command" not in found.stdout:
        return "the community.general collection (its Redfish modules) is not installed"
    return None


def _ansible_files(lab: SimLab, work: Path, control: Path) -> Path:
    """Everything the playbook needs, made before the clock starts: plans, installer, known_hosts,
    the inventory and ansible.cfg (ssh's control sockets in `control`, a short path: a unix socket's
    is at most 107 bytes). Returns the ansible.cfg path."""
    from controller.live import build_installer_zipapp
    from controller.plans import plan_for
    from inventory.load import load_inventory
    from inventory.state import controller_key

    cluster = load_inventory(lab.inventory)
    controller, public = controller_key(cluster)
    (work / "plans").mkdir(parents=True, exist_ok=True)
    live_key = (lab.dir / "pvc-live.iso.hostkey.pub").read_text().strip()
    known, hosts = [], {}
    for node in cluster.nodes:
        plan = work / "plans" / f"{node.hostname}.json"
        plan.write_text(json.dumps(plan_for(node, public).to_dict()))
        machine = lab.nodes[node.hostname]
        known.append(f"[{machine.address}]:{ANSIBLE_SSH_PORT} {live_key}")
        # `home`: the login's home on the simulated machine (root's on a real live system: /root)
        hosts[node.hostname] = {"ansible_host": machine.address, "ansible_port": ANSIBLE_SSH_PORT,
                                "home": str(machine.home), "plan": str(plan),
                                "fqdn": node.fqdn, "bmc_host": node.bmc.address.split("://")[-1].rstrip("/")}
    (work / "live_known_hosts").write_text("\n".join(known) + "\n")
    first = cluster.nodes[0]
    password_file = lab.dir / "bmc" / "password"
    group = {
        "ansible_private_key_file": str(controller), "ansible_python_interpreter": "/usr/bin/python3",
        "bmc_user": first.bmc.username, "bmc_password": f"{{{{ lookup('file', '{password_file}') }}}}",
        "bmc_ca": str(first.bmc.ca_bundle), "iso_url": f"{lab.controller_url}/pvc-live.iso",
        "installer": str(build_installer_zipapp(work / "installer.pyz")),
        "live_known_hosts": str(work / "live_known_hosts"), "collect_dir": str(work / "collected"),
        "step_delay": lab.step_delay, "deploy_user": first.install.deploy_user,
    }
    (work / "inventory.json").write_text(json.dumps({"nodes": {"hosts": hosts, "vars": group}}, indent=1))
    control.mkdir(parents=True, exist_ok=True)
    config = work / "ansible.cfg"
    config.write_text(f"""[defaults]
inventory = {work / "inventory.json"}
forks = 100
host_key_checking = True
retry_files_enabled = False
timeout = 30
[ssh_connection]
pipelining = True
control_path_dir = {control}
""")
    return config


async def bench_ansible(size: int, step_delay: float, base: Path) -> dict[str, float]:
    directory = base / f"ansible{size}"
    async with SimLab(size, directory, step_delay=step_delay, ssh_port=ANSIBLE_SSH_PORT) as lab:
        config = _ansible_files(lab, directory / "ansible", base / "cp")
        runner = await serve_stand_in(lab)  # the ISO, served plainly; check-ins answered
        env = {**os.environ, "ANSIBLE_CONFIG": str(config), "ANSIBLE_NOCOLOR": "1"}
        log = directory / "ansible.log"
        try:
            code, wall, cpu, rss = await asyncio.to_thread(
                _measure, [str(Path(sys.executable).parent / "ansible-playbook"), str(PLAYBOOK)], env, log)
        finally:
            await runner.cleanup()
    recap = RECAP.findall(log.read_text())
    done = sum(1 for _, unreachable, failed in recap if unreachable == "0" and failed == "0")
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        print(f"ansible-playbook exited {code}; the end of its output:\n{tail}", file=sys.stderr)
    shutil.rmtree(directory, ignore_errors=True)
    return {"nodes": size, "done": done, "exit": code, "wall": wall, "cpu_per_node": cpu / size,
            "peak_rss_mib": rss / 1024}


def _controller_for(inventory: Path, concurrency: int) -> int:
    """The deploy engine on a cluster larger than an inventory may hold: the lab's first node, loaded
    and checked from the inventory, copied once per machine with its own name, id, BMC and address."""
    import dataclasses
    import ipaddress

    from ruamel.yaml import YAML

    from controller.run import DeployOptions, run_deploy
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
    parser.add_argument("--ansible", action="store_true",
                        help="also run the baseline: the same install with Ansible (forks=100) on a fresh lab")
    opts = parser.parse_args()
    if opts.controller_for:
        sys.exit(_controller_for(opts.controller_for, opts.concurrency))
    if opts.ansible and (why := _ansible_ready()):
        sys.exit(f"bench/deploy.py --ansible: {why}; install it with: .venv/bin/pip install -e '.[bench]'")
    print(f"{'':>6} {'':>5} {'':>4} {'pvcctl':>8} {'':>8} {'':>6} {'':>10} {'':>12}"
          + (f" {'ansible':>8} {'':>5} {'':>10} {'':>12} {'vs':>7}" if opts.ansible else ""))
    print(f"{'nodes':>6} {'done':>5} {'exit':>4} {'wall s':>8} {'ideal s':>8} {'ratio':>6} "
          f"{'CPU s/node':>10} {'peak RSS MiB':>12}"
          + (f" {'wall s':>8} {'done':>5} {'CPU s/node':>10} {'peak RSS MiB':>12} {'ansible':>7}" if opts.ansible
             else ""))
    with tempfile.TemporaryDirectory(prefix="pvcctl-bench-") as tmp:
        for size in (int(s) for s in opts.sizes.split(",")):
            r = asyncio.run(bench(size, opts.step_delay, opts.concurrency, Path(tmp), opts.synthetic))
            line = (f"{r['nodes']:>6.0f} {r['done']:>5.0f} {r['exit']:>4.0f} {r['wall']:>8.2f} {r['ideal']:>8.2f} "
                    f"{r['ratio']:>6.2f} {r['cpu_per_node']:>10.3f} {r['peak_rss_mib']:>12.1f}")
            if opts.ansible:
                a = asyncio.run(bench_ansible(size, opts.step_delay, Path(tmp)))
                line += (f" {a['wall']:>8.2f} {a['done']:>5.0f} {a['cpu_per_node']:>10.3f} {a['peak_rss_mib']:>12.1f} "
                         f"{a['wall'] / r['wall']:>6.1f}x")
            print(line, flush=True)


if __name__ == "__main__":
    main()
