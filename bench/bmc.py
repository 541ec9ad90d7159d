"""Benchmark: the deploy sequence on 10, 100 and 500 emulated BMCs at once, against one after another.

    .venv/bin/python bench/bmc.py [--sizes 10,100,500] [--personality standard] [--latency 0.1]

For each size it starts `pvcctl lab bmc` (a separate process, so this process's CPU is the
controller's own) and an ISO server (another process), then runs on every BMC at once:
preflight (login, identity, MACs), eject all, insert the ISO, boot once from CD, power on, logout.
Baseline: the same sequence with the synchronous `redfish` client, one BMC after another, on a fresh
emulator. Prints wall time, requests per second, controller CPU per BMC, peak memory and the ratio.

`--latency S` makes every emulated request take S seconds more, as real BMCs do (they answer in
0.1-2 s); the serial baseline then runs on `--sync-sample` BMCs and is scaled to the full count,
since one-after-another time is linear in the number of BMCs (the line says so).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redfish
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.bmc.endpoint import BmcEndpoint
from controller.bmc.redfish import BmcTimings, RedfishBmc
from controller.bmc.transport import new_http_session

PVCCTL = str(Path(sys.executable).with_name("pvcctl"))
ISO_SERVER = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_static("/", sys.argv[1])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=lambda *a: print("ready", flush=True))
"""


@dataclass(frozen=True)
class Lab:
    urls: list[str]
    ca: str
    password: str


@dataclass(frozen=True)
class Figures:
    wall: float
    requests: int
    cpu: float
    failures: int


