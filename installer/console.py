"""Console mode: pvc-installer's questions (plus DNS and a last confirmation), each answer checked
where it is typed, then the same install as `run PLAN.json`."""

from __future__ import annotations

import getpass
import ipaddress
import json
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from installer.disks import Disk, DiskRefused, choose_disk, human_size
from installer.engine import EXIT_DISK_REFUSED, Options, discover, run_plan
from installer.events import Reporter
from installer.layout import minimum_disk_size
from installer.plan import FILESYSTEMS, RELEASES, DiskHint, Network, Plan, PlanError, hostname_problem, package_problem

IMAGE_PLACES = ("/run/live/medium/pvc/target.squashfs", "/run/live/medium/pvc/rootfs.squashfs")
BOND_MODES = ("802.3ad", "active-backup", "balance-rr", "balance-xor", "broadcast", "balance-tlb", "balance-alb")
Check = Callable[[str], str | None]  # returns a problem, or None when the answer is good


def ask(question: str, check: Check, default: str = "") -> str:
    """Ask until the answer passes `check`; an empty answer takes the default."""
    suffix = f" [{default}]" if default else ""
    while True:
        try:
            answer = input(f"\n{question}{suffix}\n> ").strip() or default
        except EOFError:
            raise SystemExit("installer: input closed; nothing was touched") from None
        problem = check(answer)
        if problem is None:
            return answer
        print(f"  ✗ {problem}")


def _ip(text: str) -> str | None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return f"{text!r} is not an IP address"
    return None


def _cidr_or_blank(text: str) -> str | None:
    if not text:
        return None
    try:
        iface = ipaddress.ip_interface(text)
    except ValueError:
        return f"{text!r} is not an address in CIDR form like 10.0.0.5/24"
    return "give the prefix length too, as in /24" if iface.network.prefixlen == iface.max_prefixlen else None


def ask_disk(disks: list[Disk], booted: set[str]) -> Disk:
    print("\nDisks (the chosen one will be WIPED; at least "
          f"{human_size(minimum_disk_size())}, 100 GiB recommended, fast flash or hardware RAID-1):")
    for disk in disks:
        note = "  (boot medium: not allowed)" if disk.path in booted else ""
        print(f"  {disk.describe()}{note}")
    chosen: list[Disk] = []

    def check(text: str) -> str | None:
        try:
            chosen[:] = [choose_disk(disks, DiskHint.parse(text), boot_devices=booted,
                                     min_size=minimum_disk_size())]
        except (ValueError, DiskRefused) as err:
            return str(err)
        return None

    ask("Disk to install the PVC base system to (a path, serial:..., model:..., smallest or largest):", check)
    return chosen[0]


def ask_network(interfaces: dict[str, str]) -> Network:
    print("\nNetwork interfaces:\n" + "\n".join(f"  {n}  {m}" for n, m in sorted(interfaces.items())))
    names = set(interfaces)
    iface = ask("Primary network interface (or 'bond' for a bonding interface):",
                lambda t: None if t in names or t == "bond" else f"{t!r} is not one of {', '.join(sorted(names))}")
    mode: str | None = None
    slaves: tuple[str, ...] = ()
    if iface == "bond":
        iface = ask("Name of the bonding interface (starts with 'bond', e.g. bond0):",
                    lambda t: None if re.fullmatch(r"bond\d+", t) else "write bond followed by a number")
        mode = ask("Bonding mode:", lambda t: None if t in BOND_MODES else f"one of {', '.join(BOND_MODES)}",
                   "802.3ad")
        slaves = tuple(ask("Slave interfaces, space-separated:", lambda t: None if t.split() and set(t.split())
                           <= names else f"each must be one of {', '.join(sorted(names))}").split())
    vlan = None
    if ask("Is a tagged VLAN required? [y/N]", lambda t: None if t.lower() in ("y", "n") else "y or n",
           "n").lower() == "y":
        vlan = int(ask("VLAN ID (1-4094):", lambda t: None if t.isdigit() and 1 <= int(t) <= 4094
                       else "a number from 1 to 4094"))
    address = ask("IP address in CIDR form (X.X.X.X/YY); leave blank for DHCP:", _cidr_or_blank) or None
    gateway = None
    if address:
        network = ipaddress.ip_interface(address).network
        gateway = ask("Default gateway:", lambda t: _ip(t) or (None if ipaddress.ip_address(t) in network
                                                              else f"{t} is not in {network}"))
    dns_text = ask("DNS servers, space-separated" + (" (blank: from DHCP)" if not address else "") + ":",
                   lambda t: next((p for p in map(_ip, t.split()) if p), None)
                   or (None if t or not address else "a static address needs at least one DNS server"),
                   gateway or "")
    return Network(interface=iface, vlan=vlan, bond_mode=mode, bond_slaves=slaves, address=address,
                   gateway=gateway, dns=tuple(dns_text.split()))


