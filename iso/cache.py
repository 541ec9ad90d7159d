"""Content-keyed stage cache and atomic outputs.

A stage's key is the SHA-256 of everything that decides its output (package lists, mirror,
the code that configures it, input files). A stage whose output for that key exists does no
work. Every output is written beside its final name and renamed into place, so an interrupted
build never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from iso.errors import BuildError

KeyPart = str | bytes | Path | int | None | Sequence["KeyPart"]


def content_key(*parts: KeyPart) -> str:
    """A short stable hash of the parts; a Path counts by its content (a tree by every file)."""
    digest = hashlib.sha256()
    for part in parts:
        _feed(digest, part)
    return digest.hexdigest()[:20]


def _feed(digest: hashlib._Hash, part: KeyPart) -> None:
    if isinstance(part, Path):
        if part.is_dir():
            for child in sorted(p for p in part.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                digest.update(json.dumps(str(child.relative_to(part))).encode())
                digest.update(hashlib.sha256(child.read_bytes()).digest())
        else:
            digest.update(hashlib.sha256(part.read_bytes()).digest())
    elif isinstance(part, tuple | list):
        digest.update(b"[")
        for item in part:
            _feed(digest, item)
        digest.update(b"]")
    else:
        data = part if isinstance(part, bytes) else json.dumps(part).encode()
        digest.update(len(data).to_bytes(8, "big") + data)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.partial-{os.getpid()}")
    remove_tree(temporary)
    try:
        yield temporary
        os.replace(temporary, final)
    finally:
        remove_tree(temporary)


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below `path`, deepest first."""
    root = os.path.realpath(path)
    points = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == root or point.startswith(root.rstrip("/") + "/"):
                points.append(Path(point))
    return sorted(points, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Delete a file or tree, refusing while anything is mounted inside it (a chroot's /dev)."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_dir() and not path.is_symlink():
        mounted = mounts_under(path)
        if mounted:
            raise BuildError(f"refusing to delete {path}: {mounted[0]} is still mounted", phase="cleanup",
                             hint=f"unmount it (umount -R {path}) and run the build again")
        shutil.rmtree(path)
    else:
        path.unlink()


@contextlib.contextmanager
def cache_lock(cache_dir: Path) -> Iterator[None]:
    """Hold the cache for one build at a time: two builds sharing a work directory would unmount
    and delete each other's chroot."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


STAGE_DIRS = ("target", "live", "overlay", "boot")  # each holds one output per content key
PRUNE_AFTER_DAYS = 14
LEDGER = "used.json"


def prune_stages(cache_dir: Path, in_use: Iterable[Path], *, max_age_days: float = PRUNE_AFTER_DAYS,
                 now: float | None = None) -> list[Path]:
    """Delete stage outputs no build has used for `max_age_days` (a new package list, mirror or pvcctl
    leaves the old ones behind, hundreds of MB each). What this build uses is never deleted, and an
    output last used recently stays too, so two setups sharing a cache do not rebuild each other's.
    Last use is kept in `used.json` (not in mtimes: the hash memo reads those). Call with the cache lock
    held. Returns what it deleted."""
    now = time.time() if now is None else now
    ledger_path = cache_dir / LEDGER
    try:
        ledger: dict[str, float] = json.loads(ledger_path.read_text())
    except (OSError, ValueError):
        ledger = {}
    keep = {str(path.resolve().relative_to(cache_dir.resolve())) for path in in_use}
    ledger.update(dict.fromkeys(keep, now))
    removed = []
    for stage in STAGE_DIRS:
        folder = cache_dir / stage
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            name = f"{stage}/{entry.name}"
            if name in keep or entry.name.startswith("."):  # in use, or a partial output (under the lock: stale)
                continue
            last = ledger.get(name, entry.stat().st_mtime)
            if now - last > max_age_days * 86400:
                remove_tree(entry)
                ledger.pop(name, None)
                removed.append(entry)
    with atomic_output(ledger_path) as partial:
        partial.write_text(json.dumps(ledger, indent=1, sort_keys=True) + "\n")
    return removed
