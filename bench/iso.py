"""Benchmark the ISO build: cold build vs rebuild with nothing changed vs a new seed only.

    sudo .venv/bin/python bench/iso.py [--cache DIR] [--cold]

Without --cold it uses the given cache as it is (run it once cold first); with --cold it builds
into a new empty cache in a temporary directory (debootstrap and apt from this machine's mirror).
Ratios are against the cold build when measured, else against the cached rebuild.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

# This script is named iso.py: its own folder first on sys.path would hide the iso package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from iso.build import BuildReport, build_iso  # noqa: E402
from iso.seed import Seed, SeedNode, write_iso_with_seed  # noqa: E402

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEFHI1HGoHcasy7wh4z7jRBFRwQdmzP7TKSddjpd9Hch bench"


def _timed_build(cache: Path, out: Path) -> tuple[float, BuildReport]:
    start = time.monotonic()
    report = build_iso(cache, out)
    return time.monotonic() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/var/cache/pvcctl-test/iso"))
    parser.add_argument("--cold", action="store_true", help="build into a new empty cache first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pvcctl-bench-") as scratch:
        cache = Path(scratch) / "cache" if args.cold else args.cache
        out = Path(scratch) / "bench.iso"
        figures: list[tuple[str, float]] = []
        seconds, report = _timed_build(cache, out)
        figures.append(("cold build" if args.cold else "first build (cache as found)", seconds))
        for stage in report.stages:
            print(f"  stage {stage.name:<13} {stage.seconds:8.2f} s {'(cached)' if stage.cached else ''}")
        seconds, _ = _timed_build(cache, out)
        figures.append(("rebuild, nothing changed", seconds))
        seed = Seed("http://192.0.2.1:8080", KEY, (SeedNode("hv1", macs=("52:54:00:00:00:01",),
                                                            address="192.0.2.11/24"),))
        start = time.monotonic()
        write_iso_with_seed(out, seed, Path(scratch) / "seeded.iso")
        figures.append(("new seed only (write_iso_with_seed)", time.monotonic() - start))
    baseline_name, baseline = figures[0] if args.cold else figures[1]
    print(f"ISO size: {report.files[0].size / 1e6:.0f} MB")
    for name, seconds in figures:
        print(f"{name:<40} {seconds:8.2f} s   {seconds / baseline:9.5f} of {baseline_name} "
              f"({baseline / seconds:,.0f}x faster)")


if __name__ == "__main__":
    main()