def ask_login() -> dict[str, object]:
    def check(text: str) -> str | None:
        if not text:
            return None
        return None if _keys_from(text) else f"{text!r} is neither an OpenSSH public key nor a file of them"

    answer = ask("SSH public key for the deploy user, or a file of keys; blank to set a password instead:", check)
    if answer:
        return {"ssh_keys": _keys_from(answer)}
    while True:
        first = getpass.getpass("Password for the deploy user: ")
        if len(first) >= 8 and first == getpass.getpass("Again: "):
            return {"deploy_password_hash": hash_password(first)}
        print("  ✗ the two passwords differ, or it is shorter than 8 characters")


def _keys_from(text: str) -> tuple[str, ...]:
    pattern = re.compile(r"^(ssh|ecdsa|sk)-[a-z0-9@.-]+ [A-Za-z0-9+/=]+( .*)?$")
    lines = Path(text).read_text().splitlines() if text.startswith("/") and Path(text).is_file() else [text]
    return tuple(line.strip() for line in lines if pattern.match(line.strip()))


def hash_password(password: str) -> str:
    """A SHA-512 crypt hash by `openssl passwd` (the stdlib crypt module is going away)."""
    out = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True,
                         text=True, check=True)
    return out.stdout.strip()


def default_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    for line in sources.read_text().splitlines() if sources.exists() else []:
        if line.startswith("URIs:") and "security" not in line:
            return line.split()[1]
    return ""


def ask_plan(options: Options, image: str | None) -> tuple[Plan, Disk]:
    disks, booted, interfaces, _efi = discover(options)
    hostname = ask("Fully-qualified hostname (as in the pvc-ansible inventory):", hostname_problem)
    disk = ask_disk(disks, booted)
    filesystem = ask(f"Filesystem ({' '.join(FILESYSTEMS)}):",
                     lambda t: None if t in FILESYSTEMS else f"one of {', '.join(FILESYSTEMS)}", "ext4")
    network = ask_network(interfaces)
    release = ask("Debian release:", lambda t: None if t in RELEASES else f"one of {', '.join(RELEASES)}",
                  "bookworm")
    image = image or next((p for p in IMAGE_PLACES if Path(p).is_file()), None)
    method = ask("Install method (image: from the installer medium, no network; debootstrap: from the mirror):",
                 lambda t: None if t in ("image", "debootstrap") and (t != "image" or image)
                 else "image (only when the medium carries one) or debootstrap", "image" if image else "debootstrap")
    mirror = ask("Debian mirror URL:", lambda t: None if re.match(r"^https?://\S+$", t) else "an http(s) URL",
                 default_mirror())
    packages = ask("Additional packages, comma-separated (blank for none):",
                   lambda t: next((p for p in map(package_problem, filter(None, t.split(","))) if p), None))
    plan = Plan(hostname=hostname, disk=DiskHint("path", disk.path), network=network, filesystem=filesystem,
                method=method, release=release, mirror=mirror, image=image if method == "image" else None,
                packages=tuple(p for p in packages.split(",") if p), **ask_login())  # type: ignore[arg-type]
    return plan, disk


def run_console(options: Options, image: str | None = None) -> int:
    print("PVC node installer (pvcctl). ^C at any question stops it; nothing is touched before the last one.")
    try:
        plan, disk = ask_plan(options, image)
        plan = Plan.from_dict(plan.to_dict())  # the same checks the controller's plans pass
    except PlanError as err:
        print(f"installer: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninstaller: stopped; nothing was touched")
        return 130
    print(f"\nALL DATA on {disk.path} will be WIPED:\n  model  {disk.vendor} {disk.model}\n"
          f"  size   {human_size(disk.size)} ({disk.size} bytes)\n  serial {disk.serial or 'unknown'}")
    if ask("Type 'yes' to wipe it and install, anything else to stop:", lambda t: None) != "yes":
        print("installer: stopped; nothing was touched")
        return EXIT_DISK_REFUSED
    options.report_path.parent.mkdir(parents=True, exist_ok=True)
    options.report_path.with_name("plan.json").write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
    reporter = Reporter(options.log_path, human=True)
    code = run_plan(replace(plan, disk=DiskHint("path", disk.path)), options, reporter)
    reporter.close()
    print(f"\nInstall {'finished' if code == 0 else 'FAILED'}; log {options.log_path}, report {options.report_path}")
    return code
