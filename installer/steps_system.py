"""Install steps in the target system: the OS, apt, configuration, users, keys, GRUB, finish."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from installer import configure as conf
from installer import proof
from installer.actions import StepFailed
from installer.context import Install
from installer.events import Level
from installer.layout import VG_NAME, volumes

# debootstrap --include, after pvc-installer's basepkglist, plus what the image method also carries.
BASE_PACKAGES = ("lvm2,parted,gdisk,sudo,vim,gpg,gpg-agent,openssh-server,vlan,ifenslave,python3,"
                 "ca-certificates,curl,linux-image-amd64,initramfs-tools,zstd,grub-efi-amd64-bin,"
                 "grub-pc-bin,grub2-common,efibootmgr,ifupdown,isc-dhcp-client,dosfstools,xfsprogs,"
                 "systemd-sysv,udev,kmod,iproute2,shim-signed,grub-efi-amd64-signed")
# Debian's GRUB signed for shim: with it, grub-install --uefi-secure-boot boots under Secure Boot
SIGNED_GRUB = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"
BLACKLIST_FILE = "/etc/modprobe.d/pvc-blacklist.conf"


def install_os(ctx: Install) -> None:
    if ctx.plan.method == "debootstrap":
        ctx.actions.run(["debootstrap", f"--include={BASE_PACKAGES}", ctx.plan.release, str(ctx.target),
                         ctx.plan.mirror])
        return
    image = ctx.plan.image or ""
    if ctx.actions.real and not Path(image).is_file():
        raise StepFailed(f"the root image {image} does not exist on this system")
    if shutil.which("unsquashfs"):
        ctx.actions.run(["unsquashfs", "-force", "-no-progress", "-quiet", "-dest", str(ctx.target), image])
        return
    source = Path("/run/pvc-image")  # no unsquashfs on the live system: mount and copy
    ctx.actions.run(["mkdir", "-p", str(source)])
    ctx.actions.run(["mount", "-t", "squashfs", "-o", "loop,ro", image, str(source)])
    try:
        ctx.actions.run(["cp", "-a", f"{source}/.", str(ctx.target)])
    finally:
        ctx.actions.run(["umount", str(source)], check=False)


def bind_system(ctx: Install) -> None:
    """dev, proc, sys and run for commands in the chroot; efivars only where it exists
    (pvc-installer mounted it unconditionally, which aborted every BIOS install)."""
    binds = list(conf.BIND_MOUNTS)
    if os.path.isdir("/sys/firmware/efi/efivars"):
        binds.append("sys/firmware/efi/efivars")
    for name in binds:
        point = ctx.target / name
        if ctx.actions.real and os.path.ismount(point):
            continue
        ctx.actions.run(["mkdir", "-p", str(point)])
        ctx.actions.run(["mount", "--bind", f"/{name}", str(point)])


def real_resolv_conf(ctx: Install) -> None:
    """Installing systemd-resolved in a chroot leaves /etc/resolv.conf a dangling link; apt needs
    a real file. The configure step writes the final one afterwards."""
    live = Path("/etc/resolv.conf")
    text = live.read_text() if live.exists() else conf.resolv_conf(ctx.plan.network.dns)
    path = ctx.in_target("/etc/resolv.conf")
    if ctx.actions.real and path.is_symlink():
        path.unlink()
    ctx.actions.write(path, text)


def configure_apt(ctx: Install) -> None:
    mirror = ctx.plan.mirror or _mirror_from_target(ctx)
    if mirror:
        ctx.actions.write(ctx.in_target("/etc/apt/sources.list.d/debian.sources"), conf.apt_sources(ctx.plan, mirror))
        legacy = ctx.in_target("/etc/apt/sources.list")
        if ctx.actions.real and legacy.exists():
            legacy.unlink()  # the deb822 file replaces it; both would list the mirror twice
    else:
        ctx.reporter.emit("no mirror in the plan or the image: apt sources left as the image has them")
    if not ctx.plan.packages:
        return
    bind_system(ctx)
    real_resolv_conf(ctx)
    ctx.actions.chroot(ctx.target, ["apt-get", "update"])
    ctx.actions.chroot(ctx.target, ["apt-get", "install", "-y", "--no-install-recommends", *ctx.plan.packages])
    ctx.actions.chroot(ctx.target, ["apt-get", "clean"])


def _mirror_from_target(ctx: Install) -> str:
    for name in ("/etc/apt/sources.list.d/debian.sources", "/etc/apt/sources.list"):
        path = ctx.in_target(name)
        if ctx.actions.real and path.exists():
            for line in path.read_text().splitlines():
                words = line.split()
                if words[:1] == ["URIs:"] and "security" not in line:
                    return words[1]
                if words[:1] == ["deb"] and "security" not in line and len(words) > 2:
                    return words[1] if not words[1].startswith("[") else words[2]
    return ""


def write_configuration(ctx: Install) -> None:
    plan, write = ctx.plan, ctx.actions.write
    write(ctx.in_target("/etc/fstab"), conf.fstab(_fstab_entries(ctx)))
    interface = ctx.network_interface()
    name, text = conf.interfaces(plan.network, interface)
    write(ctx.in_target(f"/etc/network/interfaces.d/{name}"), text)
    main = ctx.in_target("/etc/network/interfaces")
    if not ctx.actions.real or "interfaces.d" not in (main.read_text() if main.exists() else ""):
        write(main, "source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n")
    ctx.notes["network"] = {"interface": name, "address": plan.network.address or "dhcp",
                            "gateway": plan.network.gateway, "dns": list(plan.network.dns)}
    write(ctx.in_target("/etc/hostname"), plan.hostname.split(".")[0] + "\n")
    write(ctx.in_target("/etc/hosts"), conf.hosts(plan.hostname, plan.network.address))
    resolv = ctx.in_target("/etc/resolv.conf")
    if ctx.actions.real and resolv.is_symlink():
        resolv.unlink()  # dangling in the target (systemd-resolved); a real file from the plan instead
    write(resolv, conf.resolv_conf(plan.network.dns))
    write(ctx.in_target("/etc/timezone"), plan.timezone + "\n")
    _link(ctx, f"/usr/share/zoneinfo/{plan.timezone}", "/etc/localtime")
    write(ctx.in_target("/etc/default/grub"), conf.GRUB_DEFAULTS)
    # grub.d/*.cfg are read after /etc/default/grub in name order (the image ships pvc-console.cfg):
    # "zz-" sorts after any of them, so the last word is ours
    write(ctx.in_target("/etc/default/grub.d/zz-pvc-installer.cfg"), conf.GRUB_DEFAULTS)
    blacklist = ctx.in_target(BLACKLIST_FILE)
    ctx.notes["blacklist_added"] = not (ctx.actions.real and blacklist.exists())
    write(blacklist, conf.BLACKLIST)


def _link(ctx: Install, source: str, name: str) -> None:
    path = ctx.in_target(name)
    if not ctx.actions.real:
        ctx.actions.announce(f"link: {path} -> {source}")
        return
    if path.is_symlink() or path.exists():
        path.unlink()
    path.symlink_to(source)


def _fstab_entries(ctx: Install) -> list[conf.FsEntry]:
    uuid, fs = ctx.actions.uuid_of, ctx.plan.filesystem
    discard = ctx.disk.transport == "nvme"
    entries = []
    for volume in volumes(ctx.disk.size):
        device = conf.lv_device(volume.name)
        if volume.mountpoint is None:
            entries.append(conf.FsEntry(uuid(device), "none", "swap", "sw", 0))
        else:
            passno = 1 if volume.mountpoint == "/" else 2
            entries.append(conf.FsEntry(uuid(device), volume.mountpoint, fs, conf.data_fs_options(fs, discard),
                                        passno))
    entries.insert(1, conf.FsEntry(uuid(ctx.part("boot")), "/boot", "ext2", "defaults", 2))
    entries.insert(2, conf.FsEntry(uuid(ctx.part("efi")), "/boot/efi", "vfat", "umask=0077", 1))
    return entries


def create_users(ctx: Install) -> None:
    plan, chroot = ctx.plan, ctx.actions.chroot
    user, home = plan.deploy_user, f"/var/home/{plan.deploy_user}"
    if not ctx.actions.real or not ctx.in_target("/var/home").exists():
        ctx.actions.run(["mv", str(ctx.in_target("/home")), str(ctx.in_target("/var/home"))])
        ctx.actions.run(["ln", "-s", "var/home", str(ctx.in_target("/home"))])
    exists = ctx.actions.real and f"\n{user}:" in "\n" + ctx.in_target("/etc/passwd").read_text()
    if not exists:
        chroot(ctx.target, ["useradd", "-u", "200", "-d", home, "-m", "-s", "/bin/bash", "-g", "operator",
                            "-G", "sudo", user])
    ctx.actions.write(ctx.in_target("/etc/sudoers.d/90-pvc-deploy"), conf.SUDOERS, 0o440)
    if plan.ssh_keys:
        ctx.actions.write(ctx.in_target(f"{home}/.ssh/authorized_keys"), conf.authorized_keys(plan.ssh_keys), 0o600)
        chroot(ctx.target, ["chmod", "700", f"{home}/.ssh"])
        chroot(ctx.target, ["chown", "-R", f"{user}:operator", f"{home}/.ssh"])
    # Hashes go through stdin: never on a command line that `ps` or the log would show.
    if plan.deploy_password_hash:
        chroot(ctx.target, ["chpasswd", "-e"], stdin=f"{user}:{plan.deploy_password_hash}\n")
    if plan.root_password_hash:
        chroot(ctx.target, ["chpasswd", "-e"], stdin=f"root:{plan.root_password_hash}\n")
    else:
        chroot(ctx.target, ["usermod", "--lock", "root"])  # never a fixed, public password


def generate_host_keys(ctx: Install) -> None:
    """Start making the node's host keys; `finish` waits for them. Under TCG the RSA key alone takes
    6-15 s of one vCPU, which the boot loader steps (mostly one process at a time) leave idle."""
    keys = sorted(ctx.in_target("/etc/ssh").glob("ssh_host_*")) if ctx.actions.real else []
    for key in keys:
        key.unlink()
    ctx.background["host-keys"] = ctx.actions.start_chroot(ctx.target, ["ssh-keygen", "-A"])


def _host_keys_made(ctx: Install) -> None:
    job = ctx.background.pop("host-keys", None)
    if job is not None:
        job.wait()
    # -A names them after the live system ("root@(none)"): name them after the node instead
    for public in sorted(ctx.in_target("/etc/ssh").glob("ssh_host_*.pub")) if ctx.actions.real else []:
        kind, blob = public.read_text().split()[:2]
        public.write_text(f"{kind} {blob} root@{ctx.plan.hostname}\n")


def install_bootloader(ctx: Install) -> None:
    bind_system(ctx)
    chroot = ctx.actions.chroot
    # A boot entry goes into this machine's firmware only when it booted by UEFI and the disk is its
    # own: never for a loop device (a disk image), whose firmware entry would point nowhere.
    write_nvram = os.path.isdir("/sys/firmware/efi/efivars") and not ctx.disk.loop
    # grub-mkconfig needs nothing grub-install writes but /boot/grub itself, and runs 15 s under TCG
    # (its shell scripts and a dozen grub-probe runs): it goes on beside the grub-install runs
    ctx.actions.run(["mkdir", "-p", str(ctx.in_target("/boot/grub"))])
    config = ctx.actions.start_chroot(ctx.target, ["grub-mkconfig", "-o", "/boot/grub/grub.cfg"])
    for mode in ctx.boot_targets():
        if mode == "uefi":
            nvram = [] if write_nvram else ["--no-nvram"]
            efi = ["grub-install", "--target=x86_64-efi", "--efi-directory=/boot/efi", secure_boot_flag(ctx)]
            chroot(ctx.target, [*efi, "--bootloader-id=debian", *nvram])
            # the removable-media path, for firmware that forgets (or never had) the NVRAM entry: shim
            # as EFI/BOOT/BOOTX64.EFI with the signed GRUB beside it, so it boots under Secure Boot too
            chroot(ctx.target, [*efi, "--removable", "--no-nvram"])
        else:
            chroot(ctx.target, ["grub-install", "--target=i386-pc", ctx.disk.path])
    config.wait()
    ctx.notes["boot_modes"] = list(ctx.boot_targets())


def secure_boot_flag(ctx: Install) -> str:
    """shim and the signed GRUB when the target has them (the image and debootstrap methods both
    install them); otherwise an unsigned GRUB, which Secure Boot firmware refuses: said in the log."""
    if not ctx.actions.real or ctx.in_target(SIGNED_GRUB).is_file():
        ctx.notes["secure_boot_chain"] = "signed"
        return "--uefi-secure-boot"
    ctx.notes["secure_boot_chain"] = "unsigned"
    ctx.reporter.emit(f"the target has no {SIGNED_GRUB} (grub-efi-amd64-signed): its GRUB is unsigned, so this "
                      "system will not boot with Secure Boot on", Level.ERROR)
    return "--no-uefi-secure-boot"


def build_initramfs(ctx: Install) -> None:
    """The image carries an initramfs with LVM and the blacklist: rebuilt only when something
    changed (debootstrap, extra packages, or an image without the blacklist)."""
    if ctx.plan.method == "debootstrap" or ctx.plan.packages or ctx.notes.get("blacklist_added"):
        bind_system(ctx)
        ctx.actions.chroot(ctx.target, ["update-initramfs", "-u", "-k", "all"])
    else:
        ctx.reporter.emit("the image's initramfs already has LVM and the hpwdt blacklist: kept")


def finish(ctx: Install) -> None:
    """Keep the log in the installed system, read its host keys, mark the install complete (the last
    write), unmount everything."""
    _host_keys_made(ctx)
    if ctx.actions.real:
        ctx.notes["host_keys"] = [p.read_text().strip() for p in sorted(ctx.in_target("/etc/ssh").glob("*.pub"))]
        log_copy = ctx.in_target("/var/log/pvc-install.log")
        shutil.copyfile(ctx.reporter.log_path, log_copy)
        os.chmod(log_copy, 0o600)
    mark_complete(ctx)
    ctx.actions.run(["sync"])
    ctx.actions.run(["umount", "--recursive", str(ctx.target)])
    ctx.actions.run(["vgchange", "--activate", "n", VG_NAME])


def mark_complete(ctx: Install) -> None:
    """Replace the "started" marker with the install's summary: only a finished install says complete."""
    started = ctx.notes.get("marker")
    if not isinstance(started, dict):
        raise StepFailed("the install marker was never written (the mount step did not run)")
    summary = {"hostname": ctx.plan.hostname, "disk": ctx.disk.facts(), "filesystem": ctx.plan.filesystem,
               "method": ctx.plan.method, "boot_modes": ctx.notes.get("boot_modes", list(ctx.boot_targets())),
               "volumes": [v.name for v in volumes(ctx.disk.size)], "steps": list(ctx.reporter.step_seconds)}
    ctx.write_marker(proof.complete_marker(started, summary))
