"""The overlay layer: everything pvcctl puts on the live system, as `live/zz-pvc.squashfs`.

live-boot stacks every /live/*.squashfs in name order, later on top, so this small layer lands
over the live root: the build's SSH host key, sshd's and the consoles' settings, the units that
apply the seed and check in, and the installer package. Rebuilding it takes well under a second,
so a new installer or host key never rebuilds the live root.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import installer
import iso
from iso.cache import atomic_output, content_key
from iso.chroot import fresh_dir, run
from iso.keys import HostKey
from iso.target import StageResult

LIB_DIR = "usr/local/lib/pvcctl"
INSTALLER_SOURCE = Path(installer.__file__).parent
ISO_SOURCE = Path(iso.__file__).parent
SHIPPED_ISO_FILES = ("__init__.py", "seed.py", "live")

_UNITS = {
    "pvc-seed.service": """[Unit]
Description=PVC live: network and controller key from the seed
DefaultDependencies=no
After=systemd-udev-trigger.service systemd-tmpfiles-setup.service
Before=systemd-networkd.service ssh.service network-pre.target
Wants=network-pre.target

[Service]
Type=oneshot
RemainAfterExit=yes
Environment=PYTHONPATH=/usr/local/lib/pvcctl
ExecStart=/usr/bin/python3 -m iso.live.seedapply
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
""",
    "pvc-checkin.service": """[Unit]
Description=PVC live: check in to the controller until acknowledged
After=pvc-seed.service systemd-networkd.service ssh.service
Wants=pvc-seed.service

[Service]
Environment=PYTHONPATH=/usr/local/lib/pvcctl
ExecStart=/usr/bin/python3 -m iso.live.checkin
Restart=on-failure
RestartSec=5
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
""",
}
_FILES = {
    "etc/systemd/system/getty@.service.d/pvc-autologin.conf":
        "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %I $TERM\n",
    "etc/systemd/system/serial-getty@.service.d/pvc-autologin.conf":
        "[Service]\nExecStart=\n"
        "ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM\n",
    "root/.bash_profile": """[ -f ~/.bashrc ] && . ~/.bashrc
# The console screen on tty1 and the serial console, never in an SSH session.
if [ -z "$SSH_CONNECTION" ] && [ -z "$PVC_CONSOLE_SHOWN" ]; then
  case "$(tty)" in /dev/tty[0-9]*|/dev/ttyS[0-9]*) export PVC_CONSOLE_SHOWN=1; /usr/local/sbin/pvc-console;; esac
fi
""",
    "usr/local/sbin/pvc-console": "#!/bin/sh\nPYTHONPATH=/usr/local/lib/pvcctl exec python3 -m iso.live.console\n",
    "usr/local/sbin/pvc-installer": """#!/bin/sh
# One installer at a time on this machine: a console user and the controller's SSH session never
# run two installers against the same disks. The lock lives as long as the installer runs.
mkdir -p /run/pvc
exec 9>/run/pvc/installer.lock
if ! flock -n 9; then
  echo "pvc-installer: an installer is already running here ($(cat /run/pvc/installer.owner 2>/dev/null))" >&2
  exit 75
fi
echo "pid $$ on $(tty 2>/dev/null | grep -v 'not a tty' || echo 'no tty (ssh)')" > /run/pvc/installer.owner
PYTHONPATH=/usr/local/lib/pvcctl exec python3 -m installer "$@"
""",
}


def overlay_key(host_key: HostKey) -> str:
    return content_key("overlay-v1", host_key.public_line, host_key.private, INSTALLER_SOURCE,
                       [ISO_SOURCE / name for name in SHIPPED_ISO_FILES], sorted(_UNITS.items()),
                       sorted(_FILES.items()))


def overlay_stage(cache_dir: Path, host_key: HostKey, log: Path) -> StageResult:
    start = time.monotonic()
    out = cache_dir / "overlay" / f"zz-pvc-{overlay_key(host_key)}.squashfs"
    if out.is_file():
        return StageResult("overlay", out, time.monotonic() - start, cached=True)
    tree = fresh_dir(cache_dir / "work" / "overlay")
    write_overlay_tree(tree, host_key)
    with atomic_output(out) as partial:
        run(["mksquashfs", tree, partial, "-noappend", "-comp", "zstd", "-all-root", "-no-progress"],
            phase="overlay", log=log)
        partial.chmod(0o600)  # holds the live host's private key
    shutil.rmtree(tree)
    return StageResult("overlay", out, time.monotonic() - start, cached=False)


def write_overlay_tree(tree: Path, host_key: HostKey) -> None:
    ssh = tree / "etc/ssh"
    ssh.mkdir(parents=True)
    shutil.copy(host_key.private, ssh / "ssh_host_ed25519_key")
    os.chmod(ssh / "ssh_host_ed25519_key", 0o600)
    (ssh / "ssh_host_ed25519_key.pub").write_text(host_key.public_line + "\n")
    units = tree / "etc/systemd/system"
    wants = units / "multi-user.target.wants"
    wants.mkdir(parents=True)
    for name, text in _UNITS.items():
        (units / name).write_text(text)
        (wants / name).symlink_to(f"/etc/systemd/system/{name}")
    for rel, text in _FILES.items():
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if "/sbin/" in rel:
            path.chmod(0o755)
    (tree / "root").chmod(0o700)
    lib = tree / LIB_DIR
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(INSTALLER_SOURCE, lib / "installer", ignore=ignore)
    (lib / "iso").mkdir(parents=True)
    for name in SHIPPED_ISO_FILES:
        source = ISO_SOURCE / name
        if source.is_dir():
            shutil.copytree(source, lib / "iso" / name, ignore=ignore)
        else:
            shutil.copy(source, lib / "iso" / name)
