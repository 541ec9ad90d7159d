"""Build the live installer ISO: target image → live root → overlay → boot loader → ISO.

Every stage is cached by the content of its inputs under one cache directory (iso/cache.py), and
every output is renamed into place only when complete. `build_iso` returns a `BuildReport` (the
`pvcctl iso build --json` document) for the deploy engine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.mirror import resolve_mirrors
from iso.cache import atomic_output, cache_lock, file_sha256, prune_stages
from iso.chroot import Source
from iso.efi import EfiChain, boot_loader_stage
from iso.image import SEED_ON_ISO, TARGET_ON_ISO, IsoInputs, iso_stage
from iso.keys import live_host_key
from iso.liveroot import live_paths, live_root_stage
from iso.overlay import overlay_stage
from iso.seed import Seed
from iso.target import StageResult, _log_path, build_target_image, target_image_stage
from iso.tools import require_root, require_tools

__all__ = ["BuildReport", "FileEntry", "build_iso", "build_target_image"]

# Where the live system sees the target image (live-boot mounts the RAM copy of the medium here).
LIVE_TARGET_IMAGE = f"/run/live/medium/{TARGET_ON_ISO}"
LIVE_SEED_FILE = f"/run/live/medium/{SEED_ON_ISO}"
HOST_KEY_SUFFIX = ".hostkey.pub"  # the live host public key, written beside the ISO for pinning


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class StageReport:
    name: str
    seconds: float
    cached: bool


@dataclass(frozen=True)
class BuildReport:
    """What a build made: the ISO, every file on it, each stage's time, the pinned host key."""

    iso: str
    files: tuple[FileEntry, ...]
    stages: tuple[StageReport, ...]
    host_key_fingerprint: str
    host_key_public: str
    target_image: str
    live_target_image: str = LIVE_TARGET_IMAGE
    pruned: tuple[str, ...] = ()  # stage outputs unused for weeks, deleted by this build

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @property
    def cached(self) -> bool:
        return all(stage.cached for stage in self.stages)


def build_iso(cache_dir: Path, out: Path, *, seed: Seed | None = None, mirror: str | None = None,
              release: str = "bookworm", proxy: str | None = None, efi_chain: EfiChain = "signed") -> BuildReport:
    """Build (or find in the cache) everything and write the ISO at `out`. `efi_chain="unsigned"` is
    for tests only: an ISO that Secure Boot firmware must refuse."""
    source = Source(resolve_mirrors(mirror), release, proxy)
    require_root()
    require_tools()
    with cache_lock(cache_dir):
        return _build_locked(cache_dir, out, seed, source, efi_chain)


def _build_locked(cache_dir: Path, out: Path, seed: Seed | None, source: Source, efi_chain: EfiChain) -> BuildReport:
    log = _log_path(cache_dir, "build")
    target = target_image_stage(cache_dir, source)
    live = live_root_stage(cache_dir, source, target.path, log)
    paths = live_paths(cache_dir, source)
    host_key = live_host_key(cache_dir / "host-key")
    overlay = overlay_stage(cache_dir, host_key, log)
    efiboot = boot_loader_stage(cache_dir, target.path, log, efi_chain)
    inputs = IsoInputs(paths.vmlinuz, paths.initrd, paths.squashfs, overlay.path, target.path,
                       seed.to_json() if seed else None)
    iso = iso_stage(cache_dir, inputs, efiboot.path, out.resolve(), log)
    key_file = Path(f"{iso.path}{HOST_KEY_SUFFIX}")
    if not key_file.is_file() or key_file.read_text().strip() != host_key.public_line:
        with atomic_output(key_file) as partial:
            partial.write_text(host_key.public_line + "\n")
    stages = (target, live, overlay, efiboot, iso)
    files = _file_entries(cache_dir, inputs, efiboot.path, iso.path)
    pruned = prune_stages(cache_dir, (target.path, paths.squashfs.parent, overlay.path, efiboot.path))
    return BuildReport(str(iso.path), files, tuple(_stage_report(s) for s in stages),
                       host_key.fingerprint, host_key.public_line, str(target.path),
                       pruned=tuple(str(path) for path in pruned))


def _stage_report(stage: StageResult) -> StageReport:
    return StageReport(stage.name, round(stage.seconds, 3), stage.cached)


def _file_entries(cache_dir: Path, inputs: IsoInputs, efiboot: Path, iso: Path) -> tuple[FileEntry, ...]:
    memo = _HashMemo(cache_dir / "hashes.json")
    entries = [(str(iso), iso), ("/live/vmlinuz", inputs.vmlinuz), ("/live/initrd.img", inputs.initrd),
               ("/live/filesystem.squashfs", inputs.live_squashfs), ("/live/zz-pvc.squashfs", inputs.overlay),
               (f"/{TARGET_ON_ISO}", inputs.target), ("/boot/grub/efiboot.img", efiboot)]
    found = [FileEntry(name, path.stat().st_size, memo.sha256(path)) for name, path in entries]
    if inputs.seed_json is not None:
        data = inputs.seed_json.encode()
        found.append(FileEntry(f"/{SEED_ON_ISO}", len(data), hashlib.sha256(data).hexdigest()))
    memo.save()
    return tuple(found)


class _HashMemo:
    """SHA-256 of big cached files, remembered by path, size and mtime so a cached build is quick."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.known: dict[str, str] = json.loads(path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.used: set[str] = set()

    def sha256(self, file: Path) -> str:
        stat = file.stat()
        key = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        if key not in self.known:
            self.known[key] = file_sha256(file)
        self.used.add(key)
        return self.known[key]

    def save(self) -> None:
        """Forget files that are gone or changed, so the memo does not grow with every ISO ever made."""
        kept = {key: digest for key, digest in self.known.items() if key in self.used or _still_there(key)}
        with atomic_output(self.path) as partial:
            partial.write_text(json.dumps(kept))


def _still_there(key: str) -> bool:
    path, size, mtime = key.rsplit(":", 2)
    try:
        stat = Path(path).stat()
    except OSError:
        return False
    return f"{stat.st_size}:{stat.st_mtime_ns}" == f"{size}:{mtime}"