def _raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def emulator(count: int, personality: str, workdir: Path, latency: float) -> Iterator[Lab]:
    state = Path(tempfile.mkdtemp(dir=workdir))
    process = subprocess.Popen(
        [PVCCTL, "lab", "bmc", "--count", str(count), "-p", personality, "--port", "8443",
         "--state-dir", str(state), "--latency", str(latency)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        urls, ca = [], ""
        for line in process.stdout:
            if line.startswith("bmc "):
                urls.append(line.split()[2])
            elif line.startswith("ca "):
                ca = line.split(" ", 1)[1].strip()
            elif line.startswith("credentials"):
                break
        yield Lab(urls, ca, (state / "password").read_text().strip())
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextmanager
def iso_server(workdir: Path) -> Iterator[str]:
    www = workdir / "www"
    www.mkdir(exist_ok=True)
    data = bytearray(64 * 1024)
    data[0x8001:0x8006] = b"CD001"
    (www / "pvc.iso").write_bytes(bytes(data))
    port = 18765
    process = subprocess.Popen([sys.executable, "-c", ISO_SERVER, str(www), str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        process.stdout.readline()
        yield f"http://127.0.0.1:{port}/pvc.iso"
    finally:
        process.terminate()
        process.wait(timeout=10)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _one_async(url: str, lab: Lab, image: str, http: Any) -> int:
    endpoint = BmcEndpoint(url, "admin", SecretStr(lab.password), ca_bundle=Path(lab.ca))
    bmc = RedfishBmc(endpoint, session=http, timings=BmcTimings(request_timeout=60, poll_interval=0.5))
    async with bmc:
        await bmc.identity()
        await bmc.eject_all_media()
        await bmc.insert_media(image)
        await bmc.set_boot_once_cd()
        await bmc.power_on()
    return bmc.transport.requests


async def run_async(lab: Lab, image: str) -> Figures:
    cpu, start = _cpu(), time.perf_counter()
    async with new_http_session() as http:
        results = await asyncio.gather(*(_one_async(u, lab, image, http) for u in lab.urls), return_exceptions=True)
    wall = time.perf_counter() - start
    failures = [r for r in results if isinstance(r, BaseException)]
    for failure in failures[:3]:
        print(f"  async failure: {failure}", file=sys.stderr)
    requests = sum(r for r in results if isinstance(r, int))
    return Figures(wall, requests, _cpu() - cpu, len(failures))


def _one_sync(url: str, lab: Lab, image: str) -> int:
    client = redfish.redfish_client(base_url=url, username="admin", password=lab.password, cafile=lab.ca,
                                    timeout=60, max_retry=1, check_connectivity=False)
    client.login(auth="session")
    count = 1
    try:
        def get(path: str) -> dict[str, Any]:
            nonlocal count
            count += 1
            answer: dict[str, Any] = client.get(path).dict
            return answer

        root = get("/redfish/v1/")
        system_path = get(root["Systems"]["@odata.id"])["Members"][0]["@odata.id"]
        system = get(system_path)
        manager = get(system["Links"]["ManagedBy"][0]["@odata.id"])
        for nic in get(system["EthernetInterfaces"]["@odata.id"])["Members"]:
            get(nic["@odata.id"])
        media = (system.get("VirtualMedia") or manager["VirtualMedia"])["@odata.id"]
        slots = [get(m["@odata.id"]) for m in get(media)["Members"]]
        for slot in slots:
            if slot.get("Inserted"):
                client.post(slot["Actions"]["#VirtualMedia.EjectMedia"]["target"], body={})
                count += 1
        cd = next(s for s in slots if "CD" in s["MediaTypes"])
        client.post(cd["Actions"]["#VirtualMedia.InsertMedia"]["target"],
                    body={"Image": image, "Inserted": True, "WriteProtected": True})
        assert get(cd["@odata.id"])["Inserted"]
        client.patch(system_path, body={"Boot": {"BootSourceOverrideTarget": "Cd",
                                                 "BootSourceOverrideEnabled": "Once"}})
        assert get(system_path)["Boot"]["BootSourceOverrideTarget"] == "Cd"
        client.post(system["Actions"]["#ComputerSystem.Reset"]["target"], body={"ResetType": "On"})
        assert get(system_path)["PowerState"] == "On"
        count += 3
    finally:
        client.logout()
    return count + 1


def run_sync(lab: Lab, image: str, sample: int) -> Figures:
    """One BMC after another on `sample` BMCs, scaled to all of them."""
    cpu, start, requests = _cpu(), time.perf_counter(), 0
    chosen = lab.urls[:sample]
    for url in chosen:
        requests += _one_sync(url, lab, image)
    scale = len(lab.urls) / len(chosen)
    return Figures((time.perf_counter() - start) * scale, round(requests * scale), (_cpu() - cpu) * scale, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,500")
    parser.add_argument("--personality", default="standard")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every emulated request")
    parser.add_argument("--sync-sample", type=int, default=0, help="serial baseline on this many BMCs, scaled")
    args = parser.parse_args()
    _raise_fd_limit()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"pvcctl BMC benchmark: {args.personality} personality, {args.latency * 1000:.0f} ms added per "
          f"request, {os.cpu_count()} CPUs, emulator and ISO server in their own processes")
    print(f"{'BMCs':>5} {'mode':<22} {'wall s':>8} {'requests':>9} {'req/s':>8} {'CPU ms/BMC':>11} "
          f"{'peak RSS MB':>12} {'fail':>5}")
    with tempfile.TemporaryDirectory(prefix="pvcctl-bench-") as tmp, iso_server(Path(tmp)) as image:
        for size in sizes:
            with emulator(size, args.personality, Path(tmp), args.latency) as lab:
                fast = asyncio.run(run_async(lab, image))
            _report(size, "async, all at once", fast)
            sample = min(size, args.sync_sample or size)
            with emulator(size, args.personality, Path(tmp), args.latency) as lab:
                slow = run_sync(lab, image, sample)
            _report(size, "sync redfish, serial" if sample == size else f"sync serial, {sample} scaled", slow)
            print(f"{size:>5} speed-up async vs sync one after another: {slow.wall / fast.wall:.1f}x")


def _report(size: int, mode: str, figures: Figures) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{size:>5} {mode:<22} {figures.wall:>8.2f} {figures.requests:>9} "
          f"{figures.requests / figures.wall:>8.0f} {1000 * figures.cpu / size:>11.1f} {peak:>12.0f} "
          f"{figures.failures:>5}", flush=True)


if __name__ == "__main__":
    main()
