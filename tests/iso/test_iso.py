"""The live ISO's structure, read back with xorriso, and the build cache (slow: builds once)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from iso import overlay
from iso.build import BuildReport, build_iso
from iso.efi import efi_listing
from iso.seed import Seed, SeedNode, write_iso_with_seed

pytestmark = pytest.mark.slow
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEFHI1HGoHcasy7wh4z7jRBFRwQdmzP7TKSddjpd9Hch controller"


def _xorriso(*args: str) -> str:
    result = subprocess.run(["xorriso", *args], capture_output=True, text=True, check=True)
    return result.stdout + result.stderr  # xorriso reports some of its findings on stderr


def _boot_report(iso: str | Path) -> str:
    return _xorriso("-indev", str(iso), "-report_el_torito", "plain", "-report_system_area", "plain")


def _boot_shape(iso: str | Path) -> list[str]:
    """The boot records that must survive a seed change (block addresses may move)."""
    keep = ("El Torito img path", "El Torito img opts", "System area summary", "MBR partition path", "Volume id")
    return [line for line in _boot_report(iso).splitlines() if line.startswith(keep)]


def _files(iso: str | Path) -> dict[str, int]:
    out = _xorriso("-indev", str(iso), "-find", "/", "-type", "f", "-exec", "lsdl")
    found = {}
    for line in out.splitlines():
        parts = line.split()
        if line.startswith("-"):
            found[line.split("'")[1]] = int(parts[4])
    return found


def _extract(iso: str | Path, path: str, dest: Path) -> str:
    _xorriso("-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest))
    return dest.read_text()


def test_el_torito_bios_and_efi_and_hybrid_mbr_gpt(live_iso: BuildReport) -> None:
    report = _boot_report(live_iso.iso)
    assert "El Torito boot img :   1  BIOS" in report
    assert "El Torito boot img :   2  UEFI" in report
    assert "El Torito img path :   1  /isolinux/isolinux.bin" in report
    assert "El Torito img path :   2  /boot/grub/efiboot.img" in report
    assert "System area summary: MBR isohybrid cyl-align-on GPT" in report
    assert "MBR partition path :   2  /boot/grub/efiboot.img" in report  # the ESP a USB stick boots from


def test_files_on_the_iso_match_the_report(live_iso: BuildReport) -> None:
    files = _files(live_iso.iso)
    for name in ("/live/vmlinuz", "/live/initrd.img", "/live/filesystem.squashfs", "/live/zz-pvc.squashfs",
                 "/pvc/target.squashfs", "/isolinux/isolinux.bin", "/isolinux/ldlinux.c32", "/boot/grub/grub.cfg",
                 "/boot/grub/efiboot.img", "/.pvc-installer"):
        assert name in files, name
    assert [f for f in files if f.startswith("/live/") and f.endswith(".squashfs")] == [
        "/live/filesystem.squashfs", "/live/zz-pvc.squashfs"], "only live layers under /live/"
    reported = {entry.path: entry for entry in live_iso.files}
    for name in ("/live/filesystem.squashfs", "/pvc/target.squashfs", "/live/zz-pvc.squashfs"):
        assert files[name] == reported[name].size
    iso = Path(live_iso.iso)
    assert reported[str(iso)].sha256 == hashlib.sha256(iso.read_bytes()).hexdigest()
    assert live_iso.live_target_image == "/run/live/medium/pvc/target.squashfs"


def test_boot_config_copies_to_ram_on_serial_and_vga(live_iso: BuildReport, tmp_path: Path) -> None:
    for path in ("/isolinux/isolinux.cfg", "/boot/grub/grub.cfg"):
        text = _extract(live_iso.iso, path, tmp_path / Path(path).name)
        first_entry = text.split("/live/vmlinuz", 1)[1].splitlines()[0] + text.split("/live/vmlinuz", 2)[1]
        assert "boot=live" in first_entry and "toram" in first_entry
        assert "console=tty0" in text and "console=ttyS0,115200n8" in text


def test_efi_image_holds_debians_signed_chain(live_iso: BuildReport, tmp_path: Path) -> None:
    """shim as the removable-media loader, the signed CD GRUB beside it, MokManager; no fallback
    (fbx64 would write NVRAM entries from a medium). shim is byte for byte the target image's."""
    _xorriso("-osirrox", "on", "-indev", live_iso.iso, "-extract", "/boot/grub/efiboot.img", str(tmp_path / "efi.img"))
    assert efi_listing(tmp_path / "efi.img") == ["BOOTX64.EFI", "grubx64.efi", "mmx64.efi"]
    loader = subprocess.run(["mtype", "-i", str(tmp_path / "efi.img"), "::/EFI/BOOT/BOOTX64.EFI"],
                            capture_output=True, check=True).stdout
    shim = subprocess.run(["unsquashfs", "-cat", live_iso.target_image, "usr/lib/shim/shimx64.efi.signed"],
                          capture_output=True, check=True).stdout
    assert loader == shim and len(shim) > 500_000
    assert "/.disk/info" in _files(live_iso.iso)  # how the signed CD GRUB finds the medium


