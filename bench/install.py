"""Benchmark: the installer's `image` method against `debootstrap`, same plan, same disk.

    sudo .venv/bin/python bench/install.py [--skip-debootstrap] [--timeout 3600]

Both runs are the real installer inside the live test VM (QEMU TCG, 2 vCPUs, 2 GiB; this host has
no KVM) onto a fresh 30 GiB raw disk: partition, LVM, filesystems, the OS, configuration, users,
host keys, GRUB for UEFI and BIOS, initramfs where needed. The figure is the installer's own wall
time measured inside the VM (boot and shutdown of the VM excluded), plus its per-step times.
Baseline: the `debootstrap` method (pvc-installer's way) from this machine's Debian mirror.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from iso.build import build_target_image
from tests.conftest import TEST_CACHE
from tests.installer import harness, vm
from tests.installer.standin import build_standin_image, debian_mirror


def one_run(kit: vm.LiveKit, image: Path, plan: dict, workdir: Path, timeout: float, net: bool) -> dict:
    script = harness.RUN_ONCE_SH.format(net="ip link set enp0s5 up; dhclient -1 enp0s5" if net else "")
    result = harness.install_in_vm(kit, image, plan, workdir, timeout=timeout, script=script)
    if result.rc_full != 0:
        raise SystemExit(f"{plan['method']} install failed ({result.rc_full}):\n{result.console[-3000:]}")
    seconds = float((workdir / "seconds").read_text().strip())
    return {"seconds": seconds, "vm_seconds": result.seconds, "steps": result.report["step_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-debootstrap", action="store_true", help="image method only (no baseline)")
    parser.add_argument("--timeout", type=float, default=3600, help="watchdog for the debootstrap VM run")
    args = parser.parse_args()
    mirror = debian_mirror()
    cache = TEST_CACHE / "installer"
    kit = vm.live_kit(build_standin_image(cache), cache)
    image = build_target_image(TEST_CACHE / "iso", mirror=mirror)
    with tempfile.TemporaryDirectory() as tmp:
        key = Path(tmp) / "id"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        plan = harness.test_plan("/payload/target.squashfs", key.with_suffix(".pub").read_text().strip(), "$6$x$y")
        results = {"image": one_run(kit, image, plan, Path(tmp) / "image", 900, net=False)}
        if not args.skip_debootstrap:
            (Path(tmp) / "debootstrap").mkdir()
            deb = {**plan, "method": "debootstrap", "image": None, "mirror": mirror}
            results["debootstrap"] = one_run(kit, image, deb, Path(tmp) / "debootstrap", args.timeout, net=True)
    raw = Path("/tmp/pvcctl-bench-install.json")
    raw.write_text(json.dumps(results, indent=2))
    for method, result in results.items():
        slow = sorted(result["steps"].items(), key=lambda kv: -kv[1])[:4]
        print(f"{method:12s} install {result['seconds']:7.1f} s (VM run incl. boot {result['vm_seconds']:.0f} s); "
              f"slowest steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in slow))
    if "debootstrap" in results:
        ratio = results["debootstrap"]["seconds"] / results["image"]["seconds"]
        print(f"image method is {ratio:.1f}x faster than the debootstrap baseline (same plan, same disk, TCG)")
    print(f"raw figures: {raw}")


if __name__ == "__main__":
    main()
