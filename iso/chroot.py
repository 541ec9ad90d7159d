"""A Debian root built with debootstrap and finished with apt inside a chroot.

The chroot gets /proc, /sys, /dev and /dev/pts for the time it is used, a real resolv.conf
(installing systemd-resolved would otherwise leave a dangling symlink that breaks the next apt
run), and a policy-rc.d so no package starts a daemon on the build host.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.mirror import Mirrors
from iso.cache import mounts_under, remove_tree
from iso.errors import BuildError

COMPONENTS = ("main", "non-free-firmware")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


@dataclass(frozen=True)
class Source:
    """Where packages come from: mirrors, release and an optional apt proxy URL."""

    mirrors: Mirrors
    release: str = "bookworm"
    proxy: str | None = None

    def sources_list(self) -> str:
        components = " ".join(COMPONENTS)
        lines = [f"deb {self.mirrors.debian} {self.release} {components}",
                 f"deb {self.mirrors.debian} {self.release}-updates {components}"]
        if self.mirrors.security:
            lines.append(f"deb {self.mirrors.security} {self.release}-security {components}")
        return "\n".join(lines) + "\n"

    def env(self) -> dict[str, str]:
        return {"http_proxy": self.proxy, "https_proxy": self.proxy} if self.proxy else {}


def run(cmd: Sequence[str | Path], *, phase: str, env: dict[str, str] | None = None,
        log: Path | None = None) -> str:
    """Run a host command; on failure raise BuildError with the tail of its output."""
    merged = {**os.environ, **(env or {})}
    result = subprocess.run([str(c) for c in cmd], env=merged, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace", check=False)
    if log is not None:
        with log.open("a") as stream:
            stream.write(f"$ {' '.join(str(c) for c in cmd)}\n{result.stdout}\n")
    if result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise BuildError(f"{Path(str(cmd[0])).name} failed (exit {result.returncode}):\n{tail}", phase=phase,
                         hint=f"full log: {log}" if log else "")
    return result.stdout


def debootstrap(root: Path, source: Source, *, log: Path) -> None:
    run(["debootstrap", "--variant=minbase", "--arch=amd64", f"--components={','.join(COMPONENTS)}",
         source.release, root, source.mirrors.debian], phase="debootstrap", env=source.env(), log=log)


class Chroot:
    """A root directory with the pseudo filesystems mounted while the context is open."""

    def __init__(self, root: Path, source: Source, log: Path):
        self.root = root
        self.source = source
        self.log = log

    def run(self, *cmd: str, phase: str) -> str:
        return run(["chroot", self.root, *cmd], phase=phase, env={**APT_ENV, **self.source.env()}, log=self.log)

    def apt_install(self, packages: Sequence[str], *, phase: str) -> None:
        self.run("apt-get", "install", "-y", "-q", "--no-install-recommends", *packages, phase=phase)

    @contextlib.contextmanager
    def mounted(self) -> Iterator[Chroot]:
        root = self.root
        (root / "etc/apt/sources.list").write_text(self.source.sources_list())
        if self.source.proxy:
            (root / "etc/apt/apt.conf.d/01pvcctl-proxy").write_text(f'Acquire::http::Proxy "{self.source.proxy}";\n')
        policy = root / "usr/sbin/policy-rc.d"
        policy.write_text("#!/bin/sh\n# pvcctl build: start no daemons in the chroot\nexit 101\n")
        policy.chmod(0o755)
        resolv = root / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        resolv.write_bytes(Path("/etc/resolv.conf").read_bytes())
        try:
            for args in _pseudo_mounts(root):
                run(args, phase="chroot")
            yield self
        finally:
            unmount_all(root)
            policy.unlink(missing_ok=True)
            resolv.unlink(missing_ok=True)
            (root / "etc/apt/apt.conf.d/01pvcctl-proxy").unlink(missing_ok=True)

    def fix_resolv(self) -> None:
        """Put a real resolv.conf back after a package replaced it by a symlink."""
        resolv = self.root / "etc/resolv.conf"
        resolv.unlink(missing_ok=True)
        resolv.write_bytes(Path("/etc/resolv.conf").read_bytes())

    def clean(self) -> None:
        """Drop what a shipped image does not need: downloaded packages and package lists."""
        self.run("apt-get", "clean", phase="clean")
        lists = self.root / "var/lib/apt/lists"
        for entry in lists.glob("*"):
            if entry.is_file():
                entry.unlink()


def _pseudo_mounts(root: Path) -> list[list[str | Path]]:
    return [["mount", "-t", "proc", "proc", root / "proc"], ["mount", "-t", "sysfs", "sysfs", root / "sys"],
            ["mount", "--bind", "/dev", root / "dev"], ["mount", "--bind", "/dev/pts", root / "dev/pts"]]


def unmount_all(root: Path) -> None:
    for point in mounts_under(root):
        subprocess.run(["umount", "--lazy", str(point)], check=False)


def fresh_dir(path: Path) -> Path:
    """An empty directory at `path`, clearing what an interrupted build left there."""
    if path.exists():
        unmount_all(path)
        remove_tree(path)
    path.mkdir(parents=True)
    return path
