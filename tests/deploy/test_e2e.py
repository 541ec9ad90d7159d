"""`pvcctl deploy` end to end on the simulated lab: emulated Redfish BMCs over HTTPS, simulated
machines that boot the served ISO into real asyncssh live nodes running the real installer (in
simulated-disk mode), and pvcctl as a real process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import aiohttp
import asyncssh

from tests.deploy.conftest import (
    LabFactory,
    Pvcctl,
    installs_started,
    journal_rows,
    node_states,
    run_dir,
    serving,
    until,
)

PHASES = ["preflight", "media", "boot", "live", "inspect", "install", "collect", "finalize", "verify"]


async def test_five_nodes_from_lab_up_to_pvc_ansible_inventory(pvcctl: Pvcctl, tmp_path: Path) -> None:
    lab_proc = await pvcctl.start("lab", "up", "--sim", "5", "--dir", str(tmp_path / "lab"), "--step-delay", "0.02")
    try:
        assert lab_proc.stdout is not None
        line = (await asyncio.wait_for(lab_proc.stdout.readline(), 60)).decode()
        inventory = Path(line.rsplit(": ", 1)[1].strip())
        assert inventory.is_file(), line
        result = await pvcctl.run("deploy", str(inventory))
    finally:
        os.killpg(lab_proc.pid, signal.SIGINT)
        await asyncio.wait_for(lab_proc.wait(), 30)
    assert result.code == 0, result.out + result.err
    run = str(sorted((tmp_path / "lab" / "runs" / "simlab").glob("*/journal.sqlite"))[-1].parent)
    out = Path(run) / "pvc-ansible"
    assert f"pvc-ansible inventory written to {out}" in result.out
    assert f"cp -r {out}/. . && ansible-playbook -i hosts -l simlab -e do_bootstrap=yes pvc.yml" in result.out
    hosts = (out / "hosts").read_text()
    known = (out / "known_hosts").read_text().splitlines()
    for n in range(1, 6):
        assert f"hv{n}.sim.pvc.test ansible_host=127.2.0.{n}" in hosts
        report = json.loads((Path(run) / "logs" / f"hv{n}.1" / "report.json").read_text())
        key = " ".join(report["ssh_host_keys"][0].split()[:2])  # known_hosts drops the comment
        assert f"hv{n}.sim.pvc.test,hv{n},127.2.0.{n} {key}" in known
        assert (Path(run) / "logs" / f"hv{n}.1" / "install.log").stat().st_size > 0
        log = (Path(run) / "logs" / f"hv{n}.1.log").read_text()
        assert "install" in log
        # the restart to disk, announced before it is done: in this node's log, and once on the terminal
        restarts = [line for line in log.splitlines() if "[finalize] message: " in line and "force restart" in line]
        assert len(restarts) == 1 and f"hv{n}: BMC https://" in restarts[0], log
        bmc = restarts[0].split("BMC ", 1)[1].removesuffix(": force restart")
        assert all(bmc not in other.read_text() for other in (Path(run) / "logs").glob("hv*.1.log")
                   if other.name != f"hv{n}.1.log")
        assert result.out.count(f"hv{n}: BMC {bmc}: force restart") == 1  # (finalize; boot found it off)
    status = await pvcctl.run("status", str(inventory), "--json")
    nodes = json.loads(status.out)["nodes"]
    assert {n["node"]: (n["state"], n["attempt"]) for n in nodes} == {f"hv{n}": ("done", 1) for n in range(1, 6)}
    assert all(sorted(n["phase_seconds"]) == sorted(PHASES) for n in nodes)
    # the dashboard URL with the run's token, said once on the terminal and kept only in the run's token file
    token = (Path(run) / "token").read_text().strip()
    assert result.out.count("dashboard: http://127.0.0.1:") == 1 and f"/?token={token}" in result.out
    stored = [p for p in Path(run).rglob("*") if p.is_file() and p.name != "token"]
    assert not [p for p in stored if token.encode() in p.read_bytes()]
    # the ISO's unguessable path reached the BMCs only: the journal and logs name the file, not the path
    events = journal_rows_of(Path(run), "SELECT message || data FROM events WHERE message || data LIKE '%/iso/%'")
    assert events and all("/iso/<secret>/" in text for (text,) in events), events


def journal_rows_of(run: Path, query: str) -> list[tuple[str]]:
    import sqlite3

    with sqlite3.connect(run / "journal.sqlite") as db:
        return db.execute(query).fetchall()


async def test_a_dead_bmc_fails_its_node_only_then_retry_finishes_it(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(5, deploy={"deadlines": {"preflight": 8}})
    lab.bmc("hv3").faults.error_rate = 1.0  # every request answered 503, for good
    first = await pvcctl.run("deploy", str(lab.inventory))
    assert first.code == 1, first.out + first.err
    states = node_states(lab)
    assert states == {"hv1": "done", "hv2": "done", "hv3": "failed", "hv4": "done", "hv5": "done"}
    assert "not every node is done: no pvc-ansible inventory written" in first.out
    assert "hv3: failed (attempt 1): BMC https://127.0.1.3" in first.out
    assert not (run_dir(lab) / "pvc-ansible").exists()
    assert lab.nodes["hv3"].machine.boots == []  # nothing was done to it
    boots_before = {n: len(lab.nodes[n].machine.boots) for n in ("hv1", "hv2", "hv4", "hv5")}

    lab.bmc("hv3").faults.error_rate = 0.0
    boots = len(lab.nodes["hv1"].machine.boots)
    refused = await pvcctl.run("retry", "hv1", "hv3", "-i", str(lab.inventory))  # hv1 is done: not wiped unasked
    assert refused.code == 2 and "hv1: installed already by run" in refused.err and "--reinstall" in refused.err
    assert len(refused.err.splitlines()) == 1 and node_states(lab)["hv3"] == "failed"
    assert len(lab.nodes["hv1"].machine.boots) == boots and lab.nodes["hv3"].machine.boots == []
    second = await pvcctl.run("retry", "hv3", "-i", str(lab.inventory))
    assert second.code == 0, second.out + second.err
    assert node_states(lab) == dict.fromkeys(("hv1", "hv2", "hv3", "hv4", "hv5"), "done")
    hosts = (run_dir(lab) / "pvc-ansible" / "hosts").read_text()
    assert all(f"hv{n}.sim.pvc.test" in hosts for n in range(1, 6))
    assert {n: len(lab.nodes[n].machine.boots) for n in boots_before} == boots_before  # the others untouched
    attempts = dict(journal_rows(lab, "SELECT node, attempt FROM nodes"))
    assert attempts["hv3"] == 2 and attempts["hv1"] == 1


async def test_sigkill_during_installs_then_resume_reinstalls_nothing(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(4, step_delay=0.3)
    lab.nodes["hv1"].step_delay = 0.0  # finishes while the others are still installing
    deploy = await pvcctl.start("deploy", str(lab.inventory))

    def ready() -> bool:
        states = node_states(lab)
        return states.get("hv1") == "done" and all(states.get(f"hv{n}") == "install" for n in (2, 3, 4)) and all(
            installs_started(lab, f"hv{n}") for n in (2, 3, 4))

    await until(ready, 60, "hv1 done and the others installing")
    os.killpg(deploy.pid, signal.SIGKILL)
    await deploy.wait()
    hv1_boots = len(lab.nodes["hv1"].machine.boots)

    resumed = await pvcctl.run("deploy", "--resume", str(lab.inventory))
    assert resumed.code == 0, resumed.out + resumed.err
    assert node_states(lab) == dict.fromkeys(("hv1", "hv2", "hv3", "hv4"), "done")
    for n in range(1, 5):
        assert len(installs_started(lab, f"hv{n}")) == 1  # reattached, never started again
    assert len(lab.nodes["hv1"].machine.boots) == hv1_boots  # finished node skipped
    assert "hv1" not in {line.split(":")[0] for line in resumed.out.splitlines() if "(attempt" in line}
    reattached = journal_rows(lab, "SELECT DISTINCT node FROM events WHERE message LIKE 'reattaching%'")
    assert sorted(r[0] for r in reattached) == ["hv2", "hv3", "hv4"]
    assert (run_dir(lab) / "pvc-ansible" / "known_hosts").is_file()


async def test_dropped_ssh_link_during_install_is_reattached(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, step_delay=0.3)
    deploy = asyncio.create_task(pvcctl.run("deploy", str(lab.inventory)))
    progress = lab.nodes["hv1"].home / "pvcctl"
    await until(lambda: any(p.stat().st_size > 0 for p in progress.glob("*/progress.jsonl")), 60, "hv1 installing")
    for _ in range(2):
        assert lab.nodes["hv1"].connections, "the controller should be following the install"
        lab.nodes["hv1"].drop_links()
        await asyncio.sleep(1.0)
    result = await deploy
    assert result.code == 0, result.out + result.err
    assert len(installs_started(lab, "hv1")) == 1
    assert dict(journal_rows(lab, "SELECT node, attempt FROM nodes")) == {"hv1": 1, "hv2": 1}
    messages = [r[0] for r in journal_rows(lab, "SELECT message FROM events WHERE node='hv1'")]
    assert any(m.startswith("lost the SSH link during the install") for m in messages)
    assert any(m.startswith("reattaching") for m in messages)


async def test_live_node_with_another_host_key_is_refused(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, rogue=frozenset({"hv2"}), deploy={"retries": 0, "deadlines": {"live": 8}})
    result = await pvcctl.run("deploy", "--json", str(lab.inventory))
    assert result.code == 1
    lines = [json.loads(line) for line in result.out.splitlines()]  # every line is JSON
    summary = {row["node"]: row["state"] for row in lines[-1]["summary"]}
    assert summary == {"hv1": "done", "hv2": "failed"} and lines[-1]["inventory"] is None
    assert any(e.get("node") == "hv2" and e.get("state") == "failed" for e in lines[:-1])
    assert node_states(lab) == {"hv1": "done", "hv2": "failed"}
    error, attempt = journal_rows(lab, "SELECT error, attempt FROM nodes WHERE node='hv2'")[0]
    # the check-in was a hint: the place it named was rejected, and hv2 waited for its real live system
    assert "live did not finish within its deadline of 8s; rejected as possible impostors: 127.2.0.2:" in error
    assert "(SSH answers with a host key that is not the pinned one)" in error and attempt == 1
    assert installs_started(lab, "hv2") == []  # nothing was sent to the impostor
    assert not (run_dir(lab) / "pvc-ansible").exists()
    # each node's log tells its own check-in: what came, what matched it, the key it reported
    logs = run_dir(lab) / "logs"
    for name in ("hv1", "hv2"):
        machine = lab.nodes[name].machine
        log = (logs / f"{name}.1.log").read_text()
        checked_in = next(line for line in log.splitlines() if " [live] message: checked in: " in line)
        assert f"serial {machine.serial}, MACs {', '.join(machine.macs)}" in checked_in
        assert f"matched by serial {machine.serial}, MACs {' '.join(sorted(machine.macs))}, address" in checked_in
        assert "the pinned one" in checked_in
        other = lab.nodes["hv2" if name == "hv1" else "hv1"].machine
        assert other.serial not in log  # no other node's check-in
    hv2_log = (logs / "hv2.1.log").read_text()
    # the impostor claimed the pinned key when it checked in; SSH found another: rejected, told with its source
    assert hv2_log.index("checked in: ") < hv2_log.index("rejected a check-in as a possible impostor: it came "
                                                         "from 127.2.0.2") < hv2_log.index("failed: ")


async def test_refused_and_unknown_checkins_are_logged_where_they_belong(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    from core.keys import fingerprint

    lab = await make_lab(2, rogue=frozenset({"hv2"}), deploy={"retries": 0, "deadlines": {"live": 8}})
    lab.nodes["hv2"].claimed_key = None  # hv2 checks in with the host key it has: not the pinned one
    deploy = asyncio.create_task(pvcctl.run("deploy", str(lab.inventory)))
    await until(lambda: bool(node_states(lab)), 60, "the run to start")
    stranger = {"serial": "STRANGER-1", "macs": ["02:00:00:00:00:99"], "addresses": ["127.9.9.9/8"],
                "boot_mode": "bios", "host_key_fingerprint": "SHA256:x", "node": "hv1"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.9.9.9", 0))) as http:
        for _ in range(3):  # a live system tries again until acknowledged (from the address it claims)
            async with http.post(lab.controller_url + "/api/v1/checkin", json=stranger) as answer:
                assert answer.status == 404
    result = await deploy
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "done", "hv2": "failed"}
    assert lab.nodes["hv2"].checkins.count(403) >= 3  # refused again and again
    logs = run_dir(lab) / "logs"
    hv2_log = (logs / "hv2.1.log").read_text()
    machine = lab.nodes["hv2"].machine
    pinned, presented = (fingerprint(asyncssh.read_private_key(str(lab.dir / d / "ssh_host_ed25519_key"))
                                     .export_public_key().decode()) for d in ("live-key", "rogue-key"))
    refused = [line for line in hv2_log.splitlines() if " [live] message: refused a check-in: " in line]
    assert len(refused) == 1, hv2_log  # told once, however often it came
    assert f"serial {machine.serial}" in refused[0] and f"matched by serial {machine.serial}" in refused[0]
    assert f"its host key {presented} is not the pinned {pinned}" in refused[0]
    assert "refused a check-in" not in (logs / "hv1.1.log").read_text()
    # the stranger matched no node: the run's log has it (once), no node's log does
    run_log = (logs / "run.log").read_text()
    assert run_log.count("unknown machine") == 1, run_log
    assert "serial STRANGER-1, MACs 02:00:00:00:00:99, addresses 127.9.9.9/8, bios boot, named hv1" in run_log
    assert not [p.name for p in logs.glob("hv*.log") if "STRANGER-1" in p.read_text()]
    # and the terminal tells it once, as it happens: it may be a node written wrong in the inventory
    said = [line for line in result.out.splitlines() if "STRANGER-1" in line]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in said)  # not a terminal: each line timestamped
    assert [line.split(" ", 1)[1] for line in said] == \
        [line.split("] message: ", 1)[1] for line in run_log.splitlines() if "STRANGER-1" in line]


async def test_bad_input_stops_before_any_bmc_is_touched(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1)
    text = lab.inventory.read_text()
    broken = lab.inventory.with_name("broken.yml")
    broken.write_text(text.replace("name: simlab", "name: Sim Lab!"))
    bad = await pvcctl.run("deploy", str(broken))
    assert bad.code == 2 and "broken.yml:" in bad.err and "Traceback" not in bad.err

    away = lab.inventory.with_name("away.yml")
    away.write_text(text.replace("url: http://127.0.0.1:", "url: http://10.255.255.1:"))
    unreachable = await pvcctl.run("deploy", str(away))
    assert unreachable.code == 2 and "not an address of this machine" in unreachable.err
    assert len(unreachable.err.strip().splitlines()) == 1

    unknown = await pvcctl.run("deploy", "--only", "hv9", str(lab.inventory))
    assert unknown.code == 2 and "hv9: not a node of" in unknown.err

    missing = await pvcctl.run("deploy", "--resume", str(lab.inventory))
    assert missing.code == 2 and "no earlier run" in missing.err
    assert lab.bmc("hv1").requests == 0


async def test_what_a_deploy_can_check_first_is_checked_by_validate_too_and_leaves_no_run(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    import re
    import socket

    lab = await make_lab(1)
    text = lab.inventory.read_text()
    listen = re.search(r"listen: 127\.0\.0\.1:(\d+)", text)
    assert listen is not None
    no_iso = lab.inventory.with_name("no-iso.yml")
    no_iso.write_text(re.sub(r"iso: \S+", "iso: /nowhere/pvc-live.iso", text))
    taken = lab.inventory.with_name("taken.yml")
    taken.write_text(text)
    no_password = lab.inventory.with_name("no-password.yml")
    assert "      file: bmc/password\n" in text
    no_password.write_text(text.replace("      file: bmc/password\n", "      env: PVCCTL_TEST_UNSET\n"))
    runs = lab.dir / "runs"

    async def refused(inventory: Path, said: str) -> None:
        for command in ("validate", "deploy"):
            result = await pvcctl.run(command, str(inventory))
            errors = [line for line in result.err.splitlines() if ": warning: " not in line]
            assert result.code == 2 and errors == [errors[0]] and said in errors[0], (command, result.err)
            assert "Traceback" not in result.err
        assert not list(runs.glob("*/*/journal.sqlite"))  # no run directory was made

    await refused(no_iso, "controller.iso: /nowhere/pvc-live.iso does not exist")
    await refused(no_password, "environment variable PVCCTL_TEST_UNSET")
    with socket.socket() as holder:  # something else listens on the controller's port
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", int(listen.group(1))))
        holder.listen()
        await refused(taken, f"controller.listen 127.0.0.1:{listen.group(1)} is in use")
    assert lab.bmc("hv1").requests == 0
    good = await pvcctl.run("validate", str(lab.inventory))
    assert good.code == 0 and "ok: serves the ISO" in good.out and "secrets and BMC passwords readable" in good.out


async def test_a_new_deploy_never_wipes_installed_nodes_unless_told(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2)
    first = await pvcctl.run("deploy", str(lab.inventory))
    assert first.code == 0, first.out + first.err
    installed_by = run_dir(lab)
    requests = lab.bmc("hv1").requests

    again = await pvcctl.run("deploy", str(lab.inventory))
    assert again.code == 2 and "Traceback" not in again.err
    assert f"installed already: hv1, hv2 by {installed_by}" in again.err and "--reinstall" in again.err
    assert run_dir(lab) == installed_by  # no new run was started
    assert lab.bmc("hv1").requests == requests  # and no BMC was touched

    one = await pvcctl.run("deploy", "--reinstall", "--only", "hv2", str(lab.inventory))
    assert one.code == 0, one.out + one.err
    assert run_dir(lab) != installed_by and node_states(lab) == {"hv2": "done"}
    assert lab.bmc("hv1").requests == requests  # --only: hv1 was left alone


async def test_failed_install_starts_the_node_over_keeping_each_attempts_log(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, deploy={"retries": 1})
    lab.nodes["hv2"].diskless_boots = 1  # the first inspection finds no disk: nothing is started, the node over
    result = await pvcctl.run("deploy", str(lab.inventory))
    assert result.code == 0, result.out + result.err
    assert "hv2: failed (attempt 1): the disk the hint names: found no non-removable disk" in result.out
    assert dict(journal_rows(lab, "SELECT node, attempt FROM nodes")) == {"hv1": 1, "hv2": 2}
    logs = run_dir(lab) / "logs"
    assert "failed" in (logs / "hv2.1.log").read_text() and "done" in (logs / "hv2.2.log").read_text()
    assert "no candidate disks" in (logs / "hv2.1.log").read_text()
    assert len(installs_started(lab, "hv2")) == 1  # only the second attempt's
    assert (logs / "hv2.2" / "report.json").is_file()


async def test_failed_install_without_retries_left_fails_the_node(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(2, deploy={"retries": 0})
    lab.nodes["hv1"].diskless_boots = 5
    result = await pvcctl.run("deploy", "--partial", str(lab.inventory))
    assert result.code == 1
    assert node_states(lab) == {"hv1": "failed", "hv2": "done"}
    hosts = (run_dir(lab) / "pvc-ansible" / "hosts").read_text()  # --partial: the finished node only
    assert "hv2.sim.pvc.test" in hosts and "hv1.sim.pvc.test" not in hosts


async def test_ctrl_c_stops_cleanly_and_resume_finishes(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(3, step_delay=0.3)
    deploy = await pvcctl.start("deploy", str(lab.inventory))
    await until(lambda: set(node_states(lab).values()) == {"install"}, 60, "every node installing")
    deploy.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(deploy.communicate(), 30)
    assert deploy.returncode == 1
    assert node_states(lab) == dict.fromkeys(("hv1", "hv2", "hv3"), "stopped")
    assert "summary" in out.decode() and "stopped" in out.decode()
    resumed = await pvcctl.run("deploy", "--resume", str(lab.inventory))
    assert resumed.code == 0, resumed.out + resumed.err
    assert all(len(installs_started(lab, f"hv{n}")) == 1 for n in (1, 2, 3))


async def test_iso_named_by_url_on_another_web_server(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    from aiohttp import web

    lab = await make_lab(2)
    iso = lab.dir / "pvc-live.iso"
    fetched: list[str] = []

    async def serve(request: web.Request) -> web.FileResponse:
        fetched.append(request.method)
        return web.FileResponse(iso)

    app = web.Application()
    app.router.add_get("/images/pvc-live.iso", serve)
    async with serving(app) as port:
        text = lab.inventory.read_text().replace(f"iso: {iso}", f"iso: http://127.0.0.1:{port}/images/pvc-live.iso")
        by_url = lab.inventory.with_name("by-url.yml")
        by_url.write_text(text)
        no_key = await pvcctl.run("deploy", str(by_url))
        assert no_key.code == 2 and "live host key" in no_key.err and lab.bmc("hv1").requests == 0
        pinned = lab.dir / "runs" / "simlab" / "live.hostkey.pub"
        assert not pinned.parent.exists()  # the refused deploy made nothing, not even the cluster's directory
        pinned.parent.mkdir(parents=True)
        pinned.write_text((lab.dir / "pvc-live.iso.hostkey.pub").read_text())
        dead = lab.inventory.with_name("dead-url.yml")
        dead.write_text(by_url.read_text().replace("/images/pvc-live.iso", "/images/missing.iso"))
        not_there = await pvcctl.run("deploy", str(dead))
        assert not_there.code == 2 and "answers HEAD with 404" in not_there.err
        assert lab.bmc("hv1").requests == 0
        result = await pvcctl.run("deploy", str(by_url))
    assert result.code == 0, result.out + result.err
    assert "GET" in fetched and "HEAD" in fetched  # the BMCs checked it, the machines booted it
    assert node_states(lab) == {"hv1": "done", "hv2": "done"}


async def test_watch_and_logs_follow_a_running_deploy_and_exit_with_it(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1, step_delay=0.3)
    deploy = asyncio.create_task(pvcctl.run("deploy", str(lab.inventory)))
    await until(lambda: node_states(lab).get("hv1") in ("media", "boot", "live", "inspect"), 30, "the run to start")
    run = run_dir(lab)
    url = f"{dict(journal_rows(lab, 'SELECT key, value FROM meta'))['controller']}/?token={(run / 'token').read_text()}"
    watcher = await pvcctl.start("watch", str(lab.inventory), "--interval", "0.2")
    remote = await pvcctl.start("watch", url.strip())
    logs = await pvcctl.start("logs", "hv1", "-i", str(lab.inventory), "-f")
    assert (await deploy).code == 0
    outs = []
    for proc in (watcher, remote, logs):  # each ends by itself when the run ends, with its exit status
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, err.decode()
        outs.append(out.decode().splitlines())
    journal_lines, stream_lines, log_lines = outs
    assert any(" hv1 [install] install: started" in line for line in journal_lines), journal_lines  # from the start
    assert stream_lines[0].startswith("hv1: ")  # the stream: a snapshot, then every event as it comes
    for lines in (journal_lines, stream_lines):
        assert any(" hv1 [verify] verify: started" in line for line in lines), lines
        assert any(" hv1 [verify] done" in line or " hv1 [-] done" in line for line in lines), lines[-3:]
        assert not [line for line in lines if line.endswith(": ") or line.endswith("]")]  # no empty lines of events
    assert "deploy ended: exit status 0" in stream_lines[-1]
    assert log_lines == (run / "logs" / "hv1.1.log").read_text().splitlines()  # followed to the end, whole
    assert any("[install] progress:" in line for line in log_lines)  # the installer's own lines too
    status = await pvcctl.run("status", str(lab.inventory))
    assert status.code == 0 and f"run directory: {run} (ended, exit status 0)" in status.out


async def test_ctrl_c_lets_a_bmc_step_in_flight_finish_and_starts_no_other(
        make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1)
    lab.bmc("hv1").faults.latency = 0.4  # every BMC request is slow: the media step takes seconds
    deploy = await pvcctl.start("deploy", str(lab.inventory))
    await until(lambda: node_states(lab).get("hv1") == "media", 60, "hv1 in the media step")
    deploy.send_signal(signal.SIGINT)
    await asyncio.wait_for(deploy.communicate(), 60)
    assert deploy.returncode == 1
    assert node_states(lab) == {"hv1": "stopped"}
    finished = [r[0] for r in journal_rows(lab, "SELECT phase FROM steps WHERE node='hv1' ORDER BY time")]
    assert finished == ["preflight", "media"]  # the insert was finished, not cut off
    assert lab.nodes["hv1"].machine.cd_image is not None and lab.nodes["hv1"].machine.boots == []  # no boot


async def test_a_simulated_install_counts_only_in_a_lab(make_lab: LabFactory, pvcctl: Pvcctl) -> None:
    lab = await make_lab(1, deploy={"retries": 0})
    text = lab.inventory.read_text()
    assert "lab: true" in text
    lab.inventory.write_text(text.replace("lab: true", "lab: false"))  # as if this were a real cluster
    result = await pvcctl.run("deploy", "--yes", str(lab.inventory))
    assert result.code == 1, result.out + result.err
    assert node_states(lab) == {"hv1": "failed"}
    (error,) = journal_rows(lab, "SELECT error FROM nodes WHERE node='hv1'")[0]
    assert "the installer's report says it only simulated the install" in error
    assert not (run_dir(lab) / "pvc-ansible").exists()