def test_overlay_carries_installer_live_code_and_the_reported_host_key(live_iso: BuildReport) -> None:
    layer_sha = next(f.sha256 for f in live_iso.files if f.path == "/live/zz-pvc.squashfs")
    layers = Path(live_iso.target_image).parents[1].glob("overlay/zz-pvc-*.squashfs")
    cached = next(p for p in layers if hashlib.sha256(p.read_bytes()).hexdigest() == layer_sha)
    listing = subprocess.run(["unsquashfs", "-lc", "-d", "", str(cached)], capture_output=True, text=True,
                             check=True).stdout.split()
    for needed in ("/usr/local/lib/pvcctl/installer/plan.py", "/usr/local/lib/pvcctl/iso/seed.py",
                   "/usr/local/lib/pvcctl/iso/live/checkin.py", "/usr/local/sbin/pvc-installer",
                   "/etc/ssh/ssh_host_ed25519_key", "/etc/systemd/system/multi-user.target.wants/pvc-checkin.service"):
        assert needed in listing, needed
    public = subprocess.run(["unsquashfs", "-cat", str(cached), "etc/ssh/ssh_host_ed25519_key.pub"],
                            capture_output=True, text=True, check=True).stdout
    assert public.split()[:2] == live_iso.host_key_public.split()[:2]


@pytest.fixture(scope="module")
def private_iso(live_iso: BuildReport, debian_mirror: str, tmp_path_factory: pytest.TempPathFactory) -> BuildReport:
    """The live ISO written to this module's own path (stages come from the cache): other test
    sessions on this machine may rewrite the shared one while these tests read it."""
    out = tmp_path_factory.mktemp("iso") / "private.iso"
    return build_iso(Path(live_iso.iso).parent, out, mirror=debian_mirror)


def test_rebuild_with_nothing_changed_does_no_work(private_iso: BuildReport, debian_mirror: str) -> None:
    iso = Path(private_iso.iso)
    before = iso.stat().st_mtime_ns
    again = build_iso(Path(private_iso.target_image).parents[1], iso, mirror=debian_mirror)
    assert [(s.name, s.cached) for s in again.stages] == [(s.name, True) for s in private_iso.stages]
    assert iso.stat().st_mtime_ns == before
    assert again.host_key_fingerprint == private_iso.host_key_fingerprint
    assert again.files == private_iso.files


def test_changed_live_code_rebuilds_only_the_overlay_and_iso(live_iso: BuildReport, debian_mirror: str,
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(overlay._FILES, "etc/pvc-test-marker", f"{tmp_path}\n")
    report = build_iso(Path(live_iso.iso).parent, tmp_path / "changed.iso", mirror=debian_mirror)
    cached = {s.name: s.cached for s in report.stages}
    assert cached == {"target-image": True, "live-root": True, "overlay": False, "boot-loader": True, "iso": False}
    assert "El Torito boot img :   2  UEFI" in _boot_report(report.iso)
    assert Path(live_iso.iso).is_file()


def test_new_seed_makes_a_new_iso_and_keeps_the_boot_records(private_iso: BuildReport, tmp_path: Path) -> None:
    base_sha = next(f.sha256 for f in private_iso.files if f.path == private_iso.iso)
    seed = Seed("http://10.0.2.2:8080", KEY, (SeedNode("hv1", macs=("52:54:00:12:34:56",), address="10.0.2.50/24"),))
    out = write_iso_with_seed(Path(private_iso.iso), seed, tmp_path / "seeded.iso")
    assert Seed.from_json(_extract(out, "/pvc/seed.json", tmp_path / "seed.json")) == seed
    assert _boot_shape(out) == _boot_shape(private_iso.iso)
    assert len(_boot_shape(out)) == 6
    assert _files(out)["/pvc/target.squashfs"] == _files(private_iso.iso)["/pvc/target.squashfs"]
    reseeded = write_iso_with_seed(out, Seed("http://10.0.2.2:9", KEY), out)  # in place, atomically
    assert Seed.from_json(_extract(reseeded, "/pvc/seed.json", tmp_path / "seed2.json")).nodes == ()
    assert hashlib.sha256(Path(private_iso.iso).read_bytes()).hexdigest() == base_sha
